"""Per-account order books and their deterministic activity.

Everything random comes from one `random.Random(seed)`, and timestamps come from a virtual clock that starts
at `epoch` and advances `event_seconds` per activity event, so the same seed, epoch and sequence of calls
always give the same books. Prices and quantities are whole numbers of ticks/steps turned into floats
through `Decimal`, so they serialise as clean JSON numbers such as 187.25 or 0.5.

Orders and TWAPs are kept as the plain dicts sent on the wire (the current shape); a `Market` is not
thread-safe, the simulator serialises access with a lock.

Page order: `get_user_orders` pages through a book in insertion order by default (a modified order keeps
its place). QFEX does not document its order; with `page_order="updated"` pages list the latest update
first, so an order that fills or is modified while a client pages jumps to offset 0 (docs/qfex-protocol.md
§3.7).
"""

from __future__ import annotations

import random
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson

from .accounts import SimAccount
from .events import EventLog

PAGE_CAP = 1000
PAGE_ORDERS = ("insertion", "updated")


@dataclass(frozen=True)
class SymbolSpec:
    symbol: str
    reference_price: Decimal
    tick: Decimal
    quantity_step: Decimal
    max_steps: int  # largest order size, in quantity steps


SYMBOLS: tuple[SymbolSpec, ...] = (
    SymbolSpec("AAPL-USD", Decimal("187.25"), Decimal("0.01"), Decimal("0.1"), 500),
    SymbolSpec("NVDA-USD", Decimal("135.40"), Decimal("0.01"), Decimal("0.1"), 800),
    SymbolSpec("TSLA-USD", Decimal("248.50"), Decimal("0.01"), Decimal("0.1"), 400),
    SymbolSpec("GOOG-USD", Decimal("176.80"), Decimal("0.01"), Decimal("0.1"), 400),
    SymbolSpec("US500-USD", Decimal("5987.5"), Decimal("0.1"), Decimal("0.01"), 300),
    SymbolSpec("US100-USD", Decimal("21250.0"), Decimal("0.5"), Decimal("0.01"), 200),
    SymbolSpec("GOLD-USD", Decimal("2654.3"), Decimal("0.1"), Decimal("0.01"), 500),
    SymbolSpec("OIL-USD", Decimal("71.42"), Decimal("0.01"), Decimal("1"), 200),
    SymbolSpec("EURUSD-USD", Decimal("1.08345"), Decimal("0.00001"), Decimal("100"), 1000),
)
_SPECS = {spec.symbol: spec for spec in SYMBOLS}
_FALLBACK_SPEC = SymbolSpec("", Decimal("100"), Decimal("0.01"), Decimal("0.01"), 100)

ORDER_FIELDS = (
    "order_id", "symbol", "status", "quantity", "price", "take_profit", "stop_loss", "side", "type",
    "time_in_force", "user_id", "client_order_id", "quantity_remaining", "update_time", "trade_id",
)  # fmt: skip
# The September 2025 shape (`user_orders` + `count`) had no take_profit, stop_loss, update_time or trade_id.
LEGACY_ORDER_FIELDS = tuple(f for f in ORDER_FIELDS if f not in {"take_profit", "stop_loss", "update_time", "trade_id"})
TWAP_FIELDS = (
    "twap_id", "client_twap_id", "user_id", "status", "symbol", "total_quantity", "filled_quantity",
    "average_fill_price", "total_num_orders", "order_interval_secs", "reduce_only", "side", "created_at",
    "updated_at",
)  # fmt: skip

_CLIENT_ID_PREFIXES = ("grid", "mm-bot", "hedge", "rebal", "manual", "arb")
_FREE_TEXT_IDS = ("scalp AAPL #3", "désk β / ladder 2", "tp+sl 50%", "night run — keep", "O'Brien's hedge")
_TWAP_INTERVALS = (30, 60, 120, 300)
_EVENT_KINDS = ("new", "partial_fill", "modify", "cancel", "full_fill", "twap")
_EVENT_WEIGHTS = (25, 20, 15, 15, 10, 15)
# The share of activity events that change an order (and push); the rest advance TWAPs, which push nothing.
# A benchmark that wants N order events per second sets the pace to N / ORDER_EVENT_SHARE.
ORDER_EVENT_SHARE = 1 - _EVENT_WEIGHTS[_EVENT_KINDS.index("twap")] / sum(_EVENT_WEIGHTS)
_MAX_CACHED_PAGES = 32


