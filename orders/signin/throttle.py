"""Sign-in throttling with django-axes (S25): the glue between axes and this site.

django-axes keeps its counters in the database (``AccessAttempt`` rows), so every server process shares
them and a restart forgets nothing. A lockout is per username *and* client address combined
(``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``): guessing one person's password from one
machine is stopped, yet nobody can lock a victim out by typing the victim's username from elsewhere.
A locked-out attempt answers 429 with the sign-in page and a plain message, before the password is
checked. The token step of two-factor sign-in (S30) is throttled with the same counters.

The client address is ``REMOTE_ADDR`` unless ``QFEXDASH_TRUSTED_PROXIES`` says how many reverse proxies
stand in front (docs/deployment.md): then django-ipware takes the address that many hops from the right
of ``X-Forwarded-For`` — the part a client cannot choose.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ipware import get_client_ip

__all__ = ["client_address", "lockout_message", "lockout_response", "normalise_username"]


def client_address(request: HttpRequest | None) -> str | None:
    """The address a request came from, counting ``QFEXDASH_TRUSTED_PROXIES`` proxies (0: ``REMOTE_ADDR``)."""
    if request is None:
        return None
    proxies = settings.QFEXDASH_TRUSTED_PROXIES
    remote = str(request.META.get("REMOTE_ADDR") or "") or None
    if proxies <= 0:
        return remote
    address, _routable = get_client_ip(
        request,
        proxy_order="right-most",
        proxy_count=proxies,
        request_header_order=["HTTP_X_FORWARDED_FOR"],
    )
    return address or remote


def normalise_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """The username axes counts by, case-folded: varying the case must not buy more guesses."""
    field = settings.AXES_USERNAME_FORM_FIELD  # type: ignore[misc]  # django-axes adds its defaults to settings
    value = (credentials or {}).get(field) if credentials else None
    if value is None and request is not None:
        value = request.POST.get(field)
    return str(value or "").strip().casefold()


def lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message(seconds: int | None = None) -> str:
    seconds = lockout_seconds() if seconds is None else seconds
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-in attempts. Try again in {minutes} {unit}."


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """The sign-in page again, with the lockout in words, as 429 with ``Retry-After``."""
    from django.forms.utils import ErrorDict
    from django.shortcuts import render

    from orders.signin.forms import SignInForm

    username = str(request.POST.get(settings.AXES_USERNAME_FORM_FIELD) or "")[:150]  # type: ignore[misc]  # axes' default
    form = SignInForm(request, data={"username": username})
    # Marked as validated without validating: cleaning would try the password again.
    form._errors, form.cleaned_data = ErrorDict(), {}  # type: ignore[attr-defined]  # Django's own, unstubbed
    form.add_error(None, lockout_message())
    template = "registration/login.html"
    response = render(request, template, {"form": form, "lockout": True}, status=429)
    response["Retry-After"] = str(lockout_seconds())
    return response
