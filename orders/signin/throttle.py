"""Sign-in throttling with django-axes (S25, S38): the glue between axes and this site.

django-axes keeps its counters in the database (``AccessAttempt`` rows), so every server process shares
them and a restart forgets nothing. Three rules, all within the last ``QFEXDASH_LOGIN_LOCKOUT_SECONDS``
(:class:`SignInThrottle`, axes' database handler with the two rules axes has no parameter for):

1. **One username from one address** (``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``):
   ``QFEXDASH_LOGIN_MAX_FAILURES`` failures lock that pair out — guessing one person's password from one
   machine is stopped.
2. **One address, any usernames** (password spraying): ``QFEXDASH_LOGIN_MAX_FAILURES_PER_ADDRESS`` failures
   lock the address out, whatever username it tries next. An office behind one NAT shares this allowance,
   hence its own, larger limit.
3. **One username from many addresses**: never a lockout — that would let anyone lock a victim out from
   elsewhere. Once the username has more failures than rule 1 allows, each further try from an address that
   has failed for it recently must wait (:func:`slowdown_seconds`: 1 s, 2 s, 4 s… up to
   ``QFEXDASH_LOGIN_SLOWDOWN_MAX_SECONDS``) after the username's last failure. The right password from an
   address with no recent failure for that username is always let through to the password check.

An IPv6 client counts by its /64 (``QFEXDASH_LOGIN_IPV6_PREFIX``): one host usually holds the whole /64 and
could otherwise take a fresh address for every guess. Refused attempts are not counted again (a retry during
the wait does not push it further away). A refused attempt answers 429 with the sign-in page, the reason and
when to try again in words and in ``Retry-After``, before the password is checked.

The client address is ``REMOTE_ADDR`` unless ``QFEXDASH_TRUSTED_PROXIES`` says how many reverse proxies
stand in front (docs/deployment.md): then django-ipware takes the address that many hops from the right
of ``X-Forwarded-For`` — the part a client cannot choose.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ipware import get_client_ip

__all__ = [
    "SignInThrottle",
    "client_address",
    "lockout_message",
    "lockout_response",
    "normalise_username",
    "slowdown_seconds",
]

# Why a request was refused, for its page (set on the request by SignInThrottle).
_ADDRESS_LOCKED = "address"
_SLOWED = "slowed"


def _counted(address: str) -> str:
    """The address as the throttle counts it: IPv4 as it is (also when written ``::ffff:a.b.c.d``), IPv6 by its
    network of ``QFEXDASH_LOGIN_IPV6_PREFIX`` bits (zone index dropped)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        network = ipaddress.IPv6Network((ip, settings.QFEXDASH_LOGIN_IPV6_PREFIX), strict=False)
        return str(network.network_address)
    return str(ip)


def client_address(request: HttpRequest | None) -> str | None:
    """The address a request came from, counting ``QFEXDASH_TRUSTED_PROXIES`` proxies (0: ``REMOTE_ADDR``),
    IPv6 grouped by its /64 (:func:`_counted`)."""
    if request is None:
        return None
    proxies = settings.QFEXDASH_TRUSTED_PROXIES
    remote = str(request.META.get("REMOTE_ADDR") or "") or None
    address = remote
    if proxies > 0:
        address, _routable = get_client_ip(
            request,
            proxy_order="right-most",
            proxy_count=proxies,
            request_header_order=["HTTP_X_FORWARDED_FOR"],
        )
        address = address or remote
    return _counted(address) if address else None


def slowdown_seconds(failures: int) -> int:
    """How long a username with ``failures`` recent failures (from every address) waits between tries from an
    address that failed for it: nothing up to ``QFEXDASH_LOGIN_MAX_FAILURES``, then 1 s doubling per failure,
    at most ``QFEXDASH_LOGIN_SLOWDOWN_MAX_SECONDS``."""
    beyond = failures - settings.QFEXDASH_LOGIN_MAX_FAILURES
    if beyond < 0:
        return 0
    cap = settings.QFEXDASH_LOGIN_SLOWDOWN_MAX_SECONDS
    return int(min(cap, 2 ** min(beyond, 32)))


