"""S30: superusers and team admins sign in with a second factor (TOTP, or a one-time recovery code).

Through the real pages with the Django test client: the password first, then enrolment (secret shown once,
recovery codes shown once) or the token step, which is throttled; nothing else — the admin included —
opens before it, and a live socket of a half-signed-in session is refused.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders.live.access import session_user
from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _two_factor_on(settings: Any) -> None:
    settings.QFEXDASH_REQUIRE_2FA = True


def _password(client: Client, user: Any, next_url: str = "/") -> Any:
    return client.post(
        reverse("signin") + f"?next={next_url}", {"username": user.username, "password": PASSWORD, "next": next_url}
    )


def _code(key: bytes) -> str:
    return f"{totp(key):06d}"


def _enrolled(user: Any) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="app", confirmed=True)


def test_a_superuser_enrols_before_anything_else(superuser: Any) -> None:
    client = Client()
    response = _password(client, superuser)
    assert response.status_code == 302
    for url in ("/", reverse("admin:index"), reverse("my_accounts")):  # nothing opens before enrolment
        blocked = client.get(url)
        assert blocked.status_code == 302
        assert blocked["Location"].startswith(reverse("two_factor_setup"))
    page = client.get(reverse("two_factor_setup")).content.decode()
    uri = re.search(r'href="(otpauth://totp/[^"]+)"', page)
    secret = re.search(r'<code id="totp-secret">([A-Z2-7=]+)</code>', page)
    assert uri
    assert secret
    assert "secret=" in uri.group(1).replace("&amp;", "&")
    key = base64.b32decode(secret.group(1))
    confirmed = client.post(reverse("two_factor_setup"), {"password": PASSWORD, "token": _code(key), "next": "/"})
    assert confirmed.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", confirmed.content.decode())
    assert len(codes) == 10  # recovery codes, shown once
    assert client.get("/").status_code == 200
    assert client.get(reverse("admin:index")).status_code == 200
    # Shown once: the setup page no longer shows a secret or codes.
    again = client.get(reverse("two_factor_setup"))
    assert again.status_code == 302
    assert secret.group(1) not in client.get("/").content.decode()


def test_reloading_enrolment_makes_a_new_secret(superuser: Any) -> None:
    client = Client()
    _password(client, superuser)
    first = re.search(r'id="totp-secret">([A-Z2-7=]+)<', client.get(reverse("two_factor_setup")).content.decode())
    second = re.search(r'id="totp-secret">([A-Z2-7=]+)<', client.get(reverse("two_factor_setup")).content.decode())
    assert first
    assert second
    assert first.group(1) != second.group(1)
    stale = client.post(
        reverse("two_factor_setup"), {"password": PASSWORD, "token": _code(base64.b32decode(first.group(1)))}
    )
    assert "does not match" in stale.content.decode()


def test_a_team_admin_is_asked_for_the_code_after_the_password(team_admin: Any) -> None:
    device = _enrolled(team_admin)
    client = Client()
    response = _password(client, team_admin, next_url="/my/accounts/")
    assert response.status_code == 302
    step = client.get(response["Location"], follow=True)
    assert step.redirect_chain[-1][0].startswith(reverse("two_factor_verify"))
    wrong = client.post(reverse("two_factor_verify"), {"token": "000000", "next": "/my/accounts/"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    right = client.post(reverse("two_factor_verify"), {"token": _code(device.bin_key), "next": "/my/accounts/"})
    assert right.status_code == 302
    assert right["Location"] == "/my/accounts/"
    assert client.get("/my/accounts/").status_code == 200


def test_the_token_step_is_throttled(team_admin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    device = _enrolled(team_admin)
    client = Client()
    _password(client, team_admin)
    # The throttle's clock stands still: each wrong code's delay (1 s, 2 s, 4 s…) must not run out while a
    # busy machine answers the next try, or the test would measure the machine's speed instead of the rule.
    frozen = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    statuses = [client.post(reverse("two_factor_verify"), {"token": "123456"}).status_code for _ in range(5)]
    assert statuses[0] == 200
    assert 429 in statuses  # refused for a growing delay after wrong codes
    locked = client.post(reverse("two_factor_verify"), {"token": _code(device.bin_key)})
    assert locked.status_code == 429  # even the right code waits
    assert "Too many wrong codes" in locked.content.decode()
    assert client.get("/").status_code == 302


def test_a_recovery_code_works_once(team_admin: Any) -> None:
    _enrolled(team_admin)
    from django_otp.plugins.otp_static.models import StaticDevice

    recovery = StaticDevice.objects.create(user=team_admin, name="codes", confirmed=True)
    StaticToken.objects.create(device=recovery, token="abcd2345")
    client = Client()
    _password(client, team_admin)
    assert client.post(reverse("two_factor_verify"), {"token": "ABCD 2345"}).status_code == 302
    assert client.get("/").status_code == 200
    other = Client()
    _password(other, team_admin)
    assert other.post(reverse("two_factor_verify"), {"token": "abcd2345"}).status_code == 200  # used up


def test_traders_and_viewers_sign_in_with_the_password_only(trader: Any, viewer: Any) -> None:
    for user in (trader, viewer):
        client = Client()
        _password(client, user)
        assert client.get("/").status_code == 200


def test_a_half_signed_in_session_opens_no_live_stream(team_admin: Any) -> None:
    device = _enrolled(team_admin)
    client = Client()
    _password(client, team_admin)
    key = client.cookies["sessionid"].value
    assert not session_user(SessionStore(key)).is_authenticated
    client.post(reverse("two_factor_verify"), {"token": _code(device.bin_key)})
    key = client.cookies["sessionid"].value
    assert session_user(SessionStore(key)) == team_admin


def test_switched_off_nobody_is_asked(superuser: Any, settings: Any) -> None:
    settings.QFEXDASH_REQUIRE_2FA = False
    client = Client()
    _password(client, superuser)
    assert client.get(reverse("admin:index")).status_code == 200
