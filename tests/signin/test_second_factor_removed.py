"""S35 on the pages: removing a person's second-factor devices ends their sessions; changing the second factor
needs the password again; enrolment shows a QR code.

The findings: ``second_factor_done`` only checked that the session named a device, not that it still existed,
so removing a lost phone's device (the documented answer) ended no session; and a signed-in session could enrol
a new authenticator and get new recovery codes without the password.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders.models import BrowserSession
from tests.personas import PASSWORD
from tests.signin.two_step import code, enrolled_device, signed_in_with_second_factor

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _two_factor_on(settings: Any) -> None:
    settings.QFEXDASH_REQUIRE_2FA = True


def _signed_out(client: Client) -> bool:
    return "_auth_user_id" not in client.session


def test_a_session_whose_device_was_removed_is_signed_out_at_its_next_request(team_admin: Any) -> None:
    device = enrolled_device(team_admin)
    client = signed_in_with_second_factor(team_admin, device)
    assert client.get(reverse("account_list")).status_code == 200
    TOTPDevice.objects.filter(user=team_admin).delete()  # however it went: shell, admin, another tool
    response = client.get(reverse("account_list"))
    assert response.status_code == 302
    assert response["Location"] == reverse("signin") + "?ended=second-factor"
    assert _signed_out(client)
    page = client.get(response["Location"]).content.decode()
    assert "second-step device of your account was removed" in page
    # Not sent to enrolment, where whoever holds the session could enrol a phone of their own.
    assert client.get(reverse("two_factor_setup")).status_code == 302
    assert not TOTPDevice.objects.filter(user=team_admin).exists()


def test_a_superuser_removing_a_persons_devices_signs_them_out_everywhere(team_admin: Any, superuser: Any) -> None:
    device = enrolled_device(team_admin)
    desk, laptop = signed_in_with_second_factor(team_admin, device), signed_in_with_second_factor(team_admin, device)
    for client in (desk, laptop):
        assert client.get(reverse("account_list")).status_code == 200
    assert BrowserSession.objects.filter(user=team_admin).count() == 2
    root = signed_in_with_second_factor(superuser, enrolled_device(superuser))
    response = root.post(
        reverse("admin:auth_user_changelist"),
        {"action": "remove_second_factor", "_selected_action": [team_admin.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=team_admin).exists()
    assert not StaticDevice.objects.filter(user=team_admin).exists()
    assert not BrowserSession.objects.filter(user=team_admin).exists()
    for client in (desk, laptop):
        assert client.get(reverse("account_list")).status_code == 302
        assert _signed_out(client)
    assert root.get(reverse("admin:index")).status_code == 200  # the superuser's own session is untouched


def test_deleting_a_device_in_the_device_admin_ends_the_persons_sessions(team_admin: Any, superuser: Any) -> None:
    device = enrolled_device(team_admin)
    client = signed_in_with_second_factor(team_admin, device)
    client.get(reverse("account_list"))
    root = signed_in_with_second_factor(superuser, enrolled_device(superuser))
    delete = reverse("admin:otp_totp_totpdevice_delete", args=[device.pk])
    assert BrowserSession.objects.filter(user=team_admin).exists()
    assert root.post(delete, {"post": "yes"}).status_code == 302
    assert not BrowserSession.objects.filter(user=team_admin).exists()
    response = client.get(reverse("account_list"))
    assert response["Location"].startswith(reverse("signin"))  # signed out, not sent to enrol a new phone
    assert _signed_out(client)


def test_enrolment_needs_the_password_again_and_shows_a_qr_code(team_admin: Any) -> None:
    client = Client()
    client.post(reverse("signin"), {"username": team_admin.username, "password": PASSWORD})
    page = client.get(reverse("two_factor_setup")).content.decode()
    qr = re.search(r'<img src="(data:image/svg\+xml[^"]+)"', page)
    assert qr
    assert "<svg" in unquote(qr.group(1))  # an image, allowed by img-src data:; no script, no inline style
    secret = re.search(r'<code id="totp-secret">([A-Z2-7=]+)</code>', page)
    assert secret
    key = base64.b32decode(secret.group(1))
    device = TOTPDevice.objects.get(user=team_admin, confirmed=False)
    token = code(device)
    for password in ("", "not-the-password"):
        refused = client.post(reverse("two_factor_setup"), {"password": password, "token": token})
        assert refused.status_code == 200
        assert "Type your password" in refused.content.decode() or "That is not your password" in (
            refused.content.decode()
        )
        assert not TOTPDevice.objects.filter(user=team_admin, confirmed=True).exists()
    page = client.get(reverse("two_factor_setup")).content.decode()
    secret = re.search(r'<code id="totp-secret">([A-Z2-7=]+)</code>', page)
    assert secret
    key = base64.b32decode(secret.group(1))
    assert key == TOTPDevice.objects.get(user=team_admin, confirmed=False).bin_key
    accepted = client.post(
        reverse("two_factor_setup"), {"password": PASSWORD, "token": code(TOTPDevice.objects.get(user=team_admin))}
    )
    assert accepted.status_code == 200
    assert len(re.findall(r"<li><code>([a-z2-7]{8})</code></li>", accepted.content.decode())) == 10


def test_new_recovery_codes_need_the_password_again(team_admin: Any) -> None:
    device = enrolled_device(team_admin)
    client = signed_in_with_second_factor(team_admin, device)
    url = reverse("two_factor_recovery_codes")
    assert "Your password" in client.get(url).content.decode()
    refused = client.post(url, {"password": "not-the-password"})
    assert "That is not your password" in refused.content.decode()
    assert not StaticToken.objects.filter(device__user=team_admin).exists()
    made = client.post(url, {"password": PASSWORD})
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", made.content.decode())
    assert len(codes) == 10
    assert set(StaticToken.objects.filter(device__user=team_admin).values_list("token", flat=True)) == set(codes)
    assert client.get(reverse("account_list")).status_code == 200  # still signed in


def test_a_wrong_password_there_counts_toward_the_sign_in_throttle(team_admin: Any) -> None:
    device = enrolled_device(team_admin)
    client = signed_in_with_second_factor(team_admin, device)
    for _ in range(5):
        client.post(reverse("two_factor_recovery_codes"), {"password": "guess"})
    locked = Client().post(reverse("signin"), {"username": team_admin.username, "password": PASSWORD})
    assert locked.status_code == 429  # the same address, the same username: the same five guesses
