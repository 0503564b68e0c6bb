"""The market: every account's books, their deterministic activity and the changes tests make to them.

Everything random comes from one `random.Random(seed)`, and timestamps come from a virtual clock that starts
at `epoch` and advances `event_seconds` per activity event, so the same seed, epoch and sequence of calls
always give the same books. What a new order or TWAP looks like is `maker.OrderMaker`'s; a `Market` is not
thread-safe, the simulator serialises access with a lock.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .accounts import SimAccount
from .book import Book, Push
from .events import EventLog
from .maker import OrderMaker, as_decimal, plain, spec_of, wire_number

_EVENT_KINDS = ("new", "partial_fill", "modify", "cancel", "full_fill", "twap")
_EVENT_WEIGHTS = (25, 20, 15, 15, 10, 15)
# The share of activity events that change an order (and push); the rest advance TWAPs, which push nothing.
# A benchmark that wants N order events per second sets the pace to N / ORDER_EVENT_SHARE.
ORDER_EVENT_SHARE = 1 - _EVENT_WEIGHTS[_EVENT_KINDS.index("twap")] / sum(_EVENT_WEIGHTS)


class Market:
    """All books of all accounts, with the seeded random source and the virtual clock."""

    def __init__(
        self,
        accounts: Iterable[SimAccount],
        seed: int,
        epoch: float,
        event_seconds: float = 1.0,
        event_log: EventLog | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.maker = OrderMaker(self.rng, self._stamp)
        # Every push is noted here as it is produced (the books' construction pushes nothing).
        self.event_log = event_log if event_log is not None else EventLog()
        self.now = float(epoch)
        self.event_seconds = event_seconds
        self.events = 0
        self.books: dict[str, Book] = {}
        for account in accounts:
            self._add_book(account.user_id, account.orders, account.twaps)
            for sub in account.subaccounts:
                self._add_book(sub, account.subaccount_orders, account.subaccount_twaps)

    # ----- set-up -----

    def _add_book(self, book_id: str, orders: int, twaps: int) -> None:
        if book_id in self.books:  # two keys of the same user share its books
            return
        book = self.books[book_id] = Book(book_id, orders, twaps)
        for _ in range(orders):
            book.orders.append(self.maker.order(book_id, age=self.rng.uniform(5, 7200)))
        for _ in range(twaps):
            self._start_twap(book, history=True)

    def _stamp(self, seconds_ago: float = 0.0) -> float:
        return round(self.now - seconds_ago, 6)

    def _start_twap(self, book: Book, history: bool = False) -> dict[str, Any]:
        twap, done = self.maker.twap(book.book_id, history)
        book.twaps.append(twap)
        book.twap_slices_done[twap["twap_id"]] = done
        book.changed()
        return twap

    # ----- activity -----

    def step(self, n: int = 1) -> list[Push]:
        """Perform `n` activity events; returns the order changes to push, in order."""
        pushes: list[Push] = []
        order_books = [b for b in self.books.values() if b.target_orders > 0]
        twap_books = [b for b in self.books.values() if b.target_twaps > 0]
        for _ in range(n):
            self.events += 1
            self.now = round(self.now + self.event_seconds, 6)
            kind = self.rng.choices(_EVENT_KINDS, weights=_EVENT_WEIGHTS)[0]
            if kind == "twap" or not order_books:
                if twap_books:
                    self._twap_event(self.rng.choice(twap_books))
                continue
            book = self.rng.choice(order_books)
            if len(book.orders) < max(1, book.target_orders // 2):
                kind = "new"
            elif len(book.orders) > book.target_orders * 3 // 2 + 1 and kind in ("new", "partial_fill", "modify"):
                kind = "cancel"
            pushes.append(self._order_event(book, kind))
        self.event_log.record(pushes)
        return pushes

    def _order_event(self, book: Book, kind: str) -> Push:
        if kind == "new":
            order = self.maker.order(book.book_id)
            book.orders.append(order)
            book.changed()
            return Push(book.book_id, dict(order))
        index = self.rng.randrange(len(book.orders))
        order = book.orders[index]
        spec = spec_of(order.get("symbol"))
        step = spec.quantity_step
        remaining = as_decimal(order.get("quantity_remaining", 0))
        if kind == "modify" and (remaining != as_decimal(order.get("quantity", 0)) or order.get("type") != "LIMIT"):
            kind = "partial_fill"  # QFEX refuses to modify a partially filled order (CANNOT_MODIFY_PARTIAL_FILL)
        if kind == "partial_fill" and remaining < 2 * step:
            kind = "full_fill"
        book.changed()
        if kind == "modify":
            new_price = max(as_decimal(order["price"]) + self.rng.randint(-20, 20) * spec.tick, spec.tick)
            return self._modify(book, index, {"price": wire_number(new_price)})
        if kind == "partial_fill":
            filled = self.rng.randint(1, int(remaining / step) - 1) * step
            return self._fill(book, index, filled)
        del book.orders[index]
        book.recently_removed.append(dict(order))
        final = {**order, "update_time": self._stamp()}
        if kind == "full_fill":
            final.update(status="FILLED", quantity_remaining=0.0, trade_id=self.maker.new_id())
        else:
            final.update(status="CANCELLED", trade_id=None)
        return Push(book.book_id, final)

    def _twap_event(self, book: Book) -> None:
        if not book.twaps or (len(book.twaps) < book.target_twaps and self.rng.random() < 0.5):
            self._start_twap(book)
            return
        twap = self.rng.choice(book.twaps)
        self.advance_twap(book, twap)

    def advance_twap(self, book: Book, twap: dict[str, Any]) -> None:
        """Execute one child slice; a TWAP whose last slice ran leaves the active list."""
        spec = spec_of(twap.get("symbol"))
        total_slices = max(int(twap.get("total_num_orders") or 1), 1)
        done = book.twap_slices_done.get(twap["twap_id"], 0) + 1
        book.twap_slices_done[twap["twap_id"]] = done
        total = as_decimal(twap.get("total_quantity", 0))
        filled = as_decimal(twap.get("filled_quantity", 0))
        slice_quantity = total - filled if done >= total_slices else total / total_slices
        fill_price = self.maker.price(spec, 0.5)
        average = as_decimal(twap.get("average_fill_price", 0))
        new_filled = filled + slice_quantity
        if new_filled > 0:
            average = ((average * filled + fill_price * slice_quantity) / new_filled).quantize(
                spec.tick, rounding=ROUND_HALF_EVEN
            )
        twap.update(filled_quantity=wire_number(new_filled), average_fill_price=wire_number(average))
        twap.update(updated_at=self._stamp())
        book.changed()
        if done >= total_slices:
            book.twaps.remove(twap)
            del book.twap_slices_done[twap["twap_id"]]

    # ----- direct manipulation (tests, F12) -----

    def add_orders(self, book_id: str, count: int, fields: Mapping[str, object]) -> list[Push]:
        book = self.books[book_id]
        pushes = []
        for _ in range(count):
            order = self.maker.order(book_id)
            order.update({key: plain(value) for key, value in fields.items()})
            book.orders.append(order)
            pushes.append(Push(book_id, dict(order)))
        book.changed()
        self.event_log.record(pushes)
        return pushes

    def _fill(self, book: Book, index: int, quantity: Decimal) -> Push:
        """A fill of ``quantity`` (less than what remains: the order stays open)."""
        order = book.orders[index]
        remaining = as_decimal(order.get("quantity_remaining", 0))
        order.update(status="FILLED", quantity_remaining=wire_number(remaining - quantity))
        order.update(update_time=self._stamp(), trade_id=self.maker.new_id())
        book.changed()
        return Push(book.book_id, dict(order))

    def fill_order(self, book_id: str, order_id: str, quantity: object) -> Push | None:
        """Fill part of an open order (it stays open; a fill of all that remains is refused)."""
        book = self.books[book_id]
        index = book.index_of(order_id)
        if index is None:
            return None
        amount = as_decimal(quantity)
        if not 0 < amount < as_decimal(book.orders[index].get("quantity_remaining", 0)):
            raise ValueError("a partial fill must be more than 0 and less than what remains")
        return self._fill(book, index, amount)

    def _modify(self, book: Book, index: int, fields: Mapping[str, object]) -> Push:
        order = book.orders[index]
        modified = {**order, **{key: plain(value) for key, value in fields.items()}}
        modified.update(order_id=self.maker.new_id(), status="MODIFIED", update_time=self._stamp(), trade_id=None)
        book.orders[index] = modified  # a modify keeps the order's place but gives it a new id
        book.changed()
        return Push(book.book_id, dict(modified))

    def modify_order(self, book_id: str, order_id: str, fields: Mapping[str, object]) -> Push | None:
        """Modify an open order as QFEX does: same place in the book, a new id, status MODIFIED."""
        book = self.books[book_id]
        index = book.index_of(order_id)
        return None if index is None else self._modify(book, index, fields)

    def remove_order(self, book_id: str, order_id: str) -> Push | None:
        book = self.books[book_id]
        index = book.index_of(order_id)
        if index is None:
            return None
        order = book.orders.pop(index)
        book.recently_removed.append(dict(order))
        book.changed()
        push = Push(book_id, {**order, "status": "CANCELLED", "update_time": self._stamp(), "trade_id": None})
        self.event_log.record([push])
        return push

    def add_twaps(self, book_id: str, count: int, fields: Mapping[str, object]) -> list[dict[str, Any]]:
        book = self.books[book_id]
        added = []
        for _ in range(count):
            twap = self._start_twap(book)
            old_id = twap["twap_id"]
            twap.update({key: plain(value) for key, value in fields.items()})
            book.twap_slices_done[twap["twap_id"]] = book.twap_slices_done.pop(old_id)
            added.append(dict(twap))
        return added

    def churn(self, book_id: str, count: int) -> list[Push]:
        """F12: remove `count` orders from anywhere in the book and add `count` new ones at its end."""
        book = self.books[book_id]
        pushes = []
        for _ in range(min(count, len(book.orders))):
            order = book.orders[self.rng.randrange(len(book.orders))]
            removed = self.remove_order(book_id, order["order_id"])
            if removed is not None:
                pushes.append(removed)
        pushes.extend(self.add_orders(book_id, count, {}))
        return pushes

    def stale_order(self, book_id: str) -> dict[str, Any] | None:
        """An out-of-date copy of an order (F8): a removed order as it was, or an old state of a live one."""
        book = self.books[book_id]
        if book.recently_removed:
            return {**book.recently_removed[-1], "status": "ACK"}
        if book.orders:
            old = book.orders[0]
            return {**old, "status": "ACK", "update_time": wire_number(as_decimal(old.get("update_time")) - 60)}
        return None
