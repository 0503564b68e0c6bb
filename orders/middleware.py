"""The site's own middleware, in the order ``settings.MIDDLEWARE`` lists them; each is glue that asks the
module owning the rule.

* :class:`SecondFactorGoneMiddleware` (S35) — before django-otp's own: a session whose second-factor device
  was removed (a lost phone) is signed out at its next request, and the sign-in page says why
  (:func:`orders.accounts.access.device_still_there`). django-otp alone would quietly forget the device and
  send the person to enrolment, where a session holder could enrol a phone of their own.
* :class:`TwoFactorMiddleware` (S30) — no page for a session that still owes its second factor
  (:func:`orders.accounts.access.requires_2fa`; the steps themselves are :mod:`orders.signin.two_factor`).
* :class:`BrowserSessionMiddleware` — notes each signed-in session's use, address, browser and second factor
  for "Your sessions" (:func:`orders.accounts.sign_ins.browser_session_seen`).
* :class:`PreferenceMiddleware` — the person's display preferences on the request and their time zone
  active (:mod:`orders.accounts.preferences`).
* :class:`PrivatePagesMiddleware` — response headers for signed-in pages and the Content-Security-Policy's
  WebSocket origin (S28):

  * ``Cache-Control: no-store`` on every response to a signed-in user: account lists, orders and forms
    must not stay in a browser's or a proxy's cache after sign-out. Static files never reach this
    middleware (WhiteNoise answers them first), so they stay cacheable.
  * The policy itself comes from django-csp (``CONTENT_SECURITY_POLICY`` in settings). Its
    ``connect-src`` gets this page's own WebSocket origin (``ws://`` or ``wss://`` plus the request's
    host), which is where the live page's socket (``static/js/live/socket.js``) connects; ``'self'`` alone
    does not cover a ``ws:`` URL in every browser.

They all live here, the two-factor ones too, so that one file holds every piece of code the site runs on
each request; the rules they apply stay in their own modules.

The idle session limit (``QFEXDASH_SESSION_IDLE_MINUTES``) needs no code here: every page request saves
the session with a fresh expiry (``SESSION_SAVE_EVERY_REQUEST``), WebSocket traffic never does, and
both the pages and the live sockets' access re-check refuse a session past its expiry.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable
from urllib.parse import urlencode

import django_otp
from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from orders.accounts.access import device_still_there, requires_2fa
from orders.accounts.preferences import preference_of
from orders.accounts.sign_ins import browser_session_seen
from orders.signin.throttle import client_address
from orders.signin.two_factor import SECOND_FACTOR_GONE, enrolled

GetResponse = Callable[[HttpRequest], HttpResponse]


class SecondFactorGoneMiddleware:
    """Before ``django_otp.middleware.OTPMiddleware``: signs out a session whose second-factor device is gone."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        device_id = request.session.get(django_otp.DEVICE_ID_SESSION_KEY)
        user = getattr(request, "user", None)
        if device_id and user is not None and user.is_authenticated and not device_still_there(user, device_id):
            logout(request)
            return redirect(f"{reverse('signin')}?{urlencode({'ended': SECOND_FACTOR_GONE})}")
        return self.get_response(request)


class TwoFactorMiddleware:
    """After ``django_otp.middleware.OTPMiddleware``: no page for a user who still owes the second factor."""

    _OPEN_PATHS = ("two_factor_setup", "two_factor_verify", "signout", "signin", "healthz")

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not user.is_verified() and requires_2fa(user):
            open_paths = {reverse(name) for name in self._OPEN_PATHS} | {reverse("admin:logout")}
            if request.path not in open_paths and not request.path.startswith(settings.STATIC_URL):
                target = "two_factor_verify" if enrolled(user) else "two_factor_setup"
                return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


class BrowserSessionMiddleware:
    """After django-otp's middleware: records the signed-in session this request used ("Your sessions")."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        session_key = request.session.session_key
        if user is not None and user.is_authenticated and session_key:
            device = getattr(user, "otp_device", None)
            browser_session_seen(
                user=user,
                session_key=session_key,
                address=client_address(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                second_factor=str(getattr(device, "name", "") or ""),
            )
        return response


class PreferenceMiddleware:
    """Puts the person's preferences on ``request.preference`` and activates their time zone."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        preference = preference_of(getattr(request, "user", None))
        request.preference = preference  # type: ignore[attr-defined]
        try:
            timezone.activate(zoneinfo.ZoneInfo(preference.time_zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(datetime.UTC)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class PrivatePagesMiddleware:
    """List after ``csp.middleware.CSPMiddleware`` so its update reaches the policy being built."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response["Cache-Control"] = "no-store"
        scheme = "wss" if request.is_secure() else "ws"
        try:
            host = request.get_host()
        except Exception:  # a disallowed host: Django answers 400 anyway; no origin to add
            return response
        update = dict(getattr(response, "_csp_update", None) or {})
        update["connect-src"] = [*update.get("connect-src", []), f"{scheme}://{host}"]
        response._csp_update = update  # type: ignore[attr-defined]
        return response
