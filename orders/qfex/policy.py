"""Which hosts and ports the client may connect to: the endpoint policy (S22). Imports nothing from Django.

A policy is a list of allowed ``host`` or ``host:port`` entries (a host alone allows every port; an
IPv6 address is written ``[::1]`` or ``[::1]:8765``). Two questions are asked of it:

* :meth:`EndpointPolicy.check_url` — before anything is stored or sent: is this URL's host (and port)
  listed? Forms, the admin and the management commands ask it for a custom URL.
* :meth:`EndpointPolicy.check_address` — at connect time, for every address the host *resolved to*:
  a loopback, private, link-local or otherwise non-public address is refused unless that address
  itself is listed. Checking the resolved address is what stops DNS rebinding: a listed public name
  that later resolves to ``127.0.0.1`` or ``169.254.169.254`` is still refused. The transport calls it
  between ``getaddrinfo`` and ``connect`` (:func:`orders.qfex.transport._open_tcp`).

An IPv6 address can carry an IPv4 address inside it, and a gateway on the way turns it back into that
IPv4 address (S40): on an IPv6-only host behind NAT64, ``64:ff9b::a9fe:a9fe`` *is* 169.254.169.254. So an
address counts as public only if it is public itself **and** every IPv4 address it may carry is public
(:func:`embedded_ipv4`): IPv4-mapped ``::ffff:0:0/96``, IPv4-translated ``::ffff:0:0:0/96``, the NAT64
prefixes of RFC 6052 (well-known ``64:ff9b::/96``) and RFC 8215 (local-use ``64:ff9b:1::/48``, read in every
layout RFC 6052 allows inside it — /48 to /96 — since the prefix length a network chose cannot be seen from the
address), 6to4 ``2002::/16`` and Teredo ``2001::/32`` (server and client). Deprecated forms are refused
whatever they carry: IPv4-compatible ``::/96`` and site-local ``fec0::/10``. Python's own ``is_global`` is
not enough (3.11 calls ``64:ff9b::/96``, ``fec0::/10`` and ``::/96`` apart from ``::`` and ``::1`` global), so
these tables are our own. A network-specific NAT64 prefix (an operator's own /96 out of their public space)
cannot be recognised from the address; on such a host, list nothing private and rely on the network's
filtering.

Refusals raise :class:`EndpointNotAllowed` (a ``ConnectionFailed``), whose ``user_message`` says what
an administrator can do; nothing is connected to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import ConnectionFailed, shorten

__all__ = ["EndpointNotAllowed", "EndpointPolicy", "embedded_ipv4", "parse_entry"]


class EndpointNotAllowed(ConnectionFailed):
    """The host, port or resolved address is outside the endpoint policy; nothing was connected to."""

    default_user_message = (
        "That address is not an allowed QFEX endpoint. An administrator can allow it with QFEXDASH_CUSTOM_ENDPOINTS."
    )


def _normalise_host(host: str) -> str:
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def parse_entry(entry: str) -> tuple[str, int | None]:
    """``"host"``, ``"host:port"``, ``"[v6]"`` or ``"[v6]:port"`` → (normalised host, port or None).

    Raises ``ValueError`` with a readable reason for anything else.
    """
    text = entry.strip()
    if not text or "/" in text or "@" in text or any(ch.isspace() for ch in text):
        raise ValueError(f"{shorten(entry, 60)!r} is not a host or host:port")
    port_text: str | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"{shorten(entry, 60)!r} is not a host or host:port (unclosed [)")
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{shorten(entry, 60)!r} is not [address]:port")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text  # a plain name, an IPv4 address or a bare IPv6 address
    if not host:
        raise ValueError(f"{shorten(entry, 60)!r} names no host")
    port: int | None = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{shorten(entry, 60)!r} has a port that is not a number from 1 to 65535")
        port = int(port_text)
    return _normalise_host(host), port


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused whatever they carry: deprecated forms no exchange is reached by.
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # IPv4-compatible (RFC 4291 deprecated it), with :: and ::1
_NEVER_PUBLIC = (
    _COMPATIBLE,
    ipaddress.IPv6Network("fec0::/10"),  # site-local (RFC 3879 deprecated it; some networks still route it)
)
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")  # IPv4-mapped
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # IPv4-translated (RFC 2765, SIIT)
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")
_TEREDO = ipaddress.IPv6Network("2001::/32")
# RFC 6052 section 2.2: the prefix lengths a NAT64 prefix inside 64:ff9b:1::/48 may have; the 32 IPv4 bits
# follow the prefix, skipping bits 64-71 (the "u" octet).
_NAT64_LAYOUTS = (48, 56, 64, 96)


def _bits(value: int, first: int, count: int) -> int:
    """``count`` bits of a 128-bit value starting at bit ``first`` (0 = the most significant)."""
    return (value >> (128 - first - count)) & ((1 << count) - 1)


def _nat64_ipv4(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    if prefix_length == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    before_u = max(0, 64 - prefix_length)  # IPv4 bits placed before the u octet
    high = _bits(value, prefix_length, before_u) if before_u else 0
    low = _bits(value, 72, 32 - before_u)
    return ipaddress.IPv4Address((high << (32 - before_u)) | low)


def embedded_ipv4(address: Address) -> set[ipaddress.IPv4Address]:
    """Every IPv4 address ``address`` may stand for on the way (itself, for an IPv4 address)."""
    if isinstance(address, ipaddress.IPv4Address):
        return {address}
    value = int(address)
    found: set[ipaddress.IPv4Address] = set()
    if address in _COMPATIBLE or address in _MAPPED or address in _TRANSLATED or address in _NAT64_WELL_KNOWN:
        found.add(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in _NAT64_LOCAL_USE:
        found.update(_nat64_ipv4(value, length) for length in _NAT64_LAYOUTS)
    if address in _SIX_TO_FOUR:
        found.add(ipaddress.IPv4Address(_bits(value, 16, 32)))
    if address in _TEREDO:
        found.add(ipaddress.IPv4Address(_bits(value, 32, 32)))  # the Teredo server
        found.add(ipaddress.IPv4Address(value & 0xFFFFFFFF ^ 0xFFFFFFFF))  # the client, stored inverted
    return found


def _public_itself(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and any(address in network for network in _NEVER_PUBLIC):
        return False
    return address.is_global and not address.is_multicast


def _is_public(address: Address) -> bool:
    """Public itself, and so is every IPv4 address it carries (S40)."""
    if isinstance(address, ipaddress.IPv4Address):
        return _public_itself(address)
    carried = embedded_ipv4(address)
    if address in _MAPPED or address in _TRANSLATED:
        return all(_public_itself(ipv4) for ipv4 in carried)  # an IPv4 address written as IPv6: only it counts
    return _public_itself(address) and all(_public_itself(ipv4) for ipv4 in carried)


@dataclass(frozen=True)
class EndpointPolicy:
    """Allowed ``(host, port-or-None)`` pairs. Build one with :meth:`from_entries`."""

    allowed: frozenset[tuple[str, int | None]] = field(default_factory=frozenset)

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> EndpointPolicy:
        """Parse ``host`` / ``host:port`` entries; ``ValueError`` names the first bad one."""
        return cls(frozenset(parse_entry(entry) for entry in entries if entry.strip()))

    def with_urls(self, urls: Iterable[str]) -> EndpointPolicy:
        """This policy plus the exact host and port of each URL (e.g. the configured production and UAT URLs)."""
        extra = set(self.allowed)
        for url in urls:
            parts = urlsplit(url)
            if parts.hostname:
                extra.add((_normalise_host(parts.hostname), parts.port or (443 if parts.scheme == "wss" else 80)))
        return EndpointPolicy(frozenset(extra))

    def allows(self, host: str, port: int) -> bool:
        name = _normalise_host(host)
        return (name, None) in self.allowed or (name, port) in self.allowed

    def check_url(self, url: str) -> None:
        """Raise :class:`EndpointNotAllowed` unless the URL's host and port are listed."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "wss" else 80)
        except ValueError:
            raise EndpointNotAllowed("the URL cannot be parsed") from None
        host = parts.hostname or ""
        if not host or not self.allows(host, port):
            raise EndpointNotAllowed(f"{shorten(host, 80)}:{port} is not listed in the endpoint policy")

    def check_address(self, host: str, port: int, address: str) -> None:
        """Raise :class:`EndpointNotAllowed` unless ``host:port`` is listed and ``address`` may be reached.

        ``address`` is what ``host`` resolved to: a non-public one must be listed itself.
        """
        if not self.allows(host, port):
            raise EndpointNotAllowed(f"{shorten(host, 80)}:{port} is not listed in the endpoint policy")
        try:
            resolved = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise EndpointNotAllowed(f"{shorten(host, 80)} resolved to something that is not an address") from None
        if _is_public(resolved) or self.allows(str(resolved), port):
            return
        carried = sorted(str(ipv4) for ipv4 in embedded_ipv4(resolved) if ipv4 != resolved)
        inside = f" (which carries {', '.join(carried)})" if carried else ""
        raise EndpointNotAllowed(
            f"{shorten(host, 80)} resolved to {resolved}{inside}, a loopback, private or link-local address that is "
            "not itself listed in the endpoint policy",
            user_message="That address points into a private network, which is not allowed. An administrator "
            "can allow the address itself with QFEXDASH_CUSTOM_ENDPOINTS.",
        )
