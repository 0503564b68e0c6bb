"""Two-factor sign-in (S30) with django-otp: TOTP, and one-time recovery codes.

Who must use it: superusers and team admins (any Membership with role "admin") — the people who can
add, move or remove keys that can trade — whenever ``QFEXDASH_REQUIRE_2FA`` is on (the default when
DEBUG is off; the demo switches it off).

The flow: the password is checked first (the sign-in page, throttled by django-axes); then
:class:`orders.middleware.TwoFactorMiddleware` sends such a user, before anything else (the admin
included), either to enrolment (no confirmed device yet) or to the token step. Enrolment shows an
``otpauth://`` URI, its QR code (an SVG image made by segno, as a ``data:`` URL the Content-Security-Policy's
``img-src`` allows) and the base32 secret once, asks for the password again and a first code to confirm, then
shows ten recovery codes once. New recovery codes (:func:`recovery_codes`) also need the password again: a
session left open somewhere must not be enough to take over the second factor (S35). The token step accepts
a TOTP code or an unused recovery code; django-otp's own throttling refuses further tries for a growing
delay after each wrong code (1 s, 2 s, 4 s, …), answered 429 with the wait in words.

Who owes the second factor, and whether a session has given it, is answered by
:func:`orders.accounts.access.requires_2fa` and :func:`~orders.accounts.access.second_factor_done`: the
pages (through that middleware) and the live sockets (``orders.live.access.session_user``) ask the same
question there, so a session that has the password but not the second factor opens neither.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import django_otp
import segno
from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders.accounts.access import requires_2fa
from orders.accounts.people import User, signed_in

RECOVERY_CODES = 10
# ``?ended=`` on the sign-in page: the session was signed out because its second-factor device was removed.
SECOND_FACTOR_GONE = "second-factor"
PASSWORD_WRONG = "That is not your password. Type the password you sign in with."  # noqa: S105  (words)
_TOTP_NAME = "Authenticator app"
_RECOVERY_NAME = "Recovery codes"


def _verified(user: User) -> bool:
    """Whether this request's session passed the second factor (django-otp's middleware adds the method)."""
    return bool(user.is_verified())  # type: ignore[attr-defined]


def enrolled(user: User) -> bool:
    """Whether ``user`` has a confirmed authenticator app (else the second step starts with enrolment)."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


class TokenForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        error_messages={"required": "Enter the code."},
    )

    def clean_token(self) -> str:
        return "".join(self.cleaned_data["token"].split()).lower()


class PasswordAgainForm(forms.Form):
    """The password typed again before the second factor changes (S35); checked through the sign-in throttle."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Type your password again: changing how you sign in needs it.",
        error_messages={"required": "Type your password."},
    )

    def __init__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        user = signed_in(self.request)
        # authenticate() counts a wrong password like one on the sign-in page (django-axes), so this form
        # cannot be used to guess it.
        if authenticate(self.request, username=user.get_username(), password=password) != user:
            raise forms.ValidationError(PASSWORD_WRONG, code="wrong_password")
        return password


class EnrolForm(PasswordAgainForm, TokenForm):
    """Enrolment's form: the password again, then the first code from the app."""

    field_order = ["password", "token"]


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return "/"
    return target


def _devices_for(user: User, token: str) -> list[Any]:
    """The devices a token is meant for: digits → the authenticator app; anything else → recovery codes.

    Keeping them apart means a recovery code typed in does not count as a wrong app code (each device has
    its own throttle).
    """
    return [d for d in django_otp.devices_for_user(user) if isinstance(d, TOTPDevice) == token.isdigit()]


def _throttle_wait(devices: list[Any]) -> int:
    """Seconds until one of ``devices`` accepts another try (0: one does now, or there are none)."""
    waits = []
    now = timezone.now()
    for device in devices:
        allowed, details = device.verify_is_allowed()
        if allowed:
            return 0
        locked_until = (details or {}).get("locked_until")
        waits.append((locked_until - now).total_seconds() if locked_until else 1.0)
    return math.ceil(max(1.0, min(waits))) if waits else 0


