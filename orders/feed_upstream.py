"""The feed's blocking work, run only in the feed's bounded thread pool, never on the event loop.

Each function here either reads the database (and closes its connection afterwards, so pool
threads hold none between jobs) or makes upstream calls through one ``QfexSession`` with the
session's timeout. The account feed guarantees one job per session at a time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connections

from orders import live_protocol as lp
from orders.qfex import (
    AuthenticationRejected,
    ConnectionFailed,
    ConnectionLost,
    Credentials,
    ExchangeError,
    ProtocolError,
    QfexError,
    QfexSession,
    QfexTimeout,
    RateLimited,
    fetch_open_orders,
)
from orders.rows import Row, RowSet, build_order_rows, build_twap_rows, diff_rows

logger = logging.getLogger(__name__)

REJECTED_KEY_REASON = "QFEX rejected this API key — an admin must re-enter it."


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


def _fingerprint(values: tuple[Any, ...]) -> str:
    return hashlib.sha256(repr(values).encode()).hexdigest()


_FINGERPRINT_FIELDS = ("public_key", "secret_ciphertext", "endpoint", "custom_url", "subaccount_id", "enabled")


def load_account(account_id: int) -> tuple[AccountInfo, Credentials]:
    """The account and its decrypted credentials (for one connect, then dropped).

    Raises ``AccountUnavailable`` or ``orders.encryption.SecretUnreadable``.
    """
    from orders.models import ExchangeAccount
    from orders.services import account_credentials

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
        )
        return info, credentials
    finally:
        connections.close_all()


def account_fingerprint(account_id: int) -> str | None:
    """A digest of the account's connection settings and key; changes when an admin edits them."""
    from orders.models import ExchangeAccount

    try:
        values = ExchangeAccount.objects.filter(pk=account_id).values_list(*_FINGERPRINT_FIELDS).first()
        return None if values is None else _fingerprint(tuple(values))
    finally:
        connections.close_all()


def open_session(info: AccountInfo, credentials: Credentials, timeout: float) -> QfexSession:
    """Connect, authenticate and subscribe to ``order_responses``; the session is closed on failure."""
    from orders.endpoints import endpoint_policy  # S22: connect only where the endpoint policy allows

    session = QfexSession(
        info.url, credentials, account_id=info.subaccount_id, timeout=timeout, endpoint_policy=endpoint_policy()
    )
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


@dataclass(frozen=True)
class FetchResult:
    orders: dict[str, Row]
    twaps: dict[str, Row]
    fetched_at: float
    pages: int
    changed: bool
    # The change as encoded diff messages with consecutive seqs from ``next_seq`` (several when it is
    # larger than ``rows_per_message``); empty when nothing changed.
    diff_texts: list[str]
    upserts: int
    removes: int
    # The rows with the records they came from: pass them to the next fetch as ``previous_*``.
    order_set: RowSet = field(default_factory=RowSet)
    twap_set: RowSet = field(default_factory=RowSet)


def fetch_and_diff(
    session: QfexSession,
    *,
    page_size: int,
    account_id: int,
    label: str,
    old_orders: dict[str, Row],
    old_twaps: dict[str, Row],
    next_seq: int,
    rows_per_message: int = lp.DEFAULT_ROWS_PER_MESSAGE,
    previous_orders: RowSet | None = None,
    previous_twaps: RowSet | None = None,
) -> FetchResult:
    """One full fetch, turned into rows, compared with the previous rows and encoded as diffs.

    Rows, diff and encoding are built here, in the pool, so a 10 000-order book never stalls the
    event loop. ``old_*`` are only read: the feed replaces its dicts, it never mutates them.
    ``previous_*``: the last fetch's row sets, whose rows are reused for records that did not change
    (pass them only when ``old_*`` are their rows).
    """
    snapshot = fetch_open_orders(session, page_size=page_size)
    order_set = build_order_rows(snapshot.orders, account_id, label, previous_orders)
    twap_set = build_twap_rows(snapshot.twaps, account_id, label, previous_twaps)
    orders, twaps = order_set.rows, twap_set.rows
    order_upserts, order_removes = diff_rows(old_orders, orders)
    twap_upserts, twap_removes = diff_rows(old_twaps, twaps)
    changed = bool(order_upserts or order_removes or twap_upserts or twap_removes)
    texts = []
    if changed:
        messages = lp.diff_messages(
            account_id,
            next_seq,
            snapshot.fetched_at,
            upsert_orders=order_upserts,
            upsert_twaps=twap_upserts,
            remove_orders=order_removes,
            remove_twaps=twap_removes,
            rows_per_message=rows_per_message,
        )
        texts = [lp.encode(message) for message in messages]
    return FetchResult(
        orders=orders,
        twaps=twaps,
        fetched_at=snapshot.fetched_at,
        pages=snapshot.pages,
        changed=changed,
        diff_texts=texts,
        upserts=len(order_upserts) + len(twap_upserts),
        removes=len(order_removes) + len(twap_removes),
        order_set=order_set,
        twap_set=twap_set,
    )


def listen(session: QfexSession, timeout: float) -> int:
    """Wait up to ``timeout`` for ``order_response`` pushes; the number received.

    Raises ``ConnectionLost`` when the session ended (QFEX closes sessions at a maximum lifetime).
    """
    pushes = session.wait_for_pushes(timeout)
    if not pushes and session.closed:
        raise ConnectionLost("the QFEX session closed")
    return len(pushes)


def encode_snapshot(
    account_id: int,
    seq: int,
    as_of: float | None,
    status: lp.Status,
    orders: dict[str, Row],
    twaps: dict[str, Row],
    rows_per_message: int = lp.DEFAULT_ROWS_PER_MESSAGE,
) -> list[str]:
    """The snapshot's parts, each encoded (see :func:`orders.live_protocol.snapshot_messages`)."""
    messages = lp.snapshot_messages(account_id, seq, as_of, status, orders.values(), twaps.values(), rows_per_message)
    return [lp.encode(message) for message in messages]


# --- plain words for failures ---------------------------------------------------------------------


def failure_cause(exc: BaseException, timeout: float) -> str:
    """What went wrong, in words a trader understands (no "next try" part)."""
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


def is_fatal(exc: BaseException) -> bool:
    """Failures that need a person: retrying with the same key or secret cannot help."""
    from orders.encryption import SecretUnreadable

    return isinstance(exc, AuthenticationRejected | SecretUnreadable | AccountUnavailable)


def fatal_reason(exc: BaseException) -> str:
    if isinstance(exc, AuthenticationRejected):
        return REJECTED_KEY_REASON
    return str(getattr(exc, "user_message", "") or "This account needs an admin's attention.")


def wall_clock() -> float:
    return time.time()
