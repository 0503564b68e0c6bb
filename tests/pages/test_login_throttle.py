"""S19: failed sign-ins are throttled per username and per client address, without revealing usernames."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.signals import user_login_failed
from django.test import Client
from django.urls import reverse

from orders import throttle
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-in attempts. Try again in 15 minutes."


def _sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1", url: str = "") -> Any:
    return client.post(url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _fail(client: Client, username: str, times: int, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        response = _sign_in(client, username, "wrong-password", address)
        assert response.status_code == 200
        assert "don&#x27;t match" in response.content.decode()


def test_login_page_renders(client: Client) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<label for="id_username">' in body
    assert "csrfmiddlewaretoken" in body


def test_good_password_signs_in_and_logout_needs_post(owner: Any, client: Client) -> None:
    response = _sign_in(client, owner.username, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert _signed_in(client)
    assert client.get(reverse("logout")).status_code == 405
    assert _signed_in(client)
    assert client.post(reverse("logout")).status_code == 302
    assert not _signed_in(client)


def test_five_failures_lock_the_username_even_with_the_right_password(owner: Any, client: Client) -> None:
    _fail(client, owner.username, 5)
    response = _sign_in(client, owner.username, PASSWORD, address="10.9.9.9")  # another machine
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert int(response["Retry-After"]) > 0
    assert not _signed_in(client)


def test_locked_attempts_do_not_check_the_password(owner: Any, client: Client) -> None:
    checked: list[str] = []

    def count(sender: Any, credentials: dict[str, Any], **kwargs: Any) -> None:
        checked.append(credentials["username"])

    user_login_failed.connect(count)
    try:
        _fail(client, owner.username, 5)
        assert len(checked) == 5
        _sign_in(client, owner.username, "another-guess")
        _sign_in(client, owner.username, PASSWORD)
        assert len(checked) == 5  # neither attempt reached the authentication backend
    finally:
        user_login_failed.disconnect(count)
    assert not _signed_in(client)


def test_username_case_does_not_buy_more_guesses(owner: Any, client: Client) -> None:
    variants = [owner.username, owner.username.upper(), owner.username.title(), f" {owner.username}", "OLIVIA_owner"]
    for n, name in enumerate(variants):
        _sign_in(client, name, "wrong", address=f"10.0.1.{n}")
    assert _sign_in(client, owner.username, PASSWORD, address="10.0.2.1").status_code == 429


def test_unknown_usernames_are_throttled_the_same_way(owner: Any, client: Client) -> None:
    _fail(client, owner.username, 5, address="10.0.0.1")
    _fail(client, "nobody_by_this_name", 5, address="10.0.0.2")
    real = _sign_in(client, owner.username, "guess", address="10.0.0.3")
    made_up = _sign_in(client, "nobody_by_this_name", "guess", address="10.0.0.4")
    assert real.status_code == made_up.status_code == 429
    assert LOCKED in real.content.decode()
    assert LOCKED in made_up.content.decode()


def test_one_address_is_locked_after_five_failures_across_usernames(owner: Any, viewer: Any, client: Client) -> None:
    for n in range(5):
        _sign_in(client, f"guess{n}", "wrong", address="10.0.0.7")
    assert _sign_in(client, owner.username, PASSWORD, address="10.0.0.7").status_code == 429
    assert not _signed_in(client)
    # The same person from another address is not affected.
    assert _sign_in(client, owner.username, PASSWORD, address="10.0.0.8").status_code == 302


def test_success_resets_the_username_counter(owner: Any, client: Client) -> None:
    _fail(client, owner.username, 4, address="10.0.3.1")
    assert _sign_in(client, owner.username, PASSWORD, address="10.0.3.2").status_code == 302
    client.post(reverse("logout"))
    _fail(client, owner.username, 4, address="10.0.3.3")
    response = _sign_in(client, owner.username, PASSWORD, address="10.0.3.4")
    assert response.status_code == 302  # 4 + 4 failures, but the success in between reset the count


def test_lock_ends_after_the_cooling_off_period(owner: Any, client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail(client, owner.username, 5)
    assert _sign_in(client, owner.username, PASSWORD).status_code == 429
    start = throttle.now()
    monkeypatch.setattr(throttle, "now", lambda: start + 14 * 60)
    response = _sign_in(client, owner.username, PASSWORD)
    assert "Try again in 1 minute." in response.content.decode()
    monkeypatch.setattr(throttle, "now", lambda: start + 15 * 60 + 1)
    assert _sign_in(client, owner.username, PASSWORD).status_code == 302


def test_admin_sign_in_shares_the_throttle(superuser: Any, client: Client) -> None:
    admin_login = reverse("admin:login")
    for _ in range(5):
        _sign_in(client, superuser.username, "wrong", url=admin_login)
    response = _sign_in(client, superuser.username, PASSWORD, url=admin_login)
    assert LOCKED in response.content.decode()
    assert not _signed_in(client)
    # And the lock applies on the main sign-in page too.
    assert _sign_in(client, superuser.username, PASSWORD).status_code == 429


def test_inactive_user_gets_the_same_message_as_a_wrong_password(inactive_user: Any, client: Client) -> None:
    inactive = _sign_in(client, inactive_user.username, PASSWORD)
    wrong = _sign_in(client, "nobody_by_this_name", "wrong", address="10.0.0.99")
    assert inactive.status_code == wrong.status_code == 200
    assert "don&#x27;t match" in inactive.content.decode()
    assert not _signed_in(client)
