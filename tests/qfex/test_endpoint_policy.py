"""S22: the endpoint policy, checked by the client itself on every address a host resolves to.

A custom URL may only name a listed host (and port); a loopback, private or link-local address is
refused unless that address itself is listed — checked after DNS, right before connecting, so a listed
name that resolves into the server's own network (DNS rebinding) reaches nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from orders.qfex import Credentials, EndpointNotAllowed, EndpointPolicy, QfexSession
from orders.qfex.policy import parse_entry
from orders.simulator import SimAccount, Simulator

PUBLIC, SECRET = "qfex_pub_policy", "qfex_secret_policy_3c9d1e7a2b"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(accounts=[SimAccount(public_key=PUBLIC, secret=SECRET, orders=1)], seed=2) as simulator:
        yield simulator


def _session(url: str, policy: EndpointPolicy | None) -> QfexSession:
    return QfexSession(url, Credentials(PUBLIC, SECRET), timeout=5, endpoint_policy=policy)


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("qfex.example.com", ("qfex.example.com", None)),
        ("QFEX.example.com.:8443", ("qfex.example.com", 8443)),
        ("127.0.0.1", ("127.0.0.1", None)),
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("[::1]:8765", ("::1", 8765)),
        ("::1", ("::1", None)),
    ],
)
def test_entries_parse(entry: str, parsed: tuple[str, int | None]) -> None:
    assert parse_entry(entry) == parsed


@pytest.mark.parametrize("entry", ["ws://host", "host:port", "host:0", "host:70000", "[::1", "us er@host", ""])
def test_bad_entries_are_refused_in_words(entry: str) -> None:
    with pytest.raises(ValueError, match="host"):
        parse_entry(entry)


def test_a_listed_loopback_address_is_reached(sim: Simulator) -> None:
    with _session(sim.url, EndpointPolicy.from_entries(["127.0.0.1"])):
        pass
    assert sim.request_count("auth") == 1


@pytest.mark.parametrize(
    "entries",
    [
        [],  # nothing listed
        ["127.0.0.1:1"],  # another port
        ["qfex.example.com"],  # another host
    ],
)
def test_an_unlisted_host_or_port_is_never_connected_to(sim: Simulator, entries: list[str]) -> None:
    with pytest.raises(EndpointNotAllowed) as caught, _session(sim.url, EndpointPolicy.from_entries(entries)):
        pass
    assert "QFEXDASH_CUSTOM_ENDPOINTS" in caught.value.user_message
    assert sim.handshake_count == 0


def test_dns_rebinding_to_loopback_is_refused(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listed public name that resolves to 127.0.0.1 reaches nothing: the resolved address is checked."""
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host == "qfex.rebind.example" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"ws://qfex.rebind.example:{sim.port}"
    with (
        pytest.raises(EndpointNotAllowed) as caught,
        _session(url, EndpointPolicy.from_entries(["qfex.rebind.example"])),
    ):
        pass
    assert "private network" in caught.value.user_message
    assert sim.handshake_count == 0
    # Listing the address itself is the explicit way to allow it.
    with _session(url, EndpointPolicy.from_entries(["qfex.rebind.example", "127.0.0.1"])):
        pass
    assert sim.request_count("auth") == 1


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1",
                                     "0.0.0.0", "::ffff:127.0.0.1", "100.64.0.1"])  # fmt: skip  # noqa: S104
def test_private_and_link_local_addresses_need_listing(address: str) -> None:
    policy = EndpointPolicy.from_entries(["qfex.example.com"])
    with pytest.raises(EndpointNotAllowed):
        policy.check_address("qfex.example.com", 443, address)
    policy.check_address("qfex.example.com", 443, "8.8.8.8")  # a public address is fine
    EndpointPolicy.from_entries(["qfex.example.com", address]).check_address("qfex.example.com", 443, address)


def test_no_policy_means_the_callers_own_url(sim: Simulator) -> None:
    """Without a policy (a caller passing an operator's own URL) the client connects as before."""
    with _session(sim.url, None):
        pass


