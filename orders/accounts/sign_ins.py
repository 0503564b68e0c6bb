"""A person's signed-in browsers ("Your sessions") and ending them; second-factor devices and removing them (S35).

Django's session row is the sign-in; a :class:`~orders.models.BrowserSession` row beside it says whose it is,
since when, from where, in which browser and with which second factor (:func:`browser_session_seen`, called by
the site's middleware on every signed-in request, writes at most once a minute). Ending a session deletes its
Django session: its next page request is signed out, and its live sockets close at their next access re-check
(``orders.live.access``: the session is no longer alive), within ``QFEXDASH_ACCESS_RECHECK_SECONDS``.

Why a model of our own rather than django-user-sessions (MIT, Jazzband): that package replaces the session
engine with its own (``user_sessions.backends.db``), whose ``SessionStore`` needs the user agent and address
to be built — Channels' session middleware, which the live sockets use to read the session from the cookie
(``orders/live/routing.py``), builds stores with the key alone; and its last release (2.0.0, 2022) predates
Django 5.2. A small row beside the session keeps every engine and the sockets as they are.

Removing a person's second-factor devices (the answer to a lost phone) also ends every session of theirs
(:func:`second_factor_remove`, :func:`second_factor_device_delete`); and whatever removed a device, a session
that passed its second factor with it counts as signed out from then on (:mod:`orders.accounts.access`).
"""

from __future__ import annotations

import datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from orders.accounts.people import User
from orders.models import BrowserSession

__all__ = [
    "SEEN_EVERY",
    "browser_session_seen",
    "browser_sessions_of",
    "second_factor_device_delete",
    "second_factor_remove",
    "sessions_end",
]

# How stale "last seen" may get before a request writes it again: one write a minute, not one per request.
SEEN_EVERY = datetime.timedelta(minutes=1)
_USER_AGENT_LENGTH = BrowserSession._meta.get_field("user_agent").max_length


def _store(session_key: str | None = None) -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def _alive(session_key: str) -> bool:
    """Whether Django still has this session, unexpired (a signed-in session always holds data)."""
    return bool(_store(session_key).load())


def browser_session_seen(
    *, user: User, session_key: str, address: str | None, user_agent: str, second_factor: str = ""
) -> None:
    """Record that ``user`` used the session ``session_key`` now (at most one write per :data:`SEEN_EVERY`)."""
    now = timezone.now()
    agent = " ".join(str(user_agent or "").split())[:_USER_AGENT_LENGTH]
    fields = {"user_id": user.pk, "address": address or None, "user_agent": agent, "second_factor": second_factor}
    record = BrowserSession.objects.filter(session_key=session_key).first()
    if record is None:
        _forget_ended(user)  # a new key is often an old session re-keyed at sign-in: drop what ended
        try:
            with transaction.atomic():
                BrowserSession.objects.create(session_key=session_key, signed_in_at=now, last_seen_at=now, **fields)
        except IntegrityError:
            pass  # a request of the same session beat this one to it: its row stands
        return
    changed = any(getattr(record, name) != value for name, value in fields.items())
    if changed or now - record.last_seen_at >= SEEN_EVERY:
        BrowserSession.objects.filter(pk=record.pk).update(last_seen_at=now, **fields)


def _forget_ended(user: User) -> list[BrowserSession]:
    """Drop the rows of ``user``'s sessions that ended (signed out, expired, re-keyed); the others."""
    records = list(BrowserSession.objects.filter(user=user))
    ended = [record.pk for record in records if not _alive(record.session_key)]
    if ended:
        BrowserSession.objects.filter(pk__in=ended).delete()
    return [record for record in records if record.pk not in ended]


def browser_sessions_of(user: User) -> list[BrowserSession]:
    """``user``'s signed-in sessions, most recently used first; rows of sessions that ended are dropped."""
    return _forget_ended(user)


def sessions_end(user: User, *, keep: str | None = None) -> int:
    """End every session of ``user`` but ``keep`` (a session key); how many were signed out."""
    ended = 0
    for record in BrowserSession.objects.filter(user=user).exclude(session_key=keep or ""):
        if _alive(record.session_key):
            ended += 1
        _store(record.session_key).delete()
        record.delete()
    return ended


def second_factor_remove(user: User) -> int:
    """The answer to a lost phone: delete every second-factor device of ``user`` and end all their sessions.

    Their next sign-in starts with enrolment, which asks for the password again. Returns the sessions ended.
    """
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
    return sessions_end(user)


def second_factor_device_delete(device: Any) -> int:
    """Delete one device (the admin's device lists) and end every session of its person."""
    user = device.user
    device.delete()
    return sessions_end(user)
