"""The feed's blocking work, run only in the feed's bounded thread pool, never on the event loop.

Each function here either reads or writes the database (and closes its connection afterwards, so pool
threads hold none between jobs) or makes upstream calls through one ``QfexSession`` with the session's
timeout. A job that uses a session holds its reader registration's lock (:mod:`orders.live.feed.reader`),
so the session is never used by two threads at once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections

from orders.live.rows import RowSet, build_order_rows, build_twap_rows
from orders.qfex import (
    AccountActionRequired,
    AuthenticationRejected,
    ConnectionFailed,
    ConnectionLost,
    Credentials,
    ExchangeError,
    Order,
    OrdersSnapshot,
    ProtocolError,
    QfexError,
    QfexSession,
    QfexTimeout,
    RateLimited,
    fetch_open_orders,
)
from orders.qfex.errors import shorten

from .state import FetchedBook

logger = logging.getLogger(__name__)

REJECTED_KEY_REASON = "QFEX refused this key"


class AccountUnavailable(Exception):
    """The account cannot be fed without a person acting: deleted or disabled in qfexdash."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


@dataclass(frozen=True)
class AccountInfo:
    """What the feed needs to know about an account, minus its secret."""

    account_id: int
    label: str
    url: str
    subaccount_id: str | None
    public_key: str
    fingerprint: str
    verified: bool  # QFEX has accepted this key at least once


def _fingerprint(values: tuple[Any, ...]) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()


_FINGERPRINT_FIELDS = ("public_key", "secret_ciphertext", "endpoint", "custom_url", "subaccount_id", "enabled")


def load_account(account_id: int) -> tuple[AccountInfo, Credentials]:
    """The account and its decrypted credentials (for one connect, then dropped).

    Raises ``AccountUnavailable`` or ``orders.accounts.encryption.SecretUnreadable``.
    """
    from orders.accounts.exchange_accounts import account_credentials
    from orders.models import ExchangeAccount

    try:
        account = ExchangeAccount.objects.filter(pk=account_id).first()
        if account is None:
            raise AccountUnavailable("This account no longer exists in qfexdash.")
        if not account.enabled:
            raise AccountUnavailable("This account is disabled in qfexdash; an admin can enable it.")
        credentials = account_credentials(account)
        info = AccountInfo(
            account_id=account.pk,
            label=account.label,
            url=account.trade_url(),
            subaccount_id=account.subaccount_id or None,
            public_key=account.public_key,
            fingerprint=_fingerprint(tuple(getattr(account, name) for name in _FINGERPRINT_FIELDS)),
            verified=account.last_verified_at is not None,
        )
        return info, credentials
    finally:
        connections.close_all()


def account_fingerprints(account_ids: Sequence[int]) -> dict[int, str | None]:
    """A digest of each account's connection settings and key (changes when an admin edits them), in
    one query; an account that no longer exists is missing from the answer."""
    from orders.models import ExchangeAccount

    try:
        rows = ExchangeAccount.objects.filter(pk__in=list(account_ids)).values_list("pk", *_FINGERPRINT_FIELDS)
        return {row[0]: _fingerprint(tuple(row[1:])) for row in rows}
    finally:
        connections.close_all()


def mark_verified(account_id: int) -> None:
    """QFEX accepted the account's key (a session authenticated): record it once, as a successful
    verification would. Only a never-verified account is written."""
    from django.utils import timezone

    from orders.models import ExchangeAccount

    try:
        ExchangeAccount.objects.filter(pk=account_id, last_verified_at__isnull=True).update(
            last_verified_at=timezone.now(), last_error=""
        )
    finally:
        connections.close_all()


def open_session(
    info: AccountInfo, credentials: Credentials, timeout: float, on_push: Callable[[Order], None] | None = None
) -> QfexSession:
    """Connect, authenticate and subscribe to ``order_responses``; the session is closed on failure.
    ``on_push`` receives every push from the start (also those that arrive during the subscribe)."""
    from orders.accounts.endpoints import endpoint_policy  # S22: connect only where the endpoint policy allows

    session = QfexSession(
        info.url, credentials, account_id=info.subaccount_id, timeout=timeout, endpoint_policy=endpoint_policy()
    )
    session.on_push = on_push
    try:
        session.connect()
        session.subscribe(["order_responses"])
    except BaseException:
        session.close()
        raise
    return session


