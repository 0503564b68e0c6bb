"""What an ``order_response`` push's status means for the open-orders table: the classes of the merge
rule (docs/qfex-protocol.md §4.4, statuses in §3.5), and the words of a closed order's reason.

Every push falls in one of three classes:

- **live** — ``ACK``, ``MODIFIED``, and a partial ``FILLED`` (``quantity_remaining`` > 0) of an order that
  rests (``GTC``): the order is open, upsert its row. A partial ``FILLED`` whose time in force is not
  known (neither the push nor the order's row says it), or a ``FILLED`` that does not say what remains,
  counts as live too and asks for a reconcile: the rule never hides an order on a guess.
- **terminal** — ``FILLED`` with nothing remaining; a partial ``FILLED`` of an order that cannot rest
  (``IOC``, ``FOK``, ``MARKET``: the rest is cancelled); ``CANCELLED``, ``CANCELLED_STP``, ``IOC_CANCELLED``,
  ``IOC_PARTIALLY_FILLED``, and ``EXPIRED`` if it is ever seen: the order is over.
- **refusal** — every rejection QFEX documents (``REJECTED…``, ``NO_SUCH_ORDER``, ``CANNOT_MODIFY_…``,
  ``FAILED_MARGIN_CHECK``, ``INVALID_…``, ``RATE_LIMITED``…) and any status the docs do not list. A refusal
  answers somebody's request and may carry the id of an order that stays open; it changes nothing.

Pure functions, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

ACK = "ACK"
MODIFIED = "MODIFIED"
FILLED = "FILLED"
LIVE_STATUSES = frozenset({ACK, MODIFIED})
TERMINAL_STATUSES = frozenset({"CANCELLED", "CANCELLED_STP", "IOC_CANCELLED", "IOC_PARTIALLY_FILLED", "EXPIRED"})
# The refusals QFEX's lists name (qfex-protocol.md §3.5, including the spellings that differ between QFEX's
# own lists and a third-party observation). Any other status not above is a refusal too, but an unknown one.
REFUSAL_STATUSES = frozenset(
    {
        "REJECTED", "NO_SUCH_ORDER", "INVALID_ORDER_TYPE", "BAD_SYMBOL", "PRICE_LESS_THAN_MIN_PRICE",
        "PRICE_GREATER_THAN_MAX_PRICE", "CANNOT_MODIFY_PARTIAL_FILL", "CANNOT_MODIFY_NO_SUCH_ORDER",
        "FAILED_MARGIN_CHECK", "INVALID_TICK_SIZE_PRECISION_PRICE", "INVALID_TICK_SIZE_PRECISION_QUANTITY",
        "QUANTITY_LESS_THAN_MIN_QUANTITY", "QUANTITY_GREATER_THAN_MAX_QUANTITY", "INVALID_TIME_IN_FORCE",
        "REJECTED_MARKET_CLOSED", "RATE_LIMITED", "REJECTED_WOULD_BREACH_MAX_NOTIONAL", "REJECTED_FAILED_TO_PROCESS",
        "INVALID_TAKEPROFIT_PRICE", "INVALID_STOPLOSS_PRICE", "INVALID_TAKE_PROFIT_PRICE", "INVALID_STOP_LOSS_PRICE",
        "REJECTED_TOO_MANY_OPEN_ORDERS", "REJECTED_OPEN_INTEREST_LIMIT", "REJECTED_GREATER_THAN_MAX_PRICE_BAND",
        "REJECTED_LESS_THAN_MIN_PRICE_BAND", "REJECTED_WOULD_BREACH_MAX_POSITION", "REJECTED_LESS_THAN_MIN_NOTIONAL",
    }
)  # fmt: skip
# Orders that can rest on the book, and those that cannot (their unfilled rest is cancelled at once).
RESTING_TIME_IN_FORCE = frozenset({"GTC"})
NON_RESTING_TIME_IN_FORCE = frozenset({"IOC", "FOK"})
NON_RESTING_TYPES = frozenset({"MARKET"})

# Closed-row outcomes (orders.live.protocol, CLOSED_ROW).
OUTCOME_FILLED = "filled"
OUTCOME_CANCELLED = "cancelled"
OUTCOME_CLOSED = "closed"  # a complete read proved it gone; no push said why


class Effect(enum.Enum):
    LIVE = "live"  # upsert the order's row
    TERMINAL = "terminal"  # close the order: its one Closed row, never an open row
    REFUSAL = "refusal"  # change nothing


@dataclass(frozen=True)
class Verdict:
    """A push's class, whether it asks for a reconcile, and (terminal only) how the order ended."""

    effect: Effect
    reconcile: bool = False
    known_status: bool = True  # False: a status QFEX's docs do not list (log it)
    outcome: str = ""
    reason: str = ""


