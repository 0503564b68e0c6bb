"""The browser ⇄ server live protocol: the one place that defines every message shape.

Messages are JSON text frames encoded with orjson. Times are Unix epoch seconds (JSON numbers).
Decimal values (prices, quantities, derived percentages…) travel as JSON *strings* holding the
exact decimal text, e.g. ``"187.25"``; ``null`` when absent.

WebSocket URLs: ``/ws/accounts/<id>/`` (one account) and ``/ws/accounts/all/`` (every account the
user may see; every message names its ``account``).

Server → browser::

    {"type": "snapshot", "account": 7, "seq": 42, "as_of": 1764030000.12, "part": 1, "parts": 1,
     "status": STATUS, "totals": {"orders": 4000, "twaps": 3, "closed": 17},
     "orders": [ORDER_ROW, ...], "twaps": [TWAP_ROW, ...], "closed": [CLOSED_ROW, ...]}

    {"type": "diff", "account": 7, "seq": 43, "as_of": 1764030001.50,
     "upsert": {"orders": [ORDER_ROW, ...], "twaps": [TWAP_ROW, ...]},
     "remove": {"orders": ["<order_id>", ...], "twaps": ["<twap_id>", ...], "closed": ["<order_id>", ...]},
     "closed": [CLOSED_ROW, ...]}

    {"type": "status", "account": 7, "seq": 43, **STATUS}

    {"type": "error", "account": 7 | null, "code": "bad_message" | "too_large" | "rate_limited" | "unknown_type",
     "message": "plain words"}

STATUS (also the ``status`` object of a snapshot)::

    {"state": "stale", "reason": "QFEX did not answer within 10 s", "action": "",
     "as_of": 1764030001.50, "since": 1764029990.0, "next_retry_at": 1764030010.0, "failures": 3}

- ``reason``: what is wrong, in a trader's words, with no countdown in it ("" when live); ``action``:
  what a person can do about it ("" when nothing: the dashboard retries by itself). The page renders
  the one countdown from ``next_retry_at``.
- ``as_of``: time of the last good data (null: none yet); ``since``: when the account entered this
  state (null when unknown); ``failures``: consecutive failed upstream tries (0 when live).

CLOSED_ROW — an order that left the open book recently, newest first, at most 500 per account, kept
while the account's feed lives, **one per order id**::

    {"id": "<order_id>", "account": 7, "account_label": "Desk A main", "symbol": "AAPL-USD",
     "side": "BUY", "type": "LIMIT", "price": "187.25", "quantity": "10", "filled": "10",
     "status": "FILLED", "outcome": "filled" | "cancelled" | "closed",
     "reason": "plain words", "closed_at": 1764030001.2, "fill_price": "187.20" | null,
     "client_order_id": "..."}

``outcome`` "closed" means a complete read proved the order gone without a push saying why (its reason
says every way it can have gone, a modify under a new id included). The merge rule
(docs/qfex-protocol.md §4.4) keeps one Closed row per order id:

- a diff's ``closed`` rows **add or replace** the Closed row of their id (the page moves it to the top);
- a diff's ``remove.closed`` ids **withdraw** the Closed row of each id: a complete read listed the order
  again, so it is open (and in the diff's ``upsert.orders`` or already shown). Pages that do not know the
  field keep the row until the next snapshot;
- a snapshot's ``closed`` list replaces the page's list of that account.

Older servers sent ``outcome`` "rejected" for a refusal; refusals no longer close an order.

ORDER_ROW and TWAP_ROW (see :mod:`orders.live.rows`) may carry ``"refused": "<reason>"`` when the exchange's
record broke a bound (huge number, long text, big record): only ``id``, ``account`` and ``account_label``
are then meaningful and the page shows the row as refused. ORDER_ROW's ``placed_at`` is the order's
placement time when known (the ``update_time`` of its unfilled ``ACK``), else null. ORDER_ROW may carry
``"unconfirmed": true``: a push said the order is live after a complete read had proved it gone; the
page shows its status as "Unconfirmed" until the prompt read that follows either lists it (the row comes
again without the field) or removes it (its Closed row, kept meanwhile, stays the only one).

Size limits — every message stays under 512 KiB (``MAX_MESSAGE_BYTES``), counted in encoded bytes, and
carries at most ``rows_per_message`` rows (``QFEXDASH_WS_ROWS_PER_MESSAGE``, 500 by default): the
WebSocket server refuses to send a message over its own limit (Daphne: 1 MiB).

- A snapshot is sent in **parts**: every snapshot message carries ``"part": i`` (1-based), ``"parts": n``
  and ``totals`` (the whole snapshot's row counts, so a page can say "Loading 1,500 of 4,000 orders");
  a small snapshot is ``part 1 of 1``. Every part repeats ``account``, ``seq``, ``as_of``, ``status``
  and ``totals``. Order, TWAP and closed rows may be in any part; the page concatenates them. The
  parts of one snapshot are sent consecutively to a socket, with no other message in between. The
  page collects the parts of one seq and replaces its rows only when all ``n`` arrived; a part of
  another seq, or out of order (anything but part 1 when no set is pending, or not the next part of
  the pending set), discards the pending set and the page sends ``resync``. A part 1 always starts a
  new set.
- A change larger than one message is published as several consecutive ``diff`` messages, each with
  its own seq (``seq``, ``seq + 1``, …) and each a valid diff on its own; applying them in order gives
  the same rows as one big diff would. Diffs have no part fields.

Rules:

- ``seq`` grows by exactly 1 per published diff of an account. A snapshot carries the account's
  current seq (the page replaces its rows and continues from it); a status carries the current seq
  and never advances it. A diff whose seq is not ``last_seq + 1`` is a gap: the page sends
  ``resync`` and ignores diffs until the next snapshot. The server never sends a socket a diff whose
  seq is at or below the seq of the snapshot it already sent that socket, nor a status older than
  that snapshot.
- Seq numbers of an account start from the wall clock in milliseconds when its feed starts, so a
  restarted feed (or a new owner process) continues *above* any seq a page has seen.
- ``as_of`` of a snapshot/diff is when the data was fetched from QFEX (or the push arrived);
  ``status.as_of`` is the time of the last good data (``null`` when there is none yet).
- ``state`` ∈ ``connecting`` (no data yet), ``live``, ``stale`` (upstream failing; data kept, retried
  by itself), ``error`` (needs a person — key rejected, secret unreadable, account disabled, an
  exchange refusal such as KYC — or too many failed tries in a row), ``idle`` (nobody watching).
- When a reconcile finds nothing changed, the feed publishes a small ``status`` (state ``live``, fresh
  ``as_of``) instead of a diff: a heartbeat that keeps the page's freshness indicator honest.

Browser → server::

    {"type": "refresh"}                   ask for a fresh upstream fetch (coalesced server-side)
    {"type": "resync"}                    send me a full snapshot (at most once per account every 5 s;
                                          not at all when the socket already has the current state)
    {"type": "resync", "account": 7}      all-accounts stream: a snapshot of one account
    {"type": "refresh", "account": 7}     all-accounts stream: refresh one account (default: all)

Anything else → an ``error`` frame (``unknown_type`` / ``bad_message``); frames over 4 KiB →
``too_large`` and close code 4009; more than 20 frames per 10 s → ``rate_limited`` (close 4008 on
sustained abuse).

Close codes: 4001 not authenticated, 4003 origin refused or access lost, 4004 no such account
(identical for "exists but is not yours"), 4009 frame too large, 4008 flooding, 4013 the browser
stopped reading (its unread output passed ``QFEXDASH_WS_MAX_BACKLOG_BYTES``), 4029 too many live
sockets for one user (``QFEXDASH_WS_MAX_SOCKETS_PER_USER``). Application close
codes must be 1000 or 3000-4999: Daphne (autobahn) refuses RFC 6455's 1008/1009 from an application.

ORDER_ROW and TWAP_ROW are built by :mod:`orders.live.rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

# Message types, server → browser.
SNAPSHOT = "snapshot"
DIFF = "diff"
STATUS = "status"
ERROR = "error"

# Message types, browser → server.
REFRESH = "refresh"
RESYNC = "resync"
CLIENT_TYPES = frozenset({REFRESH, RESYNC})

# Feed states.
CONNECTING = "connecting"
LIVE = "live"
STALE = "stale"
FAILED = "error"
IDLE = "idle"
STATES = frozenset({CONNECTING, LIVE, STALE, FAILED, IDLE})

# Error codes.
BAD_MESSAGE = "bad_message"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
UNKNOWN_TYPE = "unknown_type"

# Close codes.
CLOSE_NOT_AUTHENTICATED = 4001
CLOSE_FORBIDDEN = 4003  # origin refused, or access lost while connected
CLOSE_NO_SUCH_ACCOUNT = 4004  # also "exists but is not yours"
CLOSE_TOO_LARGE = 4009
CLOSE_POLICY = 4008  # sustained flooding
CLOSE_TOO_SLOW = 4013  # the browser stopped reading what it was sent
CLOSE_TOO_MANY_SOCKETS = 4029  # the user has QFEXDASH_WS_MAX_SOCKETS_PER_USER live sockets open already


def decimal_text(value: Decimal) -> str:
    """Exact decimal text without exponent notation (``Decimal("1E+2")`` → ``"100"``)."""
    return format(value, "f")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    raise TypeError(f"{type(value).__name__} is not part of the live protocol")


def encode(message: Mapping[str, Any]) -> str:
    """One message as JSON text (orjson; Decimals as exact strings)."""
    return orjson.dumps(message, default=_default).decode()


@dataclass(frozen=True, slots=True)
class Status:
    """An account feed's state as the page shows it."""

    state: str
    reason: str = ""
    as_of: float | None = None  # time of the last good data
    next_retry_at: float | None = None
    since: float | None = None  # when the account entered this state
    action: str = ""  # what a person can do about it; "" when the dashboard retries by itself
    failures: int = 0  # consecutive failed upstream tries

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "action": self.action,
            "as_of": self.as_of,
            "since": self.since,
            "next_retry_at": self.next_retry_at,
            "failures": self.failures,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Status:
        """The inverse of :meth:`as_dict`, tolerant of the older shape without ``since``/``action``/``failures``."""
        failures = data.get("failures")
        return cls(
            str(data["state"]),
            str(data.get("reason") or ""),
            data.get("as_of"),
            data.get("next_retry_at"),
            data.get("since"),
            str(data.get("action") or ""),
            failures if isinstance(failures, int) and not isinstance(failures, bool) else 0,
        )


