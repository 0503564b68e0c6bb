"""S38: the sign-in throttle also counts per address, groups IPv6 by /64, and slows — never locks — a user
name attacked from many addresses.

The findings: only (username, address) pairs were counted. Twelve user names from one address never
locked (password spraying); 32 wrong guesses for one user from 127.0.0.2 to .9 got no lockout and the right
password still worked from there; an IPv6 host could rotate through its /64. What must stay true (S25): the
right password from an address with no recent failures always gets in, so nobody locks a victim out.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from orders.signin.throttle import client_address, slowdown_seconds
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db


def _sign_in(username: str, password: str, address: str) -> Any:
    return Client().post(reverse("signin"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_spraying_many_user_names_from_one_address_locks_that_address(settings: Any, owner: Any) -> None:
    settings.QFEXDASH_LOGIN_MAX_FAILURES_PER_ADDRESS = 12
    for n in range(11):
        assert _sign_in(f"sprayed{n}", "Winter2026!", "203.0.113.7").status_code == 200
    assert _sign_in("sprayed11", "Winter2026!", "203.0.113.7").status_code == 429  # the 12th failure locks
    refused = _sign_in(owner.username, PASSWORD, "203.0.113.7")  # even the right password, from there
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts from your network" in refused.content.decode()
    assert "Try again in 15 minutes" in refused.content.decode()
    assert int(refused["Retry-After"]) == settings.QFEXDASH_LOGIN_LOCKOUT_SECONDS
    assert _sign_in(owner.username, PASSWORD, "198.51.100.2").status_code == 302  # another address: in


def test_one_user_name_from_many_addresses_is_slowed_and_the_owner_still_gets_in(owner: Any) -> None:
    for host in range(2, 10):  # 32 guesses, 4 from each address: under the per-pair limit of 5
        for _ in range(4):
            response = _sign_in(owner.username, "guess", f"127.0.0.{host}")
        assert response.status_code in (200, 429)
    slowed = _sign_in(owner.username, PASSWORD, "127.0.0.9")  # the right password, from an attacking address
    assert slowed.status_code == 429
    body = slowed.content.decode()
    assert "failed sign-ins for this username" in body
    assert f"Wait {slowed['Retry-After']} seconds" in body
    assert 0 < int(slowed["Retry-After"]) <= 60
    # The owner, from an address with no recent failures, is never kept out (S25).
    assert _sign_in(owner.username, PASSWORD, "127.0.0.20").status_code == 302


def test_the_slowdown_grows_and_is_capped(settings: Any) -> None:
    settings.QFEXDASH_LOGIN_MAX_FAILURES = 5
    settings.QFEXDASH_LOGIN_SLOWDOWN_MAX_SECONDS = 60
    delays = [slowdown_seconds(failures) for failures in range(0, 40)]
    assert delays[:5] == [0, 0, 0, 0, 0]  # the first few mistakes cost nothing
    assert delays[5:10] == [1, 2, 4, 8, 16]
    assert max(delays) == 60
    assert delays == sorted(delays)


def test_ipv6_addresses_count_by_their_64(owner: Any) -> None:
    for n in range(1, 6):  # five guesses, each from another address of one /64
        _sign_in(owner.username, "guess", f"2001:db8:1:2::{n:x}")
    assert _sign_in(owner.username, PASSWORD, "2001:db8:1:2:ffff::1").status_code == 429
    assert _sign_in(owner.username, PASSWORD, "2001:db8:1:3::1").status_code == 302  # the next /64 is elsewhere


@pytest.mark.parametrize(
    ("remote", "counted"),
    [
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # an IPv4 client on a dual-stack socket is that IPv4 address
        ("203.0.113.9", "203.0.113.9"),
        ("fe80::1%eth0", "fe80::"),
    ],
)
def test_the_counted_address(rf: Any, remote: str, counted: str) -> None:
    assert client_address(rf.get("/", REMOTE_ADDR=remote)) == counted