def _counted_address(request: HttpRequest) -> str | None:
    """The address axes put on the request (:func:`client_address`, read once per request)."""
    return getattr(request, "axes_ip_address", None)


def _failures(attempts: Any) -> int:
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


class SignInThrottle(AxesDatabaseHandler):
    """axes' database handler plus the per-address lockout and the per-username slowdown (module docstring)."""

    def _recent(self, request: HttpRequest) -> Any:
        return AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """The (username, address) failures — or the lockout's limit when the address as a whole reached its own."""
        pair = super().get_failures(request, credentials)
        limit = get_failure_limit(request, credentials)
        if pair < limit:
            address = _failures(self._recent(request).filter(ip_address=_counted_address(request)))
            if address >= settings.QFEXDASH_LOGIN_MAX_FAILURES_PER_ADDRESS:
                request.qfexdash_refusal = _ADDRESS_LOCKED  # type: ignore[attr-defined]
                return limit
        return pair

    def is_locked(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
        if super().is_locked(request, credentials):
            return True
        wait = self.slowdown_wait(request, credentials)
        if wait > 0:
            request.qfexdash_refusal = _SLOWED  # type: ignore[attr-defined]
            request.qfexdash_wait = wait  # type: ignore[attr-defined]
            return True
        return False

    def slowdown_wait(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        """Seconds this address must still wait before trying this username again (0: it may try now)."""
        username = get_client_username(request, credentials)
        if not username:
            return 0
        attempts = self._recent(request).filter(username=username)
        if not attempts.filter(ip_address=_counted_address(request)).exists():
            return 0  # an address with no recent failure for this username is never slowed (S25)
        delay = slowdown_seconds(_failures(attempts))
        last = attempts.aggregate(last=Max("attempt_time"))["last"]
        if not delay or last is None:
            return 0
        return max(0, math.ceil(delay - (timezone.now() - last).total_seconds()))


def normalise_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str:
    """The username axes counts by, case-folded: varying the case must not buy more guesses."""
    field = settings.AXES_USERNAME_FORM_FIELD  # type: ignore[misc]  # django-axes adds its defaults to settings
    value = (credentials or {}).get(field) if credentials else None
    if value is None and request is not None:
        value = request.POST.get(field)
    return str(value or "").strip().casefold()


def lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def _in_minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"


def lockout_message(seconds: int | None = None) -> str:
    seconds = lockout_seconds() if seconds is None else seconds
    return f"Too many failed sign-in attempts. Try again in {_in_minutes(seconds)}."


def _refusal(request: HttpRequest) -> tuple[str, int]:
    """The words for a refused sign-in and the seconds until the next try may succeed."""
    reason = getattr(request, "qfexdash_refusal", None)
    if reason == _SLOWED:
        wait = int(getattr(request, "qfexdash_wait", 1))
        unit = "second" if wait == 1 else "seconds"
        return (
            f"There have been many failed sign-ins for this username lately. Wait {wait} {unit} and try again; "
            "signing in from your usual network is not slowed.",
            wait,
        )
    seconds = lockout_seconds()
    if reason == _ADDRESS_LOCKED:
        return (
            f"Too many failed sign-in attempts from your network. Try again in {_in_minutes(seconds)}, "
            "or from another network.",
            seconds,
        )
    return lockout_message(seconds), seconds


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """The sign-in page again, with the lockout in words, as 429 with ``Retry-After``."""
    from django.forms.utils import ErrorDict
    from django.shortcuts import render

    from orders.signin.forms import SignInForm

    username = str(request.POST.get(settings.AXES_USERNAME_FORM_FIELD) or "")[:150]  # type: ignore[misc]  # axes' default
    form = SignInForm(request, data={"username": username})
    # Marked as validated without validating: cleaning would try the password again.
    form._errors, form.cleaned_data = ErrorDict(), {}  # type: ignore[attr-defined]  # Django's own, unstubbed
    message, retry_after = _refusal(request)
    form.add_error(None, message)
    template = "registration/login.html"
    response = render(request, template, {"form": form, "lockout": True}, status=429)
    response["Retry-After"] = str(retry_after)
    return response