# --- S40: IPv6 forms that carry an IPv4 address inside ------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "carries"),
    [
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64 well-known prefix (RFC 6052)
        ("64:ff9b::7f00:1", "127.0.0.1"),
        ("64:ff9b::10.0.0.5", "10.0.0.5"),
        ("64:ff9b:1::a00:5", "10.0.0.5"),  # local-use NAT64 prefix (RFC 8215), /96 layout
        ("64:ff9b:1:0:a:0:500:0", "10.0.0.5"),  # the same prefix, /64 layout (RFC 6052 section 2.2)
        ("64:ff9b:1:a:0:5::", "10.0.0.5"),  # /56 layout
        ("64:ff9b:1:a00:0:500::", "10.0.0.5"),  # /48 layout: bits 64-71 are the u octet, skipped
        ("::7f00:1", "127.0.0.1"),  # IPv4-compatible (deprecated): ::/96 is refused outright
        ("::a9fe:a9fe", "169.254.169.254"),
        ("::8.8.8.8", "8.8.8.8"),
        ("::ffff:0:a00:5", "10.0.0.5"),  # IPv4-translated (RFC 2765)
        ("::ffff:0:7f00:1", "127.0.0.1"),
        ("2002:a00:5::1", "10.0.0.5"),  # 6to4
        ("2002:a9fe:a9fe::", "169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffa", "10.0.0.5"),  # Teredo: the client is stored inverted
        ("fec0::1", ""),  # site-local (deprecated, still routed by some networks)
        ("fec0:1::5", ""),
        ("feff::1", ""),
    ],
)
def test_ipv6_forms_embedding_a_private_ipv4_are_refused(address: str, carries: str) -> None:
    policy = EndpointPolicy.from_entries(["qfex.example.com"])
    with pytest.raises(EndpointNotAllowed) as caught:
        policy.check_address("qfex.example.com", 443, address)
    assert "private network" in caught.value.user_message
    assert carries in str(caught.value)  # the log line says which IPv4 address it stood for
    # Listing the address itself is still the explicit way to allow it.
    EndpointPolicy.from_entries(["qfex.example.com", f"[{address}]"]).check_address("qfex.example.com", 443, address)


@pytest.mark.parametrize(
    "address",
    [
        "2606:4700:4700::1111",  # an ordinary public IPv6 address
        "64:ff9b::808:808",  # NAT64 of a public IPv4 (8.8.8.8): where a NAT64 network reaches QFEX
        "2002:808:808::1",  # 6to4 of a public IPv4
        "::ffff:8.8.8.8",
        "8.8.8.8",
    ],
)
def test_ipv6_forms_of_a_public_ipv4_still_pass(address: str) -> None:
    """Only what the embedded address says counts: a NAT64-only host can still reach a public exchange."""
    EndpointPolicy.from_entries(["qfex.example.com"]).check_address("qfex.example.com", 443, address)


def test_every_embedded_ipv4_is_found() -> None:
    from ipaddress import IPv4Address, ip_address

    from orders.qfex.policy import embedded_ipv4

    assert embedded_ipv4(ip_address("64:ff9b::a9fe:a9fe")) == {IPv4Address("169.254.169.254")}
    assert IPv4Address("10.0.0.5") in embedded_ipv4(ip_address("2002:a00:5::1"))
    assert IPv4Address("10.0.0.5") in embedded_ipv4(ip_address("2001:0:4136:e378:8000:63bf:f5ff:fffa"))
    for layout in ("64:ff9b:1::a00:5", "64:ff9b:1:0:a:0:500:0", "64:ff9b:1:a:0:5::", "64:ff9b:1:a00:0:500::"):
        assert IPv4Address("10.0.0.5") in embedded_ipv4(ip_address(layout)), layout
    assert embedded_ipv4(ip_address("::7f00:1")) == {IPv4Address("127.0.0.1")}
    assert embedded_ipv4(ip_address("2606:4700:4700::1111")) == set()
    assert embedded_ipv4(ip_address("8.8.8.8")) == {IPv4Address("8.8.8.8")}
