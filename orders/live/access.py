"""Who a live socket belongs to and what it may see, checked at connect and every couple of seconds.

- :func:`session_user` — the user of a session, read-only (a socket never flushes or re-keys the HTTP
  session), with ``SECRET_KEY_FALLBACKS``, the idle limit and the second factor honoured;
- :func:`access_verdict` — one small query: is the session alive, the user active and signed in with the
  same password, and which accounts may they see (:mod:`orders.accounts.access` rules); then whether the
  session's second factor still holds (S35: its device still there, or none owed);
- :class:`AccessWatch` — a socket's verdicts, shared by every socket of the same session for half an
  interval (1000 tabs → one query per interval).

The consumer (:mod:`orders.live.consumers`) runs the re-check loop; a logout, a password change, a
deactivation, an idle or expired session closes with 4001; losing access to an account with 4003.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django_otp import DEVICE_ID_SESSION_KEY

from orders.accounts.access import accounts_visible_to, second_factor_done, second_factor_ok
from orders.accounts.people import User, Visitor


def session_hash_matches(session_hash: str | None, user: User) -> bool:
    """Whether the session's auth hash matches the user's password, with ``SECRET_KEY`` or a fallback.

    Like Django's ``get_user`` but read-only: a socket never flushes or re-keys the HTTP session
    (it could not hand the browser a new cookie), so key rotation logs nobody out through it.
    """
    if not session_hash or not hasattr(user, "get_session_auth_hash"):
        return False
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    fallbacks: Any = getattr(user, "get_session_auth_fallback_hash", None)
    return bool(fallbacks) and any(constant_time_compare(session_hash, value) for value in fallbacks())


def session_user(session: Any) -> Visitor:
    """The user a session belongs to, or ``AnonymousUser`` (inactive users and stale hashes included)."""
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    user_model = get_user_model()
    try:
        pk = user_model._meta.pk.to_python(user_id)
    except Exception:
        return AnonymousUser()
    user = load_backend(backend_path).get_user(pk)
    if user is None or not session_hash_matches(session.get(HASH_SESSION_KEY), user):
        return AnonymousUser()
    if not second_factor_done(session, user):  # S30: the password alone opens no stream
        return AnonymousUser()
    return user


# --- access re-check ------------------------------------------------------------------------------

OK = "ok"
NOT_AUTHENTICATED = "not_authenticated"
ACCESS_LOST = "access_lost"


@dataclass(frozen=True)
class Verdict:
    outcome: str
    visible: frozenset[int] = frozenset()


def _session_model() -> Any:
    """The session model when sessions live in the database (the default), else None."""
    if settings.SESSION_ENGINE in ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db"):
        return import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()
    return None


def _session_alive(session_key: str) -> bool:
    engine = settings.SESSION_ENGINE
    if engine == "django.contrib.sessions.backends.signed_cookies":
        return True  # nothing server-side to look at; the hash and user checks still apply
    return bool(import_module(engine).SessionStore().exists(session_key))


def access_verdict(
    user: User, session_key: str, session_hash: str | None, account: int | None, device_id: str | None = None
) -> Verdict:
    """Is this session still valid, and may its user see ``account`` (None: which accounts may it see)?

    For one account this is a single query: the user row (active, password hash) with two EXISTS
    sub-queries — the session row is alive, the account is visible under ``orders.accounts.access`` rules.
    Visibility is evaluated for ``user`` as it was at connect; if its superuser flag has changed since,
    the rules are applied again to the fresh row (a second query). The all-accounts stream needs the
    list of visible ids, which is always a second query. The second factor (``device_id``: the device the
    session gave it with, or None) costs one more: its device row, or whether the user owes one.
    """
    annotations: dict[str, Any] = {}
    session_model = _session_model()
    if session_model is not None:
        live = session_model.objects.filter(session_key=session_key, expire_date__gt=timezone.now())
        annotations["session_alive"] = Exists(live)
    if account is not None:
        annotations["may_view"] = Exists(accounts_visible_to(user).filter(pk=account))
    users = get_user_model()._default_manager.filter(pk=user.pk, is_active=True)
    fresh: Any = users.annotate(**annotations).first()  # with the annotations above as attributes
    if fresh is None:
        return Verdict(NOT_AUTHENTICATED)
    alive = fresh.session_alive if session_model is not None else _session_alive(session_key)
    if not alive or not session_hash_matches(session_hash, fresh):
        return Verdict(NOT_AUTHENTICATED)
    if not second_factor_ok(fresh, device_id):  # S35: a removed device signs its sessions out
        return Verdict(NOT_AUTHENTICATED)
    if account is not None and fresh.is_superuser == user.is_superuser:
        return Verdict(OK, frozenset({account}) if fresh.may_view else frozenset())
    visible = accounts_visible_to(fresh)
    if account is not None:
        visible = visible.filter(pk=account)
    return Verdict(OK, frozenset(visible.values_list("pk", flat=True)))


class _VerdictCache:
    """Shares re-check results between sockets of one session (1000 tabs → one query per interval)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], tuple[float, asyncio.Future[Verdict]]] = {}

    async def get(self, key: tuple[Any, ...], ttl: float, compute: Any) -> Verdict:
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now and entry[1].get_loop() is loop:
            return await asyncio.shield(entry[1])
        if len(self._entries) > 10_000:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        task: asyncio.Future[Verdict] = asyncio.ensure_future(compute())
        self._entries[key] = (now + ttl, task)
        try:
            return await asyncio.shield(task)
        except Exception:
            self._entries.pop(key, None)  # do not share a failure
            raise


_verdicts = _VerdictCache()


class AccessWatch:
    """The access verdicts of one socket: fresh at connect, shared with the session's other sockets after."""

    def __init__(self, user: User, session: Any, single: int | None) -> None:
        self.user = user
        self.session_key = session.session_key
        self.session_hash = session.get(HASH_SESSION_KEY)
        self.device_id = session.get(DEVICE_ID_SESSION_KEY)
        self.single = single

    async def verdict(self, *, fresh: bool = False) -> Verdict:
        key = (self.user.pk, self.user.is_superuser, self.session_key, self.session_hash, self.single)

        def compute() -> Any:
            return database_sync_to_async(access_verdict)(
                self.user, self.session_key, self.session_hash, self.single, self.device_id
            )

        if fresh:
            return await compute()
        return await _verdicts.get(key, recheck_seconds() / 2, compute)


def recheck_seconds() -> float:
    return float(settings.QFEXDASH_ACCESS_RECHECK_SECONDS)