def classify(
    status: str | None, remaining: Decimal | None, time_in_force: str | None, order_type: str | None
) -> Verdict:
    """The class of a push with this status; ``time_in_force`` and ``order_type`` are the push's, or the
    order's last known ones when the push leaves them out."""
    if status in LIVE_STATUSES:
        return Verdict(Effect.LIVE)
    if status == FILLED:
        return _fill(remaining, time_in_force, order_type)
    if status in TERMINAL_STATUSES:
        return Verdict(Effect.TERMINAL, outcome=OUTCOME_CANCELLED, reason=_CANCEL_WORDS[status])
    if status in REFUSAL_STATUSES:
        return Verdict(Effect.REFUSAL)
    return Verdict(Effect.REFUSAL, reconcile=True, known_status=False)


def _fill(remaining: Decimal | None, time_in_force: str | None, order_type: str | None) -> Verdict:
    if remaining is None:
        return Verdict(Effect.LIVE, reconcile=True)  # a fill that does not say whether the order is done
    if remaining <= 0:
        return Verdict(Effect.TERMINAL, outcome=OUTCOME_FILLED, reason="Filled")
    if order_type in NON_RESTING_TYPES:
        return Verdict(Effect.TERMINAL, outcome=OUTCOME_CANCELLED, reason=_PARTIAL_WORDS["MARKET"])
    if time_in_force in NON_RESTING_TIME_IN_FORCE:
        return Verdict(Effect.TERMINAL, outcome=OUTCOME_CANCELLED, reason=_PARTIAL_WORDS[time_in_force])
    if time_in_force in RESTING_TIME_IN_FORCE:
        return Verdict(Effect.LIVE)
    return Verdict(Effect.LIVE, reconcile=True)  # can it rest? Unknown: keep it open, let a read decide


_CANCEL_WORDS = {
    "CANCELLED": "Cancelled",
    "CANCELLED_STP": "Cancelled by self-trade prevention",
    "IOC_CANCELLED": "Cancelled: immediate-or-cancel found nothing to fill",
    "IOC_PARTIALLY_FILLED": "Partly filled, the rest cancelled (immediate-or-cancel)",
    "EXPIRED": "Expired",
}
_PARTIAL_WORDS = {
    "IOC": "Partly filled, the rest cancelled (immediate-or-cancel)",
    "FOK": "Partly filled, the rest cancelled (fill-or-kill)",
    "MARKET": "Partly filled, the rest cancelled (market order)",
}

# The reason of an order a complete read no longer lists and no push closed: QFEX said nothing, so the
# words name every way it can have gone (a modify that gave the order a new id is one; the new id shows
# as an open order of its own).
GONE_REASON = "No longer listed by QFEX, and no message said why: filled, cancelled, or modified under a new id"


def closed_reason(verdict: Verdict, filled: Decimal | None) -> str:
    """A terminal push's reason in words; a plain cancel of a partly filled order says so."""
    if verdict.reason == "Cancelled" and filled is not None and filled > 0:
        return "Partly filled, the rest cancelled"
    return verdict.reason
