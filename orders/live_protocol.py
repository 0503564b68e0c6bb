"""The browser ⇄ server live protocol: the one place that defines every message shape.

Messages are JSON text frames encoded with orjson. Times are Unix epoch seconds (JSON numbers).
Decimal values (prices, quantities, derived percentages…) travel as JSON *strings* holding the
exact decimal text, e.g. ``"187.25"``; ``null`` when absent.

WebSocket URLs: ``/ws/accounts/<id>/`` (one account) and ``/ws/accounts/all/`` (every account the
user may see; every message names its ``account``).

Server → browser::

    {"type": "snapshot", "account": 7, "seq": 42, "as_of": 1764030000.12, "part": 1, "parts": 1,
     "status": {"state": "live", "reason": "", "as_of": 1764030000.12, "next_retry_at": null},
     "orders": [ORDER_ROW, ...], "twaps": [TWAP_ROW, ...]}

    {"type": "diff", "account": 7, "seq": 43, "as_of": 1764030001.50,
     "upsert": {"orders": [ORDER_ROW, ...], "twaps": [TWAP_ROW, ...]},
     "remove": {"orders": ["<order_id>", ...], "twaps": ["<twap_id>", ...]}}

    {"type": "status", "account": 7, "seq": 43, "state": "stale",
     "reason": "QFEX did not answer within 10 s. Next try in 4 s.",
     "as_of": 1764030001.50, "next_retry_at": 1764030010.0}

    {"type": "error", "account": 7 | null, "code": "bad_message" | "too_large" | "rate_limited" | "unknown_type",
     "message": "plain words"}

Size limits — no message carries more than ``rows_per_message`` rows (``QFEXDASH_WS_ROWS_PER_MESSAGE``,
500 by default; ~440 bytes a row), because the WebSocket server refuses to send a message over its
size limit (Daphne: 1 MiB). The one exception: TWAPs are never split, so part 1 of a snapshot of an
account with more TWAPs than that carries them all.

- A snapshot is sent in **parts**: every snapshot message carries ``"part": i`` (1-based) and
  ``"parts": n``; a small snapshot is ``part 1 of 1``. Every part repeats ``account``, ``seq``,
  ``as_of`` and ``status``. Part 1 carries every TWAP and fills the rest of its row budget with
  orders; the other parts carry up to ``rows_per_message`` orders each, in order. The parts of one
  snapshot are sent consecutively to a socket, with no other message in between. The page collects
  the parts of one seq and replaces its rows only when all ``n`` arrived; a part of another seq, or
  out of order (anything but part 1 when no set is pending, or not the next part of the pending
  set), discards the pending set and the page sends ``resync``. A part 1 always starts a new set.
- A change larger than ``rows_per_message`` rows (upserts + removes) is published as several
  consecutive ``diff`` messages, each with its own seq (``seq``, ``seq + 1``, …) and each a valid
  diff on its own; applying them in order gives the same rows as one big diff would. Diffs have no
  part fields.

Rules:

- ``seq`` grows by exactly 1 per published diff of an account. A snapshot carries the account's
  current seq (the page replaces its rows and continues from it); a status carries the current seq
  and never advances it. A diff whose seq is not ``last_seq + 1`` is a gap: the page sends
  ``resync`` and ignores diffs until the next snapshot. The server never sends a socket a diff whose
  seq is at or below the seq of the snapshot it already sent that socket.
- Seq numbers of an account start from the wall clock in milliseconds when its feed starts, so a
  restarted feed (or, later, a new owner process) continues *above* any seq a page has seen.
- ``as_of`` of a snapshot/diff is when the data was fetched from QFEX; ``status.as_of`` is the time
  of the last good data (``null`` when there is none yet).
- ``state`` ∈ ``connecting`` (no data yet), ``live``, ``stale`` (upstream failing; data kept),
  ``error`` (needs a person: key rejected, secret unreadable, account disabled), ``idle`` (nobody
  watching).
- When a fetch finds nothing changed, the feed publishes a small ``status`` (state ``live``, fresh
  ``as_of``) instead of a diff: a heartbeat that keeps the page's freshness indicator honest.

Browser → server::

    {"type": "refresh"}                   ask for a fresh upstream fetch (coalesced server-side)
    {"type": "resync"}                    send me a full snapshot now
    {"type": "resync", "account": 7}      all-accounts stream: a snapshot of one account
    {"type": "refresh", "account": 7}     all-accounts stream: refresh one account (default: all)

Anything else → an ``error`` frame (``unknown_type`` / ``bad_message``); frames over 4 KiB →
``too_large`` and close code 4009; more than 20 frames per 10 s → ``rate_limited`` (close 4008 on
sustained abuse).

Close codes: 4001 not authenticated, 4003 origin refused or access lost, 4004 no such account
(identical for "exists but is not yours"), 4009 frame too large, 4008 flooding. Application close
codes must be 1000 or 3000-4999: Daphne (autobahn) refuses RFC 6455's 1008/1009 from an application.

ORDER_ROW and TWAP_ROW are built by :mod:`orders.rows`.
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

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "as_of": self.as_of, "next_retry_at": self.next_retry_at}


DEFAULT_ROWS_PER_MESSAGE = 500


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
) -> dict[str, Any]:
    """One snapshot message (one part of a snapshot; see :func:`snapshot_messages` for the split)."""
    return {
        "type": SNAPSHOT,
        "account": account,
        "seq": seq,
        "as_of": as_of,
        "part": part,
        "parts": parts,
        "status": status.as_dict(),
        "orders": list(orders),
        "twaps": list(twaps),
    }


def snapshot_messages(
    account: int,
    seq: int,
    as_of: float | None,
    status: Status,
    orders: Iterable[dict],
    twaps: Iterable[dict],
    rows_per_message: int = DEFAULT_ROWS_PER_MESSAGE,
) -> list[dict[str, Any]]:
    """A snapshot as its parts (always at least one): TWAPs and the first orders in part 1, then the
    remaining orders ``rows_per_message`` at a time."""
    limit = max(1, rows_per_message)
    order_list, twap_list = list(orders), list(twaps)
    first = max(0, limit - len(twap_list))
    chunks = [order_list[:first]] + [order_list[i : i + limit] for i in range(first, len(order_list), limit)]
    parts = len(chunks)
    return [
        snapshot_message(
            account, seq, as_of, status, chunk, twap_list if index == 0 else (), part=index + 1, parts=parts
        )
        for index, chunk in enumerate(chunks)
    ]


def diff_message(
    account: int,
    seq: int,
    as_of: float | None,
    *,
    upsert_orders: Iterable[dict] = (),
    upsert_twaps: Iterable[dict] = (),
    remove_orders: Iterable[str] = (),
    remove_twaps: Iterable[str] = (),
) -> dict[str, Any]:
    return {
        "type": DIFF,
        "account": account,
        "seq": seq,
        "as_of": as_of,
        "upsert": {"orders": list(upsert_orders), "twaps": list(upsert_twaps)},
        "remove": {"orders": list(remove_orders), "twaps": list(remove_twaps)},
    }


_DIFF_LISTS = ("upsert_orders", "upsert_twaps", "remove_orders", "remove_twaps")


def diff_messages(
    account: int,
    first_seq: int,
    as_of: float | None,
    *,
    upsert_orders: Iterable[dict] = (),
    upsert_twaps: Iterable[dict] = (),
    remove_orders: Iterable[str] = (),
    remove_twaps: Iterable[str] = (),
    rows_per_message: int = DEFAULT_ROWS_PER_MESSAGE,
) -> list[dict[str, Any]]:
    """A change as consecutive diffs of at most ``rows_per_message`` rows, seqs ``first_seq``, ``first_seq + 1``…

    Within one change every row id appears at most once per kind (an upsert or a remove), so any split
    of it applies, in order, to the same result as the whole. An empty change is one empty diff.
    """
    limit = max(1, rows_per_message)
    items = [
        (name, item)
        for name, values in zip(_DIFF_LISTS, (upsert_orders, upsert_twaps, remove_orders, remove_twaps), strict=True)
        for item in values
    ]
    messages = []
    for offset in range(0, max(len(items), 1), limit):
        lists: dict[str, list[Any]] = {name: [] for name in _DIFF_LISTS}
        for name, item in items[offset : offset + limit]:
            lists[name].append(item)
        messages.append(diff_message(account, first_seq + len(messages), as_of, **lists))
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
