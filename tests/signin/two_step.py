"""Helpers for tests that sign in through the real pages with a second factor (S30, S35)."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.personas import PASSWORD

__all__ = ["code", "enrolled_device", "signed_in_with_second_factor"]


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def enrolled_device(user: Any) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def signed_in_with_second_factor(user: Any, device: TOTPDevice, **meta: Any) -> Client:
    """A client that signed in through the sign-in page and the token step with ``device``'s current code."""
    client = Client(**meta)
    assert client.post(reverse("signin"), {"username": user.username, "password": PASSWORD}).status_code == 302
    device.refresh_from_db()
    device.last_t = -1  # another client may have used this 30-second step's code already
    device.save(update_fields=["last_t"])
    response = client.post(reverse("two_factor_verify"), {"token": code(device), "next": "/"})
    assert response.status_code == 302, response.content.decode()[:500]
    return client