def _number(value: Decimal) -> float:
    # float(Decimal) is the double nearest the decimal, whose shortest repr is that decimal again.
    return float(value)


def _decimal(value: object) -> Decimal:
    """A wire number as an exact Decimal; anything unusable (a test may inject odd values) counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return Decimal(0)
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        return Decimal(0)
    return result if result.is_finite() else Decimal(0)


def _plain(value: object) -> object:
    """Make a caller-supplied field serialisable as a JSON number when it is a Decimal."""
    return float(value) if isinstance(value, Decimal) else value


@dataclass
class Push:
    """An order change to send to the book's `order_responses` subscribers."""

    book_id: str
    order: dict[str, Any]


class Book:
    def __init__(self, book_id: str, target_orders: int, target_twaps: int) -> None:
        self.book_id = book_id
        self.target_orders = target_orders
        self.target_twaps = target_twaps
        self.orders: list[dict[str, Any]] = []
        self.twaps: list[dict[str, Any]] = []
        self.twap_slices_done: dict[str, int] = {}
        self.recently_removed: deque[dict[str, Any]] = deque(maxlen=20)
        self.version = 0
        self._pages: dict[tuple[str, int, int, str | None, str], bytes] = {}  # (shape, limit, offset, symbol, order)
        self._by_update: list[dict[str, Any]] | None = None

    def changed(self) -> None:
        self.version += 1
        self._pages.clear()
        self._by_update = None

    def ordered(self, page_order: str = "insertion") -> list[dict[str, Any]]:
        """The open orders in the order pages list them (see the module docstring); not a copy."""
        if page_order == "insertion":
            return self.orders
        if page_order != "updated":
            raise ValueError(f"page_order must be one of {', '.join(PAGE_ORDERS)}")
        if self._by_update is None:
            # Newest update first; among equal times the later-added order first. Cached until the next change.
            ranked = sorted(enumerate(self.orders), key=lambda item: (_sort_time(item[1]), item[0]), reverse=True)
            self._by_update = [order for _, order in ranked]
        return self._by_update

    def index_of(self, order_id: str) -> int | None:
        for index, order in enumerate(self.orders):
            if order.get("order_id") == order_id:
                return index
        return None

    def select(
        self, limit: int, offset: int, symbol: str | None, page_order: str = "insertion"
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        listed = self.ordered(page_order)
        orders = listed if symbol is None else [o for o in listed if o.get("symbol") == symbol]
        twaps = self.twaps if symbol is None else [t for t in self.twaps if t.get("symbol") == symbol]
        return orders[offset : offset + limit], twaps

    def page_bytes(
        self, shape: str, limit: int, offset: int, symbol: str | None, page_order: str = "insertion"
    ) -> bytes:
        """The serialised get_user_orders reply, cached until the book next changes."""
        key = (shape, limit, offset, symbol, page_order)
        cached = self._pages.get(key)
        if cached is None:
            if len(self._pages) >= _MAX_CACHED_PAGES:
                self._pages.clear()
            selected = self.select(limit, offset, symbol, page_order)
            cached = self._pages[key] = orjson.dumps(page_reply(shape, *selected))
        return cached


def _sort_time(order: Mapping[str, object]) -> float:
    value = order.get("update_time")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("-inf")  # a test may inject odd values: such orders list last
    return float(value)


def page_reply(shape: str, orders: Sequence[dict[str, Any]], twaps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A get_user_orders reply in one of the shapes QFEX has used (docs/qfex-protocol.md §3.2)."""
    if shape == "legacy":
        legacy = [{k: o[k] for k in LEGACY_ORDER_FIELDS if k in o} for o in orders]
        return {"user_orders": legacy, "count": len(legacy)}
    if shape == "mid":
        return {"all_orders_response": {"orders": list(orders), "stop_orders": []}}
    return {"all_orders_response": {"orders": list(orders), "twaps": list(twaps)}}


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
            book.orders.append(self._new_order(book_id, age=self.rng.uniform(5, 7200)))
        for _ in range(twaps):
            self._start_twap(book, history=True)

    # ----- random building blocks -----

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _stamp(self, seconds_ago: float = 0.0) -> float:
        return round(self.now - seconds_ago, 6)

    def _spec(self, symbol: object) -> SymbolSpec:
        return _SPECS.get(symbol, _FALLBACK_SPEC) if isinstance(symbol, str) else _FALLBACK_SPEC

    def _price(self, spec: SymbolSpec, spread_pct: float = 3.0) -> Decimal:
        ref_ticks = int(spec.reference_price / spec.tick)
        ticks = ref_ticks + self.rng.randint(-int(ref_ticks * spread_pct / 100), int(ref_ticks * spread_pct / 100))
        return max(ticks, 1) * spec.tick

    def _client_order_id(self) -> str:
        roll = self.rng.random()
        if roll < 0.4:
            return ""
        if roll < 0.9:
            return f"{self.rng.choice(_CLIENT_ID_PREFIXES)}-{self.rng.randint(1, 9999):04d}"
        return self.rng.choice(_FREE_TEXT_IDS)

    def _new_order(self, book_id: str, age: float = 0.0) -> dict[str, Any]:
        spec = self.rng.choice(SYMBOLS)
        side = self.rng.choice(("BUY", "SELL"))
        kind = self.rng.choices(("LIMIT", "ALO", "TAKE_PROFIT", "STOP_LOSS"), weights=(70, 15, 8, 7))[0]
        price = self._price(spec)
        quantity = self.rng.randint(1, spec.max_steps) * spec.quantity_step
        take_profit = stop_loss = Decimal(0)
        if kind == "LIMIT" and self.rng.random() < 0.2:
            sign = 1 if side == "BUY" else -1
            take_profit = price + sign * self.rng.randint(10, 300) * spec.tick
            stop_loss = max(price - sign * self.rng.randint(10, 300) * spec.tick, spec.tick)
        return {
            "order_id": self._uuid(),
            "symbol": spec.symbol,
            "status": "ACK",
            "quantity": _number(quantity),
            "price": _number(price),
            "take_profit": _number(take_profit),
            "stop_loss": _number(stop_loss),
            "side": side,
            "type": kind,
            "time_in_force": "IOC" if kind in ("TAKE_PROFIT", "STOP_LOSS") else "GTC",
            "user_id": book_id,
            "client_order_id": self._client_order_id(),
            "quantity_remaining": _number(quantity),
            "update_time": self._stamp(age),
            "trade_id": None,
        }

    def _start_twap(self, book: Book, history: bool = False) -> dict[str, Any]:
        spec = self.rng.choice(SYMBOLS)
        slices = self.rng.randint(2, 40)
        interval = self.rng.choice(_TWAP_INTERVALS)
        per_slice = self.rng.randint(1, max(1, spec.max_steps // 10)) * spec.quantity_step
        done = self.rng.randint(0, slices - 1) if history else 0
        created = self._stamp(done * interval + self.rng.uniform(0, interval) if history else 0.0)
        client_id = self.rng.choice((None, "", f"rebalance-{spec.symbol.split('-')[0].lower()}-{slices:03d}"))
        twap: dict[str, Any] = {
            "twap_id": self._uuid(),
            "client_twap_id": client_id,
            "user_id": book.book_id,
            "status": "RUNNING",
            "symbol": spec.symbol,
            "total_quantity": _number(per_slice * slices),
            "filled_quantity": _number(per_slice * done),
            "average_fill_price": _number(self._price(spec, 0.5)) if done else 0.0,
            "total_num_orders": slices,
            "order_interval_secs": interval,
            "reduce_only": self.rng.random() < 0.15,
            "side": self.rng.choice(("BUY", "SELL")),
            "created_at": created,
            "updated_at": round(created + done * interval, 6) if done else created,
        }
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
            order = self._new_order(book.book_id)
            book.orders.append(order)
            book.changed()
            return Push(book.book_id, dict(order))
        index = self.rng.randrange(len(book.orders))
        order = book.orders[index]
        spec = self._spec(order.get("symbol"))
        step = spec.quantity_step
        remaining = _decimal(order.get("quantity_remaining", 0))
        if kind == "modify" and (remaining != _decimal(order.get("quantity", 0)) or order.get("type") != "LIMIT"):
            kind = "partial_fill"  # QFEX refuses to modify a partially filled order (CANNOT_MODIFY_PARTIAL_FILL)
        if kind == "partial_fill" and remaining < 2 * step:
            kind = "full_fill"
        book.changed()
        if kind == "modify":
            new_price = max(_decimal(order["price"]) + self.rng.randint(-20, 20) * spec.tick, spec.tick)
            return self._modify(book, index, {"price": _number(new_price)})
        if kind == "partial_fill":
            filled = self.rng.randint(1, int(remaining / step) - 1) * step
            return self._fill(book, index, filled)
        del book.orders[index]
        book.recently_removed.append(dict(order))
        final = {**order, "update_time": self._stamp()}
        if kind == "full_fill":
            final.update(status="FILLED", quantity_remaining=0.0, trade_id=self._uuid())
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
        spec = self._spec(twap.get("symbol"))
        total_slices = max(int(twap.get("total_num_orders") or 1), 1)
        done = book.twap_slices_done.get(twap["twap_id"], 0) + 1
        book.twap_slices_done[twap["twap_id"]] = done
        total = _decimal(twap.get("total_quantity", 0))
        filled = _decimal(twap.get("filled_quantity", 0))
        slice_quantity = total - filled if done >= total_slices else total / total_slices
        fill_price = self._price(spec, 0.5)
        average = _decimal(twap.get("average_fill_price", 0))
        new_filled = filled + slice_quantity
        if new_filled > 0:
            average = ((average * filled + fill_price * slice_quantity) / new_filled).quantize(
                spec.tick, rounding=ROUND_HALF_EVEN
            )
        twap.update(filled_quantity=_number(new_filled), average_fill_price=_number(average))
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
            order = self._new_order(book_id)
            order.update({key: _plain(value) for key, value in fields.items()})
            book.orders.append(order)
            pushes.append(Push(book_id, dict(order)))
        book.changed()
        self.event_log.record(pushes)
        return pushes

    def _fill(self, book: Book, index: int, quantity: Decimal) -> Push:
        """A fill of ``quantity`` (less than what remains: the order stays open)."""
        order = book.orders[index]
        remaining = _decimal(order.get("quantity_remaining", 0))
        order.update(status="FILLED", quantity_remaining=_number(remaining - quantity))
        order.update(update_time=self._stamp(), trade_id=self._uuid())
        book.changed()
        return Push(book.book_id, dict(order))

    def fill_order(self, book_id: str, order_id: str, quantity: object) -> Push | None:
        """Fill part of an open order (it stays open; a fill of all that remains is refused)."""
        book = self.books[book_id]
        index = book.index_of(order_id)
        if index is None:
            return None
        amount = _decimal(quantity)
        if not 0 < amount < _decimal(book.orders[index].get("quantity_remaining", 0)):
            raise ValueError("a partial fill must be more than 0 and less than what remains")
        return self._fill(book, index, amount)

    def _modify(self, book: Book, index: int, fields: Mapping[str, object]) -> Push:
        order = book.orders[index]
        modified = {**order, **{key: _plain(value) for key, value in fields.items()}}
        modified.update(order_id=self._uuid(), status="MODIFIED", update_time=self._stamp(), trade_id=None)
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
            twap.update({key: _plain(value) for key, value in fields.items()})
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
            return {**old, "status": "ACK", "update_time": _number(_decimal(old.get("update_time")) - 60)}
        return None
