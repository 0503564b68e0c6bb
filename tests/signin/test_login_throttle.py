"""S19/S25: failed sign-ins are throttled by django-axes per username *and* address, in the database.

The attacks this closes: behind nginx with ``$proxy_add_x_forwarded_for`` the client-chosen left end of
X-Forwarded-For used to be counted (a fresh "address" per attempt); counters lived per process and
vanished on restart; and anyone could lock a victim out by typing the victim's username.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.signals import user_login_failed
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-in attempts. Try again in 15 minutes."


def _sign_in(
    client: Client, username: str, password: str, address: str = "10.0.0.1", url: str = "", **meta: Any
) -> Any:
    data = {"username": username, "password": password}
    return client.post(url or reverse("signin"), data, REMOTE_ADDR=address, **meta)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _fail(client: Client, username: str, times: int, address: str = "10.0.0.1", **meta: str) -> None:
    """``times`` wrong passwords; the fifth failure is already answered with the lockout (429)."""
    for n in range(1, times + 1):
        response = _sign_in(client, username, "wrong-password", address, **meta)
        if n < 5:
            assert response.status_code == 200
            assert "don&#x27;t match" in response.content.decode()
        else:
            assert response.status_code == 429


def test_login_page_renders(client: Client) -> None:
    response = client.get(reverse("signin"))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<label for="id_username">' in body
    assert "csrfmiddlewaretoken" in body


def test_good_password_signs_in_and_logout_needs_post(owner: Any, client: Client) -> None:
    response = _sign_in(client, owner.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert _signed_in(client)
    assert client.get(reverse("signout")).status_code == 405
    assert _signed_in(client)
    assert client.post(reverse("signout")).status_code == 302
    assert not _signed_in(client)


def test_five_failures_lock_that_username_from_that_address(owner: Any, client: Client) -> None:
    _fail(client, owner.username, 5)
    response = _sign_in(client, owner.username, PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert int(response["Retry-After"]) == 15 * 60
    assert not _signed_in(client)


def test_the_victim_still_signs_in_from_another_address(owner: Any, client: Client) -> None:
    """Nobody can lock a victim out by username alone: the lockout is username and address combined."""
    _fail(client, owner.username, 5, address="203.0.113.66")  # the attacker
    assert _sign_in(client, owner.username, "guess", address="203.0.113.66").status_code == 429
    assert _sign_in(client, owner.username, PASSWORD, address="198.51.100.7").status_code == 302  # the victim
    assert _signed_in(client)


def test_counters_live_in_the_database_shared_by_every_process(owner: Any) -> None:
    _fail(Client(), owner.username, 5)
    attempt = AccessAttempt.objects.get()
    assert (attempt.username, attempt.ip_address, attempt.failures_since_start) == (owner.username, "10.0.0.1", 5)
    # Another process (here: another client, no shared memory) sees the same lockout.
    assert _sign_in(Client(), owner.username, PASSWORD).status_code == 429


def test_a_spoofed_x_forwarded_for_is_not_counted(owner: Any, client: Client) -> None:
    """With QFEXDASH_TRUSTED_PROXIES=0 only REMOTE_ADDR counts: a fresh X-Forwarded-For per try buys nothing."""
    for n in range(5):
        _sign_in(client, owner.username, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    response = _sign_in(client, owner.username, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429


def test_behind_a_trusted_proxy_the_rightmost_hop_counts(owner: Any, client: Client, settings: Any) -> None:
    """One proxy appending to X-Forwarded-For: the client's left-end choice is ignored, the real hop counts."""
    settings.QFEXDASH_TRUSTED_PROXIES = 1
    for n in range(5):  # nginx ($proxy_add_x_forwarded_for) appends the real client 203.0.113.9
        _sign_in(client, owner.username, "wrong", address="127.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.9")
    locked = _sign_in(
        client, owner.username, PASSWORD, address="127.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9"
    )
    assert locked.status_code == 429
    assert AccessAttempt.objects.get().ip_address == "203.0.113.9"
    # Another real client behind the same proxy is not affected.
    other = _sign_in(client, owner.username, PASSWORD, address="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert other.status_code == 302


def test_locked_attempts_do_not_check_the_password(owner: Any, client: Client) -> None:
    checked: list[str] = []

    def count(sender: Any, credentials: dict[str, Any], **kwargs: Any) -> None:
        checked.append(credentials["username"])

    user_login_failed.connect(count)
    try:
        _fail(client, owner.username, 5)
        assert len(checked) == 5
        _sign_in(client, owner.username, PASSWORD)
        assert not _signed_in(client)
    finally:
        user_login_failed.disconnect(count)


def test_username_case_does_not_buy_more_guesses(owner: Any, client: Client) -> None:
    for name in [owner.username, owner.username.upper(), owner.username.title(), f" {owner.username}", "OLIVIA_owner"]:
        _sign_in(client, name, "wrong")
    assert _sign_in(client, owner.username, PASSWORD).status_code == 429


def test_unknown_usernames_are_throttled_the_same_way(owner: Any, client: Client) -> None:
    _fail(client, owner.username, 5, address="10.0.0.1")
    _fail(client, "nobody_by_this_name", 5, address="10.0.0.2")
    real = _sign_in(client, owner.username, "guess", address="10.0.0.1")
    made_up = _sign_in(client, "nobody_by_this_name", "guess", address="10.0.0.2")
    assert real.status_code == made_up.status_code == 429
    assert LOCKED in real.content.decode()
    assert LOCKED in made_up.content.decode()


def test_success_resets_the_counter(owner: Any, client: Client) -> None:
    _fail(client, owner.username, 4)
    assert _sign_in(client, owner.username, PASSWORD).status_code == 302
    client.post(reverse("signout"))
    _fail(client, owner.username, 4)
    assert _sign_in(client, owner.username, PASSWORD).status_code == 302  # 4 + 4, reset in between


def test_lock_ends_after_the_cooling_off_period(owner: Any, client: Client) -> None:
    _fail(client, owner.username, 5)
    assert _sign_in(client, owner.username, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))
    assert _sign_in(client, owner.username, PASSWORD).status_code == 302


def test_admin_sign_in_shares_the_throttle(superuser: Any, client: Client) -> None:
    admin_login = reverse("admin:login")
    for _ in range(5):
        _sign_in(client, superuser.username, "wrong", url=admin_login)
    response = _sign_in(client, superuser.username, PASSWORD, url=admin_login)
    assert response.status_code == 429
    assert not _signed_in(client)
    assert _sign_in(client, superuser.username, PASSWORD).status_code == 429  # the main page too


def test_inactive_user_gets_the_same_message_as_a_wrong_password(inactive_user: Any, client: Client) -> None:
    inactive = _sign_in(client, inactive_user.username, PASSWORD)
    wrong = _sign_in(client, "nobody_by_this_name", "wrong", address="10.0.0.99")
    assert inactive.status_code == wrong.status_code == 200
    assert "don&#x27;t match" in inactive.content.decode()
    assert not _signed_in(client)
