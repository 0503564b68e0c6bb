"""Sign-in throttling: too many failed attempts for one username or one client address locks it out.

Counters live in Django's cache (per process with the default LocMem cache, shared with Redis), so
the throttle adds no table. Both the username and the client address are counted: the username
limit stops guessing one person's password from many machines, the address limit stops one machine
trying many usernames. Usernames that do not exist are counted exactly like real ones, so the
throttle never tells anybody whether a username exists.

The limits can be tuned with the optional settings ``QFEXDASH_LOGIN_MAX_FAILURES``,
``QFEXDASH_LOGIN_FAILURE_WINDOW`` and ``QFEXDASH_LOGIN_LOCKOUT_SECONDS``.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

DEFAULT_MAX_FAILURES = 5
DEFAULT_FAILURE_WINDOW = 15 * 60  # seconds during which failures add up
DEFAULT_LOCKOUT_SECONDS = 15 * 60  # cooling-off period once the limit is reached

_PREFIX = "qfexdash:login"


def max_failures() -> int:
    return int(getattr(settings, "QFEXDASH_LOGIN_MAX_FAILURES", DEFAULT_MAX_FAILURES))


def failure_window() -> int:
    return int(getattr(settings, "QFEXDASH_LOGIN_FAILURE_WINDOW", DEFAULT_FAILURE_WINDOW))


def lockout_seconds() -> int:
    return int(getattr(settings, "QFEXDASH_LOGIN_LOCKOUT_SECONDS", DEFAULT_LOCKOUT_SECONDS))


def now() -> float:
    """The clock the throttle reads; a function so tests can move time forward."""
    return time.time()


def client_address(request: HttpRequest | None) -> str:
    """The address the request came from.

    Only ``REMOTE_ADDR`` is trusted: an ``X-Forwarded-For`` header is set by whoever sends the
    request, so counting by it would let an attacker pick a fresh "address" for every attempt.
    Behind a reverse proxy, the proxy must set ``REMOTE_ADDR`` (Daphne's ``--proxy-headers``).
    """
    if request is None:
        return ""
    return str(request.META.get("REMOTE_ADDR") or "")


def normalise_username(username: str) -> str:
    # Case-folded so "Alice" and "alice" share one counter: varying the case must not buy more guesses.
    return username.strip().casefold()


def _key(kind: str, part: str, value: str) -> str:
    # Hashed so any username (spaces, long, non-ASCII) makes a valid cache key and is not stored in clear.
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    return f"{_PREFIX}:{kind}:{part}:{digest}"


def _subjects(username: str, address: str) -> list[tuple[str, str]]:
    subjects = [("user", normalise_username(username))] if username.strip() else []
    if address:
        subjects.append(("addr", address))
    return subjects


def seconds_locked(username: str, address: str) -> int:
    """Seconds left before this username or address may try again; 0 when not locked."""
    current = now()
    remaining = 0.0
    for part, value in _subjects(username, address):
        until = cache.get(_key("lock", part, value))
        if until is not None:
            remaining = max(remaining, float(until) - current)
    return math.ceil(remaining) if remaining > 0 else 0


def record_failure(username: str, address: str) -> None:
    """Count one failed attempt; at the limit, lock the username or address for the cooling-off period."""
    limit = max_failures()
    window = failure_window()
    lock_for = lockout_seconds()
    for part, value in _subjects(username, address):
        count_key = _key("fail", part, value)
        # add() starts the window at the first failure; incr() is atomic in both LocMem and Redis.
        cache.add(count_key, 0, timeout=window)
        try:
            failures = cache.incr(count_key)
        except ValueError:  # expired between add() and incr()
            cache.set(count_key, 1, timeout=window)
            failures = 1
        if failures >= limit:
            cache.set(_key("lock", part, value), now() + lock_for, timeout=lock_for)
            cache.delete(count_key)


def record_success(username: str) -> None:
    """A correct password resets that username's failure count (the address count is kept)."""
    if username.strip():
        cache.delete(_key("fail", "user", normalise_username(username)))


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-in attempts. Try again in {minutes} {unit}."
