"""One account's live data: rows, seq, state, the Closed rows and the snapshot cache. No I/O.

Pushes and reads are merged by the one rule in docs/qfex-protocol.md §4.4 ("The merge rule"); this
module is that rule, and nothing else decides what the table shows. Three things change the data, all
on the feed's event loop:

- :meth:`AccountState.apply_push` — an ``order_response`` push, applied at once by its class
  (:mod:`orders.live.feed.lifecycle`): a live push upserts the one order it names, a terminal push closes
  it (its one Closed row, never an open row), a refusal changes nothing.
- :meth:`AccountState.begin_fetch` / :meth:`AccountState.apply_fetch` — a complete read (every page of one
  pass, see :mod:`orders.qfex.paging`), the book as of when its first page was requested. Reads are
  numbered (``generation``) and every push is stamped with the generation in force when it arrived, so
  "pushed since the read began" and "closed before the read began" are questions about arrival, never
  about QFEX's ``update_time`` (which pushes may lack). An incomplete read is abandoned
  (:meth:`AccountState.abandon_fetch`): it removes nothing.
- :meth:`AccountState.apply_published` — a diff the account's owner published (another process's
  mirror of this account).

Each returns a :class:`Change`, which the caller publishes as diffs with consecutive seqs
(:meth:`reserve_seqs`). Row dicts are never mutated once made; the row maps are changed in place on
the loop only, and readers elsewhere get copies (:meth:`snapshot_view`). A push costs a few dict
operations whatever the book's size (P9); only a read walks the book.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from orders.live import protocol as lp
from orders.live.rows import Row, RowSet, closed_row, diff_rows, fill_price_of, order_row
from orders.qfex import Order

from . import lifecycle

# Orders that ended (closed by a push, or proved gone by a read) remembered per account: a late live push
# for one cannot bring it back as an ordinary open order. Beyond this the oldest are forgotten.
_ENDED_MEMORY = 5_000
UNCONFIRMED = "unconfirmed"  # the ORDER_ROW field of an order re-opened by a push after a read proved it gone

# Kinds of correction: a complete read re-listed an order a push had closed, or removed one a push had kept.
RELISTED = "relisted"
REMOVED = "removed"


class Gap(Exception):
    """A published diff that does not follow the mirror's seq: the mirror needs a fresh snapshot."""


@dataclass(frozen=True)
class Correction:
    """A complete read disagreed with what a push had said about one order (counted in /metrics)."""

    kind: str  # RELISTED or REMOVED
    order_id: str


@dataclass
class Change:
    """Rows to upsert and ids to remove, orders that closed and Closed rows withdrawn; empty when nothing
    changed. ``corrections`` and ``unknown_status`` are for the feed's metrics and logs, not published."""

    upsert_orders: list[Row] = field(default_factory=list)
    remove_orders: list[str] = field(default_factory=list)
    upsert_twaps: list[Row] = field(default_factory=list)
    remove_twaps: list[str] = field(default_factory=list)
    closed: list[Row] = field(default_factory=list)
    withdraw_closed: list[str] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    unknown_status: str | None = None

    def __bool__(self) -> bool:
        return bool(
            self.upsert_orders
            or self.remove_orders
            or self.upsert_twaps
            or self.remove_twaps
            or self.closed
            or self.withdraw_closed
        )

    @property
    def rows(self) -> int:
        """How many rows and ids the change carries (what publishing it costs)."""
        lists = (self.upsert_orders, self.remove_orders, self.upsert_twaps, self.remove_twaps, self.closed)
        return sum(len(items) for items in lists) + len(self.withdraw_closed)


@dataclass(frozen=True)
class FetchedBook:
    """A complete read turned into rows (built in the pool, reusing unchanged rows of the previous ones)."""

    orders: RowSet
    twaps: RowSet
    fetched_at: float
    pages: int


@dataclass(frozen=True)
class SnapshotView:
    """A consistent copy of the account's data at one seq, safe to encode on another thread."""

    seq: int
    as_of: float | None
    status: lp.Status
    orders: list[Row]
    twaps: list[Row]
    closed: list[Row]


