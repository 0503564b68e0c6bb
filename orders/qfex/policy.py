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

Refusals raise :class:`EndpointNotAllowed` (a ``ConnectionFailed``), whose ``user_message`` says what
an administrator can do; nothing is connected to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import ConnectionFailed, shorten

__all__ = ["EndpointNotAllowed", "EndpointPolicy", "parse_entry"]


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


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


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
        raise EndpointNotAllowed(
            f"{shorten(host, 80)} resolved to {resolved}, a loopback, private or link-local address that is "
            "not itself listed in the endpoint policy",
            user_message="That address points into a private network, which is not allowed. An administrator "
            "can allow the address itself with QFEXDASH_CUSTOM_ENDPOINTS.",
        )
