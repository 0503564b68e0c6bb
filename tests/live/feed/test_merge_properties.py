"""The merge rule (docs/qfex-protocol.md §4.4) under random interleavings of pushes and paged reads.

A model exchange keeps a book that changes while it is read: orders are added (at the front of the list as
often as anywhere), filled, cancelled, modified under the same id or a new one, and refused; it pages by
offset in either order QFEX may use (by id, or latest update first). Its pushes go through one queue in
the order they happen and reach the real AccountState promptly or late (reads overtake them), and some
are duplicated. Reads run through the real paging code (``fetch_open_orders``) against a socket-less
session whose every page may be preceded by exchange activity; some reads are cut short.

Invariants, checked after every step:

- after a complete read, every order open at the exchange throughout it and unchanged meanwhile is shown,
  and has no Closed row;
- after a complete read with no pushes pending, the rows equal the exchange's book;
- the published diffs carry strictly increasing, consecutive seqs and rebuild the owner's rows and
  Closed rows exactly (a mirror applies them);
- every order that was shown and no longer is has exactly one Closed row; no shown, confirmed order has one;
- an incomplete read removes nothing.

The CI profile (tests/conftest.py) is derandomised with a fixed number of examples and a deadline.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orders.live import protocol as lp
from orders.live.feed.state import UNCONFIRMED, AccountState, Change, FetchedBook
from orders.live.rows import build_order_rows, build_twap_rows, order_row, without_placement
from orders.qfex import PagingIncomplete, fetch_open_orders
from orders.qfex.records import Page, parse_order
from orders.qfex.session import PageLimits

ACCOUNT = 7
LABEL = "Desk"
REFUSALS = ("REJECTED", "CANNOT_MODIFY_PARTIAL_FILL", "CANNOT_MODIFY_NO_SUCH_ORDER", "NO_SUCH_ORDER", "RATE_LIMITED",
            "FAILED_MARGIN_CHECK", "INVALID_TICK_SIZE_PRECISION_PRICE")  # fmt: skip
CANCELS = ("CANCELLED", "CANCELLED_STP", "IOC_CANCELLED", "EXPIRED")
_BUSY_PAGES = 8  # the exchange is active before each of a read's first pages (then the read can finish)
_MAX_PAGES = 60  # the real paging code's bound, lowered: a read still going then is incomplete
KINDS = ("add", "add", "partial", "full", "cancel", "modify", "modify_new", "refusal", "refusal_unknown", "unknown")


class CutShort(Exception):
    """The read's connection dropped before its last page."""


class Exchange:
    """A book that pages by offset, listed by id or by latest update (newest first)."""

    def __init__(self, ordering: str) -> None:
        self.ordering = ordering
        self.book: dict[str, dict[str, Any]] = {}
        self.updated: dict[str, int] = {}
        self.version: dict[str, int] = {}
        self.tick = 0
        self.serial = 0

    def listed(self) -> list[dict[str, Any]]:
        if self.ordering == "id":
            return [self.book[order_id] for order_id in sorted(self.book)]
        return [self.book[order_id] for order_id in sorted(self.book, key=lambda i: -self.updated[i])]

    def touch(self, order_id: str) -> None:
        self.tick += 1
        self.updated[order_id] = self.tick
        self.version[order_id] = self.version.get(order_id, 0) + 1

    def remove(self, order_id: str) -> dict[str, Any]:
        self.updated.pop(order_id)
        return self.book.pop(order_id)


class FakeSession:
    """What ``fetch_open_orders`` uses of a QfexSession, without a socket: each page may be preceded by
    exchange activity, and the read may be cut short."""

    def __init__(self, machine: MergeMachine, data: Any, cut_at: int | None) -> None:
        self.machine = machine
        self.data = data
        self.cut_at = cut_at
        self.page_limits = PageLimits()
        self.requests = 0

    def clock(self) -> float:
        return 1000.0 + self.machine.exchange.tick

    def get_user_orders_page(self, *, limit: int, offset: int, symbol: str | None = None) -> Page:
        if 0 < self.requests < _BUSY_PAGES:
            for _ in range(self.data.draw(st.integers(0, 2), label="events before the page")):
                self.machine.event(self.data)
        self.requests += 1
        if self.cut_at is not None and self.requests > self.cut_at:
            raise CutShort
        items = self.machine.exchange.listed()[offset : offset + min(limit, self.machine.cap)]
        return Page([parse_order(dict(item)) for item in items], [], len(items))


class MergeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = AccountState(ACCOUNT, LABEL, seq=100, closed_limit=100_000)
        self.mirror = AccountState(ACCOUNT, LABEL, seq=100, closed_limit=100_000)
        self.exchange = Exchange("id")
        self.queue: list[dict[str, Any]] = []  # pushes on their way, in the order they happened
        self.history: list[dict[str, Any]] = []
        self.shown: set[str] = set()  # every order id the table ever showed
        self.cap = 3
        self.in_read = False
        self.events_in_read = 0
        self.removed_by_pushes: set[str] = set()

    @initialize(
        ordering=st.sampled_from(["id", "updated"]), cap=st.integers(2, 5), start=st.integers(0, 6), data=st.data()
    )
    def setup(self, ordering: str, cap: int, start: int, data: Any) -> None:
        self.exchange = Exchange(ordering)
        self.cap = cap
        for _ in range(start):
            self._add(data)
        self.queue.clear()

    # --- the exchange --------------------------------------------------------------------------------

    def _push(self, record: dict[str, Any], status: str, data: Any, **fields: Any) -> None:
        push = {**record, **fields, "status": status}
        if not data.draw(st.booleans(), label="push carries update_time"):
            push.pop("update_time", None)
        self.queue.append(push)
        self.history.append(push)

    def _add(self, data: Any) -> None:
        exchange = self.exchange
        exchange.serial += 1
        prefix = data.draw(st.sampled_from("abcde"), label="id prefix")  # by id, new orders land anywhere
        order_id = f"{prefix}{exchange.serial:04d}"
        order_type = data.draw(st.sampled_from(["LIMIT", "LIMIT", "LIMIT", "MARKET"]), label="type")
        tif = "IOC" if order_type == "MARKET" else data.draw(st.sampled_from(["GTC", "GTC", "IOC", "FOK", None]))
        record: dict[str, Any] = {
            "order_id": order_id, "symbol": "AAPL-USD", "side": "BUY", "type": order_type, "price": 100,
            "quantity": 10, "quantity_remaining": 10, "status": "ACK", "client_order_id": "",
            "update_time": 1000 + exchange.tick,
        }  # fmt: skip
        if tif is not None:
            record["time_in_force"] = tif
        exchange.book[order_id] = record
        exchange.touch(order_id)
        self._push(record, "ACK", data)

    def event(self, data: Any) -> None:
        """One thing happens at the exchange (its pushes are queued); sometimes the queue is delivered."""
        if self.in_read:
            self.events_in_read += 1
        kind = data.draw(st.sampled_from(KINDS), label="event")
        exchange = self.exchange
        if kind == "add" or not exchange.book:
            self._add(data)
        else:
            order_id = data.draw(st.sampled_from(sorted(exchange.book)), label="order")
            record = exchange.book[order_id]
            rests = record.get("type") != "MARKET" and record.get("time_in_force") in ("GTC", None)
            if kind == "partial" and record["quantity_remaining"] > 1:
                left = record["quantity_remaining"] - 1
                if rests:
                    record = exchange.book[order_id] = {**record, "quantity_remaining": left, "status": "FILLED"}
                    exchange.touch(order_id)
                    self._push(record, "FILLED", data)
                else:  # an IOC, FOK or market order: the rest is cancelled
                    self._push(exchange.remove(order_id), "FILLED", data, quantity_remaining=left)
            elif kind in ("partial", "full"):
                self._push(exchange.remove(order_id), "FILLED", data, quantity_remaining=0)
            elif kind == "cancel":
                self._push(exchange.remove(order_id), data.draw(st.sampled_from(CANCELS)), data)
            elif kind == "modify" and rests:
                record = exchange.book[order_id] = {**record, "price": record["price"] + 1, "status": "MODIFIED"}
                exchange.touch(order_id)
                self._push(record, "MODIFIED", data)
            elif kind == "modify_new" and rests:
                old = exchange.remove(order_id)
                exchange.serial += 1
                new_id = f"{data.draw(st.sampled_from('abcde'))}{exchange.serial:04d}"
                record = {**old, "order_id": new_id, "quantity": 5, "quantity_remaining": 5, "status": "MODIFIED"}
                exchange.book[new_id] = record
                exchange.touch(new_id)
                self._push(record, "MODIFIED", data)  # and nothing for the old id
            elif kind == "refusal":
                self._push(record, data.draw(st.sampled_from(REFUSALS)), data, price=1, quantity_remaining=0)
            elif kind == "refusal_unknown":
                self._push({**record, "order_id": "never-placed"}, data.draw(st.sampled_from(REFUSALS)), data)
            elif kind == "unknown":
                self._push(record, "SOMETHING_UNDOCUMENTED", data, quantity_remaining=0)
        if data.draw(st.integers(0, 2), label="deliver now") > 0:  # pushes usually prompt, sometimes late
            self.deliver(len(self.queue))

    def deliver(self, count: int) -> None:
        for _ in range(min(count, len(self.queue))):
            push = self.queue.pop(0)
            change, _reconcile = self.state.apply_push(parse_order(dict(push)))
            if self.in_read:
                self.removed_by_pushes.update(change.remove_orders)
            self.publish(change)

    # --- the table -----------------------------------------------------------------------------------

    def publish(self, change: Change) -> None:
        """As the feed's publisher does: consecutive seqs; a mirror applies each diff (Gap on any hole)."""
        assert not {row["id"] for row in change.closed} & set(change.withdraw_closed)
        assert not {row["id"] for row in change.upsert_orders} & set(change.remove_orders)
        self.shown.update(row["id"] for row in change.upsert_orders)
        if not change:
            return
        messages = lp.diff_messages(
            ACCOUNT,
            self.state.seq + 1,
            1.0,
            upsert_orders=change.upsert_orders,
            remove_orders=change.remove_orders,
            closed=change.closed,
            withdraw_closed=change.withdraw_closed,
            rows_per_message=4,
        )
        first = self.state.reserve_seqs(len(messages))
        for offset, message in enumerate(messages):
            decoded = orjson.loads(lp.encode(message))
            assert decoded["seq"] == first + offset == self.mirror.seq + 1
            self.mirror.apply_published(decoded)

    # --- rules ---------------------------------------------------------------------------------------

    @rule(data=st.data())
    def exchange_event(self, data: Any) -> None:
        self.event(data)

    @rule(count=st.integers(1, 3))
    def deliver_late_pushes(self, count: int) -> None:
        self.deliver(count)

    @rule(data=st.data())
    def duplicate_a_push(self, data: Any) -> None:
        if self.history:
            self.queue.append(dict(data.draw(st.sampled_from(self.history), label="duplicated push")))

    @rule(data=st.data(), cut=st.sampled_from([None, None, None, 1, 2, 3]))
    def read(self, data: Any, cut: int | None) -> None:
        exchange, state = self.exchange, self.state
        start_ids = dict(exchange.version)
        start_book = set(exchange.book)
        pending_at_start = bool(self.queue)
        before = set(state.orders)
        self.in_read, self.events_in_read, self.removed_by_pushes = True, 0, set()
        state.begin_fetch()
        previous = state.previous_rows()
        try:
            session = FakeSession(self, data, cut)
            snapshot = fetch_open_orders(session, page_size=self.cap, max_requests=_MAX_PAGES)  # type: ignore[arg-type]
        except (CutShort, PagingIncomplete):
            state.abandon_fetch()
            event("an incomplete read")
            self.in_read = False
            assert before - set(state.orders) <= self.removed_by_pushes, "an incomplete read removed an order"
            return
        self.in_read = False
        book = FetchedBook(
            build_order_rows(snapshot.orders, ACCOUNT, LABEL, previous[0]),
            build_twap_rows([], ACCOUNT, LABEL, previous[1]),
            snapshot.fetched_at,
            snapshot.pages,
        )
        self.publish(state.apply_fetch(book))
        event("a complete read")
        stable = {i for i in start_book & set(exchange.book) if exchange.version[i] == start_ids[i]}
        missing = stable - set(state.orders)
        assert not missing, f"open at the exchange throughout the read, missing after it: {sorted(missing)}"
        closed = {row["id"] for row in state.closed}
        assert not stable & closed, f"a Closed row for an order open at the exchange: {sorted(stable & closed)}"
        if not pending_at_start and not self.events_in_read and not self.queue:
            truth = {}
            for record in exchange.book.values():
                row = order_row(parse_order(dict(record)), ACCOUNT, LABEL)
                assert row is not None
                truth[row["id"]] = row
            event("a complete read with no pushes pending")
            assert without_placement(state.orders) == without_placement(truth)
            assert not set(truth) & closed

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def the_mirror_rebuilds_the_table_from_the_diffs(self) -> None:
        assert self.mirror.seq == self.state.seq
        assert self.mirror.orders == orjson.loads(orjson.dumps(self.state.orders, default=_decimal))
        assert [row["id"] for row in self.mirror.closed] == [row["id"] for row in self.state.closed]

    @invariant()
    def one_closed_row_per_order_and_none_for_a_confirmed_open_one(self) -> None:
        ids = [row["id"] for row in self.state.closed]
        assert len(ids) == len(set(ids))
        assert self.shown - set(self.state.orders) <= set(ids), "an order left the table without a Closed row"
        confirmed = {i for i, row in self.state.orders.items() if not row.get(UNCONFIRMED)}
        assert not confirmed & set(ids)


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


TestMergeRule = MergeMachine.TestCase
