"""Driving the simulated books from a test, a benchmark or the demo: activity, orders and TWAPs.

Each change is made under the state's lock and what it pushes is published to the subscribed sessions on
the server's loop, so these may be called from any thread while the simulator serves clients.
"""

from __future__ import annotations

from typing import Any

from .book import Push
from .server import SimServer
from .state import ExchangeState


class BookControls:
    """The book part of `Simulator`'s control API (a base class of it)."""

    _state: ExchangeState
    _server: SimServer

    def _changed(self, pushes: list[Push]) -> list[dict[str, Any]]:
        """Publish the pushes a change made; the changed orders as pushed (copies)."""
        self._server.publish_threadsafe(pushes)
        return [dict(push.order) for push in pushes]

    def step(self, n: int = 1) -> list[dict[str, Any]]:
        """Perform `n` deterministic activity events; returns the order changes they pushed, in order."""
        with self._state.lock:
            pushes = self._state.market.step(n)
        return self._changed(pushes)

    def open_orders(self, account_key: str) -> list[dict[str, Any]]:
        """The book's open orders in the order get_user_orders pages through them (current shape)."""
        state = self._state
        with state.lock:
            book = state.market.books[state.book_id(account_key)]
            return [dict(order) for order in book.ordered(state.page_order)]

    def active_twaps(self, account_key: str) -> list[dict[str, Any]]:
        with self._state.lock:
            return [dict(twap) for twap in self._state.market.books[self._state.book_id(account_key)].twaps]

    def add_orders(self, account_key: str, count: int = 1, **fields: object) -> list[dict[str, Any]]:
        """Add `count` random orders, with `fields` overriding any field (or adding extra ones); pushes ACKs."""
        with self._state.lock:
            pushes = self._state.market.add_orders(self._state.book_id(account_key), count, fields)
        return self._changed(pushes)

    def fill_order(self, account_key: str, order_id: str, quantity: object) -> dict[str, Any] | None:
        """Fill part of an open order (pushes FILLED with what remains); None if it is not open."""
        with self._state.lock:
            push = self._state.market.fill_order(self._state.book_id(account_key), order_id, quantity)
        return None if push is None else self._changed([push])[0]

    def modify_order(self, account_key: str, order_id: str, **fields: object) -> dict[str, Any] | None:
        """Modify an open order (new id, status MODIFIED, pushed); returns it, or None if it is not open."""
        with self._state.lock:
            push = self._state.market.modify_order(self._state.book_id(account_key), order_id, fields)
        return None if push is None else self._changed([push])[0]

    def remove_order(self, account_key: str, order_id: str) -> dict[str, Any] | None:
        """Cancel an order (pushes CANCELLED); returns the pushed order, None when there is no such order."""
        with self._state.lock:
            push = self._state.market.remove_order(self._state.book_id(account_key), order_id)
        return None if push is None else self._changed([push])[0]

    def add_twaps(self, account_key: str, count: int = 1, **fields: object) -> list[dict[str, Any]]:
        """Start `count` random TWAPs, with `fields` overriding any field (no push: QFEX has no TWAP channel)."""
        with self._state.lock:
            return self._state.market.add_twaps(self._state.book_id(account_key), count, fields)

    def advance_twap(self, account_key: str, twap_id: str) -> dict[str, Any] | None:
        """Run one child slice of a TWAP now; returns the TWAP, or None once its last slice ran (it is gone)."""
        with self._state.lock:
            book = self._state.market.books[self._state.book_id(account_key)]
            twap = next((t for t in book.twaps if t.get("twap_id") == twap_id), None)
            if twap is None:
                raise KeyError(f"no active TWAP {twap_id!r}")
            self._state.market.advance_twap(book, twap)
            return dict(twap) if any(t is twap for t in book.twaps) else None