DEFAULT_ROWS_PER_MESSAGE = 500
# No message to a browser is larger than this, in encoded bytes (Daphne refuses to send over 1 MiB).
MAX_MESSAGE_BYTES = 512 * 1024


def snapshot_message(
    account: int,
    seq: int,
    as_of: float | None,
    status: Status,
    orders: Iterable[dict],
    twaps: Iterable[dict],
    *,
    part: int = 1,
    parts: int = 1,
    closed: Iterable[dict] = (),
    totals: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """One snapshot message (one part of a snapshot; see :func:`snapshot_messages` for the split)."""
    order_list, twap_list, closed_list = list(orders), list(twaps), list(closed)
    if totals is None:
        totals = {"orders": len(order_list), "twaps": len(twap_list), "closed": len(closed_list)}
    return {
        "type": SNAPSHOT,
        "account": account,
        "seq": seq,
        "as_of": as_of,
        "part": part,
        "parts": parts,
        "status": status.as_dict(),
        "totals": dict(totals),
        "orders": order_list,
        "twaps": twap_list,
        "closed": closed_list,
    }


# Room left in every message for what is not a row: type, account, seq, times, part fields, totals and
# the status (whose texts are short: reasons and actions are written by the feed, not the exchange).
_ENVELOPE_BYTES = 4 * 1024
# A row larger than this is never sent (QFEX records over 8 KiB are refused when they are parsed).
_LARGEST_ROW = 64 * 1024
_REFUSED_TOO_LARGE = "This record is too large to show."
_Item = tuple[str, Any, int]  # (list name, the value as an orjson.Fragment, its encoded size + a comma)


def _encoded_items(named: Iterable[tuple[str, Iterable[Any]]]) -> list[_Item]:
    items = []
    for name, values in named:
        for value in values:
            data = orjson.dumps(value, default=_default)
            size = len(data) + 1
            items.append((name, orjson.Fragment(data), size) if size <= _LARGEST_ROW else _refused(name, value))
    return items


def _pack(items: list[_Item], rows_per_message: int, max_bytes: int) -> list[list[_Item]]:
    """Consecutive chunks of at most ``rows_per_message`` items and ``max_bytes`` bytes each (with the
    envelope)."""
    limit_rows = max(1, rows_per_message)
    budget = max(_LARGEST_ROW, max_bytes - _ENVELOPE_BYTES)
    chunks: list[list[_Item]] = []
    current: list[_Item] = []
    used = 0
    for name, fragment, size in items:
        if current and (len(current) >= limit_rows or used + size > budget):
            chunks.append(current)
            current, used = [], 0
        current.append((name, fragment, size))
        used += size
    if current:
        chunks.append(current)
    return chunks


def _refused(name: str, row: Any) -> _Item:
    """A row too big to send, replaced by a small row that says so (records are bounded upstream, so
    this is a last line of defence; ids are bounded too)."""
    if not isinstance(row, Mapping):
        raise ValueError(f"an item of {name} is too large for one message")
    small = {key: row.get(key) for key in ("id", "account", "account_label")}
    small["refused"] = _REFUSED_TOO_LARGE
    data = orjson.dumps(small, default=_default)
    return name, orjson.Fragment(data), len(data) + 1


def snapshot_messages(
    account: int,
    seq: int,
    as_of: float | None,
    status: Status,
    orders: Iterable[dict],
    twaps: Iterable[dict],
    rows_per_message: int = DEFAULT_ROWS_PER_MESSAGE,
    *,
    closed: Iterable[dict] = (),
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> list[dict[str, Any]]:
    """A snapshot as its parts (always at least one), each within ``rows_per_message`` rows and
    ``max_bytes`` encoded bytes: TWAPs first, then orders, then closed rows, in order. Rows are
    pre-encoded (:class:`orjson.Fragment`), so :func:`encode` of a part costs a copy, not a re-encode."""
    items = _encoded_items((("twaps", twaps), ("orders", orders), ("closed", closed)))
    totals = {"orders": 0, "twaps": 0, "closed": 0}
    for name, _fragment, _size in items:
        totals[name] += 1
    chunks = _pack(items, rows_per_message, max_bytes) or [[]]
    messages = []
    for index, chunk in enumerate(chunks):
        lists: dict[str, list[Any]] = {"orders": [], "twaps": [], "closed": []}
        for name, fragment, _size in chunk:
            lists[name].append(fragment)
        messages.append(
            snapshot_message(
                account,
                seq,
                as_of,
                status,
                lists["orders"],
                lists["twaps"],
                closed=lists["closed"],
                part=index + 1,
                parts=len(chunks),
                totals=totals,
            )
        )
    return messages


def diff_message(
    account: int,
    seq: int,
    as_of: float | None,
    *,
    upsert_orders: Iterable[dict] = (),
    upsert_twaps: Iterable[dict] = (),
    remove_orders: Iterable[str] = (),
    remove_twaps: Iterable[str] = (),
    closed: Iterable[dict] = (),
    withdraw_closed: Iterable[str] = (),
) -> dict[str, Any]:
    return {
        "type": DIFF,
        "account": account,
        "seq": seq,
        "as_of": as_of,
        "upsert": {"orders": list(upsert_orders), "twaps": list(upsert_twaps)},
        "remove": {"orders": list(remove_orders), "twaps": list(remove_twaps), "closed": list(withdraw_closed)},
        "closed": list(closed),
    }


_DIFF_LISTS = ("upsert_orders", "upsert_twaps", "remove_orders", "remove_twaps", "closed", "withdraw_closed")


def diff_messages(
    account: int,
    first_seq: int,
    as_of: float | None,
    *,
    upsert_orders: Iterable[dict] = (),
    upsert_twaps: Iterable[dict] = (),
    remove_orders: Iterable[str] = (),
    remove_twaps: Iterable[str] = (),
    closed: Iterable[dict] = (),
    withdraw_closed: Iterable[str] = (),
    rows_per_message: int = DEFAULT_ROWS_PER_MESSAGE,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> list[dict[str, Any]]:
    """A change as consecutive diffs, seqs ``first_seq``, ``first_seq + 1``…, each within
    ``rows_per_message`` rows and ``max_bytes`` encoded bytes.

    Within one change every row id appears at most once per kind (an upsert or a remove; a Closed row
    filed or withdrawn), so any split of it applies, in order, to the same result as the whole. An empty
    change is one empty diff.
    """
    values = (upsert_orders, upsert_twaps, remove_orders, remove_twaps, closed, withdraw_closed)
    named = zip(_DIFF_LISTS, values, strict=True)
    chunks = _pack(_encoded_items(named), rows_per_message, max_bytes) or [[]]
    messages = []
    for offset, chunk in enumerate(chunks):
        lists: dict[str, list[Any]] = {name: [] for name in _DIFF_LISTS}
        for name, fragment, _size in chunk:
            lists[name].append(fragment)
        messages.append(diff_message(account, first_seq + offset, as_of, **lists))
    return messages


def status_message(account: int, seq: int, status: Status) -> dict[str, Any]:
    return {"type": STATUS, "account": account, "seq": seq, **status.as_dict()}


def error_message(account: int | None, code: str, message: str) -> dict[str, Any]:
    return {"type": ERROR, "account": account, "code": code, "message": message}


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """A valid browser → server message."""

    type: str
    account: int | None = None


class BadClientMessage(ValueError):
    """A browser frame that is not a valid message; ``code`` is the error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_client_message(text: str) -> ClientMessage:
    """Parse one text frame from the browser; raises :class:`BadClientMessage`."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadClientMessage(BAD_MESSAGE, "That message is not JSON.") from None
    if not isinstance(data, dict):
        raise BadClientMessage(BAD_MESSAGE, "A message must be a JSON object.")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise BadClientMessage(BAD_MESSAGE, 'A message needs a "type" string.')
    if kind not in CLIENT_TYPES:
        raise BadClientMessage(UNKNOWN_TYPE, 'Only "refresh" and "resync" messages are understood.')
    account = data.get("account")
    # bool is an int subclass; refuse it explicitly.
    if account is not None and (not isinstance(account, int) or isinstance(account, bool)):
        raise BadClientMessage(BAD_MESSAGE, '"account" must be an account number.')
    return ClientMessage(kind, account)
