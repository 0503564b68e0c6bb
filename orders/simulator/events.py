"""A log of the order events the simulator produced, with the moment each was produced.

Benchmarks measure "exchange event → browser has the diff": they need to know when the exchange made
each change. Every `order_response` push the market produces is noted here at the moment it is produced
(before it is queued to any subscriber), whoever caused it: the background pace, `step()`,
`add_orders()`, `remove_order()` or the F12 churn. TWAP slices produce no push and are not noted.

Times are this process's `time.monotonic_ns()` (to compare with a client in the same process) and
`time.time()` (to compare across processes, with the usual caveats about clocks). The log is bounded:
the oldest entries go first.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

DEFAULT_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One `order_response` push as produced: when, for which book, and what it said."""

    serial: int  # 1, 2, 3 … over the simulator's life (gaps mean entries fell off the bounded log)
    t_ns: int  # time.monotonic_ns() when produced
    wall: float  # time.time() when produced
    book_id: str  # the user id or subaccount id whose book changed
    order_id: str
    status: str
    quantity_remaining: object  # as pushed (a float for simulator orders)


class _Pushed(Protocol):
    """What is noted of a push (`book.Push`, which imports this module)."""

    @property
    def book_id(self) -> str: ...

    @property
    def order(self) -> Mapping[str, object]: ...


class EventLog:
    """Thread-safe, bounded, append-only list of :class:`OrderEvent`."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError("event_log_size must be a whole number, 1 or more")
        self._events: deque[OrderEvent] = deque(maxlen=size)
        self._serial = 0
        self._lock = threading.Lock()

    def record(self, pushes: Iterable[_Pushed]) -> None:
        """Note each push (anything with ``book_id`` and an ``order`` dict) as produced now."""
        t_ns, wall = time.monotonic_ns(), time.time()
        with self._lock:
            for push in pushes:
                order = push.order
                self._serial += 1
                self._events.append(
                    OrderEvent(
                        self._serial,
                        t_ns,
                        wall,
                        push.book_id,
                        str(order.get("order_id")),
                        str(order.get("status")),
                        order.get("quantity_remaining"),
                    )
                )

    def since(self, t_ns: int = 0, book_id: str | None = None) -> list[OrderEvent]:
        """Events produced at or after ``t_ns`` (monotonic ns), of one book or all; oldest first. A copy."""
        with self._lock:
            return [e for e in self._events if e.t_ns >= t_ns and (book_id is None or e.book_id == book_id)]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