@dataclass(frozen=True, slots=True)
class _Ended:
    generation: int  # a push's: the generation in force when it arrived; a read's: its own
    by_push: bool  # closed by a terminal push (final against later live pushes), else proved gone by a read


class AccountState:
    def __init__(self, account_id: int, label: str = "", *, seq: int = 0, closed_limit: int = 500) -> None:
        self.account_id = account_id
        self.label = label
        self.seq = seq
        self.data_as_of: float | None = None
        self.status = lp.Status(lp.CONNECTING, "Connecting to QFEX…")
        # When the status was set (the owner's clock, adopted by mirrors): with the seq it orders statuses,
        # so a status published before a snapshot is never shown over that snapshot's newer one.
        self.status_stamp = 0.0
        self.orders: dict[str, Row] = {}
        self.order_sources: dict[str, Any] = {}  # id → the raw record its row came from (for row reuse)
        self.twaps: dict[str, Row] = {}
        self.twap_sources: dict[str, Any] = {}
        self.closed_limit = closed_limit
        self._closed: OrderedDict[str, Row] = OrderedDict()  # one Closed row per order id, oldest first
        self.generation = 0  # reads begun; a push is stamped with the generation in force when it arrived
        self._reading: int | None = None  # the generation of the read in flight
        self._pushed: dict[str, int] = {}  # open orders whose row is a live push's, not yet a read's → stamp
        self._ended: OrderedDict[str, _Ended] = OrderedDict()
        self._snapshot_cache: tuple[tuple[int, float], list[str]] | None = None

    # --- seq and status ---------------------------------------------------------------------------

    def reserve_seqs(self, count: int) -> int:
        """Take ``count`` consecutive seqs for diffs about to be published; returns the first."""
        first = self.seq + 1
        self.seq += count
        return first

    def set_status(self, status: lp.Status, stamp: float | None = None) -> None:
        """A new status; ``stamp`` is the owner's when mirroring, else now (never going backwards)."""
        self.status = status
        self.status_stamp = stamp if stamp is not None else max(time.time(), self.status_stamp + 1e-6)

    @property
    def status_key(self) -> tuple[int, float]:
        """Orders statuses: a status with a smaller key is older than one with a larger key."""
        return (self.seq, self.status_stamp)

    @property
    def closed(self) -> list[Row]:
        """The Closed rows, newest first, one per order id."""
        return list(reversed(self._closed.values()))

    # --- pushes -----------------------------------------------------------------------------------

    def apply_push(self, order: Order) -> tuple[Change, bool]:
        """Apply one ``order_response`` push; returns the change and whether a prompt reconcile is needed."""
        order_id, status = order.order_id, order.status
        if not order_id or not status:
            return Change(), True  # something happened that the push does not say: let a read tell
        current = self.orders.get(order_id)
        known = current or {}
        verdict = lifecycle.classify(
            status,
            order.quantity_remaining,
            order.time_in_force or known.get("time_in_force"),
            order.type or known.get("type"),
        )
        if verdict.effect is lifecycle.Effect.REFUSAL:
            # Nothing changes; a refusal naming an order we show may mean it looks different now.
            reconcile = verdict.reconcile or current is not None
            return Change(unknown_status=None if verdict.known_status else status), reconcile
        row = order_row(order, self.account_id, self.label)
        if row is None:
            return Change(), True
        if verdict.effect is lifecycle.Effect.TERMINAL:
            return self._close_by_push(order_id, row, current, verdict, order), verdict.reconcile
        ended = self._ended.get(order_id)
        if ended is not None and ended.by_push:
            return Change(), False  # a close is final against later live pushes; the next read decides
        if current is not None and row.get("placed_at") is None and current.get("placed_at") is not None:
            row = {**row, "placed_at": current["placed_at"]}
        source: Any = order.raw
        reconcile = verdict.reconcile or current is None  # a new id: a read tells what else changed
        if ended is not None:
            # A complete read proved it gone, and now a push says it is live: show it, marked, and ask.
            row, source, reconcile = {**row, UNCONFIRMED: True}, None, True
        self.orders[order_id] = row
        self.order_sources[order_id] = source
        self._pushed[order_id] = self.generation
        return Change(upsert_orders=[row]), reconcile

    def _close_by_push(
        self, order_id: str, row: Row, current: Row | None, verdict: lifecycle.Verdict, order: Order
    ) -> Change:
        change = Change()
        if current is not None:
            self._drop_order(order_id)
            change.remove_orders.append(order_id)
            row = {**current, **{name: value for name, value in row.items() if value is not None}}
        quantity, remaining = order.quantity, order.quantity_remaining
        filled: Decimal | None = quantity - remaining if quantity is not None and remaining is not None else None
        closed = closed_row(
            row,
            status=order.status,
            outcome=verdict.outcome,
            reason=lifecycle.closed_reason(verdict, filled),
            closed_at=_seconds(order.update_time) or time.time(),
            fill_price=fill_price_of(order),
        )
        change.closed.append(self._file_closed(order_id, closed))
        self._end(order_id, self.generation, by_push=True)
        return change

    # --- the read ---------------------------------------------------------------------------------

    def begin_fetch(self) -> None:
        """A read is starting (its first page is about to be requested): it is the next generation."""
        self.generation += 1
        self._reading = self.generation

    def abandon_fetch(self) -> None:
        """The read in flight failed or was interrupted: an incomplete read changes nothing."""
        self._reading = None

    def apply_fetch(self, book: FetchedBook) -> Change:
        """Merge a complete read with what the pushes said (docs/qfex-protocol.md §4.4); the change to publish."""
        generation, self._reading = self._reading, None
        if generation is None:  # applied without begin_fetch: as if it began now
            self.begin_fetch()
            generation, self._reading = self.generation, None
        change = Change()
        merged, sources = dict(book.orders.rows), dict(book.orders.sources)
        self._merge_ended(merged, sources, generation, change)
        self._merge_pushed(merged, sources, generation, change)
        for order_id, row in merged.items():
            current = self.orders.get(order_id)
            if current is row:
                continue
            if current is not None and row.get("placed_at") is None and current.get("placed_at") is not None:
                row = merged[order_id] = {**row, "placed_at": current["placed_at"]}
            if current != row:
                change.upsert_orders.append(row)
        for order_id, row in self.orders.items():
            if order_id in merged:
                continue
            # Absent from a complete read and not pushed live since it began: gone.
            change.remove_orders.append(order_id)
            if order_id not in self._closed:
                gone = closed_row(
                    row,
                    status=row.get("status"),
                    outcome=lifecycle.OUTCOME_CLOSED,
                    reason=lifecycle.GONE_REASON,
                    closed_at=book.fetched_at,
                )
                change.closed.append(self._file_closed(order_id, gone))
            self._end(order_id, generation, by_push=False)
        change.upsert_twaps, change.remove_twaps = diff_rows(self.twaps, book.twaps.rows)
        self.orders, self.order_sources = merged, sources
        self.twaps, self.twap_sources = book.twaps.rows, book.twaps.sources
        self.data_as_of = book.fetched_at
        return change

    def _merge_ended(self, merged: dict[str, Row], sources: dict[str, Any], generation: int, change: Change) -> None:
        """Listed orders that ended: a close that arrived after the read began stands (the read's copy is
        older); anything older gives way — the order is open again and its Closed row is withdrawn."""
        for order_id in [order_id for order_id in self._ended if order_id in merged]:
            ended = self._ended[order_id]
            if ended.by_push and ended.generation >= generation:
                del merged[order_id]
                sources.pop(order_id, None)
                continue
            del self._ended[order_id]
            if ended.by_push:
                change.corrections.append(Correction(RELISTED, order_id))
        for order_id in [order_id for order_id in self._closed if order_id in merged]:
            del self._closed[order_id]
            change.withdraw_closed.append(order_id)

    def _merge_pushed(self, merged: dict[str, Row], sources: dict[str, Any], generation: int, change: Change) -> None:
        """Orders pushed live since the read began keep their pushed state; an older pushed state gives way
        to the read's copy, and one the read does not list is gone (a correction)."""
        for order_id, stamp in list(self._pushed.items()):
            if stamp >= generation:
                row = self.orders[order_id]
                if order_id in merged and row.get(UNCONFIRMED):
                    row = {name: value for name, value in row.items() if name != UNCONFIRMED}  # the read confirms it
                merged[order_id], sources[order_id] = row, self.order_sources.get(order_id)
                continue
            del self._pushed[order_id]
            if order_id not in merged:
                change.corrections.append(Correction(REMOVED, order_id))

    def previous_rows(self) -> tuple[RowSet, RowSet]:
        """The rows a fetch may reuse for records that did not change (read, never iterated, by the pool)."""
        return RowSet(self.orders, self.order_sources), RowSet(self.twaps, self.twap_sources)

    # --- bookkeeping ------------------------------------------------------------------------------

    def _drop_order(self, order_id: str) -> None:
        self.orders.pop(order_id, None)
        self.order_sources.pop(order_id, None)
        self._pushed.pop(order_id, None)

    def _file_closed(self, order_id: str, row: Row) -> Row:
        """Add or replace the order's one Closed row (the newest); the oldest beyond the limit go."""
        self._closed.pop(order_id, None)
        self._closed[order_id] = row
        while len(self._closed) > self.closed_limit:
            self._closed.popitem(last=False)
        return row

    def _end(self, order_id: str, generation: int, *, by_push: bool) -> None:
        self._ended[order_id] = _Ended(generation, by_push)
        self._ended.move_to_end(order_id)
        while len(self._ended) > _ENDED_MEMORY:
            self._ended.popitem(last=False)

    # --- a mirror of another process's feed -------------------------------------------------------

    def apply_published(self, message: Mapping[str, Any]) -> None:
        """Apply a diff the owner published (``Gap`` when it does not follow our seq; older ones are ignored)."""
        seq = message["seq"]
        if seq <= self.seq:
            return
        if seq != self.seq + 1:
            raise Gap
        for row in message["upsert"]["orders"]:
            self.orders[row["id"]] = row
            self.order_sources[row["id"]] = None
        for order_id in message["remove"]["orders"]:
            self._drop_order(order_id)
        for row in message["upsert"]["twaps"]:
            self.twaps[row["id"]] = row
        for twap_id in message["remove"]["twaps"]:
            self.twaps.pop(twap_id, None)
        for row in message.get("closed") or ():
            self._file_closed(row["id"], row)  # a diff lists them in the order they closed
        for order_id in message["remove"].get("closed") or ():
            self._closed.pop(order_id, None)
        self.seq = seq
        self.data_as_of = message.get("as_of", self.data_as_of)

    def load(self, snapshot: SnapshotView, stamp: float) -> None:
        """Replace everything with the owner's snapshot (a mirror filling itself)."""
        self.seq, self.data_as_of = snapshot.seq, snapshot.as_of
        self.set_status(snapshot.status, stamp)
        self.orders = {row["id"]: row for row in snapshot.orders}
        self.order_sources = dict.fromkeys(self.orders)
        self._pushed = {}  # the owner's pushes are in its rows; what this process knew before is not
        self.twaps = {row["id"]: row for row in snapshot.twaps}
        self.twap_sources = dict.fromkeys(self.twaps)
        self._closed = OrderedDict()
        for row in reversed(snapshot.closed):  # newest first in a snapshot
            self._file_closed(row["id"], row)

    # --- snapshots ----------------------------------------------------------------------------------

    def snapshot_view(self) -> SnapshotView:
        return SnapshotView(
            self.seq,
            self.data_as_of,
            self.status,
            list(self.orders.values()),
            list(self.twaps.values()),
            self.closed,
        )

    def cached_snapshot(self) -> list[str] | None:
        cached = self._snapshot_cache
        return cached[1] if cached is not None and cached[0] == self.status_key else None

    def cache_snapshot(self, key: tuple[int, float], texts: list[str]) -> None:
        if key == self.status_key:
            self._snapshot_cache = (key, texts)


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)