def _wait_words(seconds: int) -> str:
    return f"Too many wrong codes. Wait {seconds} second{'s' if seconds != 1 else ''} and try again."


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The token step after the password, throttled by django-otp per device (429 while it must wait)."""
    user = signed_in(request)
    if _verified(user) or not requires_2fa(user):
        return redirect(_next_url(request))
    if not enrolled(user):
        return redirect("two_factor_setup")
    form = TokenForm(request.POST or None)
    wait = 0
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        devices = _devices_for(user, token)
        wait = _throttle_wait(devices)
        if wait:
            form.add_error("token", _wait_words(wait))
        else:
            for device in devices:
                verified = django_otp.verify_token(user, device.persistent_id, token)
                if verified is not None:
                    django_otp.login(request, verified)
                    request.session.cycle_key()  # a new session id once fully signed in
                    return redirect(_next_url(request))
            form.add_error("token", "That code is not right. App codes change every 30 seconds; try the current one.")
    context = {"form": form, "next": _next_url(request)}
    response = render(request, "registration/two_factor_verify.html", context, status=429 if wait else 200)
    if wait:
        response["Retry-After"] = str(wait)
    return response


def _pending_device(user: User, *, fresh: bool) -> TOTPDevice:
    devices = TOTPDevice.objects.filter(user=user, confirmed=False)
    if fresh:
        devices.delete()  # the secret is shown once: a new visit gets a new one
    device = devices.first() if not fresh else None
    return device or TOTPDevice.objects.create(user=user, name=_TOTP_NAME, confirmed=False)


@login_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Enrolment: the secret (once), a first code to confirm it, then the recovery codes (once)."""
    user = signed_in(request)
    if enrolled(user):
        return redirect("two_factor_verify" if not _verified(user) else _next_url(request))
    form = EnrolForm(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
        if device is not None and device.verify_token(form.cleaned_data["token"]):
            codes = _confirm(user, device)
            django_otp.login(request, device)
            request.session.cycle_key()
            return render(request, "registration/two_factor_codes.html", {"codes": codes, "next": _next_url(request)})
        form.add_error("token", "That code does not match; scan the new secret below and enter the current code.")
    device = _pending_device(user, fresh=True)
    secret = base64.b32encode(device.bin_key).decode("ascii")
    context = {
        "form": form,
        "config_url": device.config_url,
        "qr_code": segno.make(device.config_url, error="m").svg_data_uri(scale=4, border=2, dark="#000", light="#fff"),
        "secret": secret,
        "next": _next_url(request),
    }
    return render(request, "registration/two_factor_setup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """New recovery codes (the old ones stop working), after the password again; for an enrolled, verified user."""
    user = signed_in(request)
    if not enrolled(user) or not _verified(user):
        return redirect("two_factor_setup" if not enrolled(user) else "two_factor_verify")
    form = PasswordAgainForm(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        codes = _new_recovery_codes(user)
        return render(request, "registration/two_factor_codes.html", {"codes": codes, "next": _next_url(request)})
    return render(request, "registration/two_factor_new_codes.html", {"form": form, "next": _next_url(request)})


@transaction.atomic
def _confirm(user: User, device: TOTPDevice) -> list[str]:
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return _new_recovery_codes(user)


@transaction.atomic
def _new_recovery_codes(user: User) -> list[str]:
    """Ten new codes on the person's one recovery-code device; the old codes stop working. The device itself
    stays, so a session that signed in with a recovery code is not signed out by it (S35)."""
    recovery = StaticDevice.objects.filter(user=user, name=_RECOVERY_NAME).first()
    StaticDevice.objects.filter(user=user).exclude(pk=getattr(recovery, "pk", None)).delete()
    if recovery is None:
        recovery = StaticDevice.objects.create(user=user, name=_RECOVERY_NAME, confirmed=True)
    recovery.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=recovery, token=code) for code in codes])
    return codes
