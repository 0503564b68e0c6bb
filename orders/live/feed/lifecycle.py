"""What an ``order_response`` push means for the open-orders table (docs/qfex-protocol.md §4.3).

QFEX pushes one ``order_response`` per order event on the ``order_responses`` channel. The official
CLI keeps its open orders with a small state machine; the feed follows it, and is stricter where the
CLI is loose:

- ``ACK`` / ``MODIFIED`` → the order is open: insert or update its row.
- ``FILLED`` → a fill. With ``quantity_remaining`` > 0 the order is still open (a partial fill: update
  the row; the CLI wrongly drops it); with 0 it is done (remove the row).
- ``CANCELLED``, ``CANCELLED_STP`` and every other terminal status (the rejections) → remove the row.
- ``CANNOT_MODIFY_*`` say a modify was refused: the order is unchanged, but the push alone does not
  say how it looks now; like a push without an id or status, or a status QFEX has not documented,
  the feed cannot place it and asks for a prompt reconcile instead.

Pure functions, no I/O.
"""

from __future__ import annotations

import enum
from decimal import Decimal

OPEN_STATUSES = frozenset({"ACK", "MODIFIED"})
FILLED = "FILLED"
MODIFIED = "MODIFIED"
CANCELLED_STATUSES = frozenset({"CANCELLED", "CANCELLED_STP", "IOC_CANCELLED", "IOC_PARTIALLY_FILLED"})
# Statuses that end an order without a fill (qfex-protocol.md §3.5, including the spellings that differ
# between QFEX's own lists and the third-party observations).
REJECTED_STATUSES = frozenset(
    {
        "REJECTED", "NO_SUCH_ORDER", "INVALID_ORDER_TYPE", "BAD_SYMBOL", "PRICE_LESS_THAN_MIN_PRICE",
        "PRICE_GREATER_THAN_MAX_PRICE", "FAILED_MARGIN_CHECK", "INVALID_TICK_SIZE_PRECISION_PRICE",
        "INVALID_TICK_SIZE_PRECISION_QUANTITY", "QUANTITY_LESS_THAN_MIN_QUANTITY",
        "QUANTITY_GREATER_THAN_MAX_QUANTITY", "INVALID_TIME_IN_FORCE", "REJECTED_MARKET_CLOSED", "RATE_LIMITED",
        "REJECTED_WOULD_BREACH_MAX_NOTIONAL", "REJECTED_FAILED_TO_PROCESS", "INVALID_TAKEPROFIT_PRICE",
        "INVALID_STOPLOSS_PRICE", "INVALID_TAKE_PROFIT_PRICE", "INVALID_STOP_LOSS_PRICE",
        "REJECTED_TOO_MANY_OPEN_ORDERS", "REJECTED_OPEN_INTEREST_LIMIT", "REJECTED_GREATER_THAN_MAX_PRICE_BAND",
        "REJECTED_LESS_THAN_MIN_PRICE_BAND", "REJECTED_WOULD_BREACH_MAX_POSITION", "REJECTED_LESS_THAN_MIN_NOTIONAL",
    }
)  # fmt: skip
# A refused modify: the order is still open as it was.
REFUSED_MODIFY_STATUSES = frozenset({"CANNOT_MODIFY_PARTIAL_FILL", "CANNOT_MODIFY_NO_SUCH_ORDER"})

# Closed-row outcomes (orders.live.protocol, CLOSED_ROW).
OUTCOME_FILLED = "filled"
OUTCOME_CANCELLED = "cancelled"
OUTCOME_REJECTED = "rejected"
OUTCOME_CLOSED = "closed"  # a reconcile proved it gone; no push said why


class Effect(enum.Enum):
    OPEN = "open"  # insert or update the row
    CLOSE = "close"  # remove the row; the order is done
    UNPLACEABLE = "unplaceable"  # leave the rows alone and reconcile soon


def effect_of(status: str | None, remaining: Decimal | None) -> Effect:
    """What a push with this status (and remaining quantity) does to the open-orders table."""
    if status in OPEN_STATUSES:
        return Effect.OPEN
    if status == FILLED:
        if remaining is None:
            return Effect.UNPLACEABLE  # a fill that does not say whether the order is done
        return Effect.OPEN if remaining > 0 else Effect.CLOSE
    if status in CANCELLED_STATUSES or status in REJECTED_STATUSES:
        return Effect.CLOSE
    return Effect.UNPLACEABLE


def outcome_of(status: str | None) -> str:
    """How a closed order ended, for the Closed tab."""
    if status == FILLED:
        return OUTCOME_FILLED
    if status in CANCELLED_STATUSES:
        return OUTCOME_CANCELLED
    if status in REJECTED_STATUSES:
        return OUTCOME_REJECTED
    return OUTCOME_CLOSED


_CANCEL_WORDS = {
    "CANCELLED": "Cancelled",
    "CANCELLED_STP": "Cancelled by self-trade prevention",
    "IOC_CANCELLED": "Cancelled: immediate-or-cancel found nothing to fill",
    "IOC_PARTIALLY_FILLED": "Partly filled, the rest cancelled (immediate-or-cancel)",
}


def reason_of(status: str | None, filled: Decimal | None) -> str:
    """The closed order's reason in words ("Filled", "Cancelled by self-trade prevention", "Rejected: …")."""
    if status == FILLED:
        return "Filled"
    if status in _CANCEL_WORDS:
        words = _CANCEL_WORDS[status]
        if status == "CANCELLED" and filled is not None and filled > 0:
            return "Partly filled, the rest cancelled"
        return words
    if status in REJECTED_STATUSES:
        return "Rejected: " + status.replace("_", " ").lower()
    return "No longer open at QFEX"
