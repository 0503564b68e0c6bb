"""What the merge rule learns about QFEX in operation: corrections and statuses nobody documented.

A **correction** is a complete read contradicting a push (docs/qfex-protocol.md §4.4): it re-listed an
order a push had closed, or no longer listed one a push had kept open. Each is counted in ``/metrics``
(``qfexdash_corrections_total``) and logged once per account, order and kind, so an assumption about
QFEX that turns out wrong (a status read the wrong way, pushes that arrive late) is seen by whoever runs
the dashboard, not only by the trader whose table it briefly got wrong. A status QFEX never documented is
logged once per distinct value. Memories are bounded; exchange strings in log lines are shortened.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from orders.live import metrics
from orders.qfex.errors import shorten

from .state import RELISTED, Correction

logger = logging.getLogger("orders.live.feed")

_LOGGED_MEMORY = 10_000  # (account, order id, kind) already logged
_STATUS_MEMORY = 256  # distinct unknown statuses already logged
_LOGGED_TEXT = 80  # at most this many characters of an exchange string in a log line

_WORDS = {
    RELISTED: "a complete read listed order %s again after a push had closed it; it is open again",
    "removed": "a complete read no longer listed order %s although a push had kept it open; it is gone",
}


class _Once:
    """Remembers the last ``limit`` keys: ``first(key)`` is True the first time a key is seen."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: OrderedDict[Hashable, None] = OrderedDict()

    def first(self, key: Hashable) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        while len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return True


_logged = _Once(_LOGGED_MEMORY)
_statuses = _Once(_STATUS_MEMORY)


def report(account_id: int, corrections: Iterable[Correction]) -> None:
    """Count each correction, and log the first of each (account, order, kind)."""
    for correction in corrections:
        metrics.correction(account_id, correction.kind)
        if _logged.first((account_id, correction.order_id, correction.kind)):
            logger.warning(
                "account %s: correction: " + _WORDS[correction.kind],
                account_id,
                shorten(correction.order_id, _LOGGED_TEXT),
            )


def unknown_status(account_id: int, status: str) -> None:
    """A push carried a status QFEX's docs do not list (handled as a refusal): log each distinct one once."""
    text = shorten(status, _LOGGED_TEXT)
    if _statuses.first(text):
        logger.warning("account %s: QFEX pushed an order status its docs do not list: %r", account_id, text)