def close_session(session: QfexSession) -> None:
    try:
        session.close()
    except Exception:  # closing is best effort; the socket is being dropped anyway
        logger.debug("error while closing a QFEX session", exc_info=True)


def fetch_pages(session: QfexSession, *, page_size: int) -> OrdersSnapshot:
    """Every page of the account's open orders and TWAPs (holds the session while it reads)."""
    return fetch_open_orders(session, page_size=page_size)


def book_rows(snapshot: OrdersSnapshot, *, account_id: int, label: str, previous: tuple[RowSet, RowSet]) -> FetchedBook:
    """A fetched book turned into rows in the pool, so a 10 000-order book never stalls the event loop,
    after the session went back to the push reader. ``previous`` (the feed's current rows, only read
    here) lets unchanged records keep their row objects, which also makes the merge on the loop cheap
    (identity compares)."""
    orders = build_order_rows(snapshot.orders, account_id, label, previous[0])
    twaps = build_twap_rows(snapshot.twaps, account_id, label, previous[1])
    return FetchedBook(orders, twaps, snapshot.fetched_at, snapshot.pages)


# --- plain words for failures ---------------------------------------------------------------------

_KEY_ACTION = (
    "Check the key pair in QFEX's web app (it may be revoked or mistyped) and enter it again under My accounts, "
    "or ask a team admin; also check this server's clock."
)


class SessionRefused(QfexError):
    """QFEX closed the session right after accepting the login, twice in a row: treated as a refused key."""

    default_user_message = "QFEX refused this key"


@dataclass(frozen=True)
class Trouble:
    """A failure in words: what is wrong, what a person can do ("" when retrying is all it takes), and
    whether retrying can help at all (``fatal``: only on the slow auth cadence or after a change)."""

    reason: str
    action: str = ""
    fatal: bool = False


def describe_failure(exc: BaseException, timeout: float) -> Trouble:
    """What went wrong, in words a trader understands (no countdown: the page shows one)."""
    from orders.accounts.encryption import SecretUnreadable

    if isinstance(exc, AuthenticationRejected | SessionRefused):
        return Trouble(REJECTED_KEY_REASON, _KEY_ACTION, fatal=True)
    if isinstance(exc, SecretUnreadable):
        return Trouble(
            "The stored secret can't be decrypted",
            "Enter the key's secret again under My accounts (or in the admin).",
            fatal=True,
        )
    if isinstance(exc, AccountUnavailable):
        return Trouble(exc.user_message.rstrip("."), "", fatal=True)
    if isinstance(exc, AccountActionRequired):  # KycRequired, TncRequired, PermissionDenied on a read
        said = f": “{shorten(exc.message, 200)}”" if exc.message else ""
        return Trouble(f"QFEX refuses to show this account ({exc.error_code}){said}", exc.user_message, fatal=True)
    return Trouble(_transient_cause(exc, timeout))


def _transient_cause(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, RateLimited):
        return "QFEX is rate-limiting this key"
    if isinstance(exc, QfexTimeout):
        return f"QFEX did not answer within {timeout:g} s"
    if isinstance(exc, ConnectionLost):
        return "Lost the connection to QFEX"
    if isinstance(exc, ConnectionFailed):
        status = getattr(exc, "status", None)
        return f"Could not connect to QFEX (HTTP {status})" if status else "Could not connect to QFEX"
    if isinstance(exc, ProtocolError):
        return "QFEX sent data the dashboard could not read"
    if isinstance(exc, ExchangeError):
        return f"QFEX answered with an error ({exc.error_code})"
    if isinstance(exc, QfexError):
        return exc.user_message.rstrip(".")
    if type(exc).__module__.startswith("redis."):
        # Several server processes: the lease that says which one talks to QFEX lives in Redis.
        return "The server cannot reach Redis, which its processes share"
    return "The dashboard's connection to QFEX failed unexpectedly"
