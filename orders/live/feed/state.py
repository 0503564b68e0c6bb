"""One account's live data: rows, seq, state, the Closed list and the snapshot cache. No I/O.

Three things change it, all on the feed's event loop:

- :meth:`AccountState.apply_push` — an ``order_response`` push (:mod:`orders.live.feed.lifecycle`), applied
  at once. A ``MODIFIED`` push with an id we do not know replaces its predecessor when exactly one open
  order matches it on everything a modify keeps (QFEX gives a modified order a new id); otherwise —
  and for any push it cannot place — the caller is asked for a prompt reconcile.
- :meth:`AccountState.apply_fetch` — the result of a full paged fetch (the reconcile), **merged** with
  the pushes that arrived while it ran (:meth:`begin_fetch` starts recording them): a push wins over
  the fetched copy unless the fetched copy is newer (``update_time``), so a fetch never undoes a newer
  push. An order is removed by a fetch only when the fetch proves it gone — absent from every page and
  untouched by pushes while the pages were read. An order that moved between pages while they were
  read (QFEX may order pages by latest update) was moved by an event, and every event is pushed, so
  its push keeps it; a fetch that merely missed it removes nothing.
- :meth:`AccountState.apply_published` — a diff the account's owner published (another process's
  mirror of this account).

Each returns a :class:`Change`, which the caller publishes as diffs with consecutive seqs
(:meth:`reserve_seqs`). Row dicts are never mutated once made; the row maps are changed in place on
the loop only, and readers elsewhere get copies (:meth:`snapshot_view`).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orders.live import protocol as lp
from orders.live.rows import Row, RowSet, closed_row, diff_rows, fill_price_of, order_row
from orders.qfex import Order

from . import lifecycle

# What a modify keeps: a MODIFIED push with a new id replaces the one open order that matches on all of these.
SIGNATURE_FIELDS = ("symbol", "side", "type", "time_in_force", "quantity", "quantity_remaining", "client_order_id")
# Closed orders remembered (id → last update time) so a late or duplicated push cannot bring one back.
_CLOSED_MEMORY = 5_000

Signature = tuple[Any, ...]


def signature(row: Mapping[str, Any]) -> Signature:
    return tuple(row.get(name) for name in SIGNATURE_FIELDS)


class Gap(Exception):
    """A published diff that does not follow the mirror's seq: the mirror needs a fresh snapshot."""


@dataclass
class Change:
    """Rows to upsert and ids to remove, plus orders that closed; empty when nothing changed."""

    upsert_orders: list[Row] = field(default_factory=list)
    remove_orders: list[str] = field(default_factory=list)
    upsert_twaps: list[Row] = field(default_factory=list)
    remove_twaps: list[str] = field(default_factory=list)
    closed: list[Row] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.upsert_orders or self.remove_orders or self.upsert_twaps or self.remove_twaps or self.closed)


@dataclass(frozen=True)
class FetchedBook:
    """A full fetch turned into rows (built in the pool, reusing unchanged rows of the previous ones)."""

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
        self.closed: deque[Row] = deque(maxlen=closed_limit)  # newest first
        # id → (last update time, closed by a push) of orders that left the book recently.
        self._closed_times: OrderedDict[str, tuple[float | None, bool]] = OrderedDict()
        self._by_signature: dict[Signature, set[str]] = {}
        self._journal: dict[str, float | None] | None = None  # pushed ids (→ update time) while a fetch runs
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

    # --- pushes -----------------------------------------------------------------------------------

    def apply_push(self, order: Order) -> tuple[Change, bool]:
        """Apply one ``order_response`` push; returns the change and whether a prompt reconcile is needed."""
        order_id, status = order.order_id, order.status
        if not order_id or not status:
            return Change(), True
        effect = lifecycle.effect_of(status, order.quantity_remaining)
        if effect is lifecycle.Effect.UNPLACEABLE:
            return Change(), True
        pushed_at = _seconds(order.update_time)
        current = self.orders.get(order_id)
        if self._is_stale(order_id, current, pushed_at):
            return Change(), False  # a duplicate or late copy of something we already know is newer
        if self._journal is not None:
            self._journal[order_id] = pushed_at
        row = order_row(order, self.account_id, self.label)
        if row is None:
            return Change(), True
        change = Change()
        if effect is lifecycle.Effect.CLOSE:
            if current is not None:
                self._remove_order(order_id)
                change.remove_orders.append(order_id)
            if current is not None or status != "NO_SUCH_ORDER":  # a failed cancel of an unknown id is no order
                change.closed.append(self._close(order_id, row, status, pushed_at, order))
            return change, False
        if current is not None and row.get("placed_at") is None and current.get("placed_at") is not None:
            row = {**row, "placed_at": current["placed_at"]}
        reconcile = False
        if status == lifecycle.MODIFIED and current is None:
            predecessor = self._predecessor(row)
            if predecessor is None:
                reconcile = True  # the order it replaces is unknown or ambiguous: a reconcile removes it
            else:
                old = self.orders[predecessor]
                if old.get("placed_at") is not None:
                    row = {**row, "placed_at": old["placed_at"]}
                self._remove_order(predecessor)
                self._remember_closed(predecessor, old.get("update_time"), by_push=True)
                if self._journal is not None:
                    self._journal[predecessor] = pushed_at
                change.remove_orders.append(predecessor)
        self._put_order(order_id, row, order.raw)
        change.upsert_orders.append(row)
        return change, reconcile

    def _is_stale(self, order_id: str, current: Row | None, pushed_at: float | None) -> bool:
        if current is not None:
            known = current.get("update_time")
            return pushed_at is not None and known is not None and pushed_at < known
        if order_id in self._closed_times:
            closed_at = self._closed_times[order_id][0]
            return pushed_at is None or closed_at is None or pushed_at <= closed_at
        return False

    def _predecessor(self, row: Row) -> str | None:
        candidates = self._by_signature.get(signature(row), ())
        return next(iter(candidates)) if len(candidates) == 1 else None

    def _close(self, order_id: str, row: Row, status: str, pushed_at: float | None, order: Order) -> Row:
        quantity, remaining = order.quantity, order.quantity_remaining
        filled = quantity - remaining if quantity is not None and remaining is not None else None
        closed = closed_row(
            row,
            status=status,
            outcome=lifecycle.outcome_of(status),
            reason=lifecycle.reason_of(status, filled),
            closed_at=pushed_at,
            fill_price=fill_price_of(order),
        )
        self.closed.appendleft(closed)
        self._remember_closed(order_id, pushed_at, by_push=True)
        return closed

    def _remember_closed(self, order_id: str, update_time: float | None, *, by_push: bool) -> None:
        self._closed_times[order_id] = (update_time, by_push)
        self._closed_times.move_to_end(order_id)
        while len(self._closed_times) > _CLOSED_MEMORY:
            self._closed_times.popitem(last=False)

    # --- row maps with their signature index ------------------------------------------------------

    def _put_order(self, order_id: str, row: Row, source: Any) -> None:
        old = self.orders.get(order_id)
        if old is not None:
            self._unindex(order_id, old)
        self.orders[order_id] = row
        self.order_sources[order_id] = source
        self._by_signature.setdefault(signature(row), set()).add(order_id)

    def _remove_order(self, order_id: str) -> None:
        old = self.orders.pop(order_id, None)
        self.order_sources.pop(order_id, None)
        if old is not None:
            self._unindex(order_id, old)

    def _unindex(self, order_id: str, row: Row) -> None:
        key = signature(row)
        ids = self._by_signature.get(key)
        if ids is not None:
            ids.discard(order_id)
            if not ids:
                del self._by_signature[key]

    # --- the reconcile ----------------------------------------------------------------------------

    def begin_fetch(self) -> None:
        """A full fetch is starting: record the pushes that arrive until :meth:`apply_fetch`."""
        self._journal = {}

    def abandon_fetch(self) -> None:
        self._journal = None

    def apply_fetch(self, book: FetchedBook) -> Change:
        """Merge a full fetch with the pushes that arrived while it ran; the change to publish."""
        journal, self._journal = self._journal or {}, None
        merged, sources = dict(book.orders.rows), dict(book.orders.sources)
        for order_id, pushed_at in journal.items():
            fetched = merged.get(order_id)
            fetched_at = None if fetched is None else fetched.get("update_time")
            if fetched_at is not None and pushed_at is not None and fetched_at > pushed_at:
                continue  # that page was read after the push: the fetched copy is newer
            current = self.orders.get(order_id)
            if current is None:
                merged.pop(order_id, None)  # closed (or replaced) by a push while the pages were read
                sources.pop(order_id, None)
            else:
                merged[order_id], sources[order_id] = current, self.order_sources.get(order_id)
        for order_id, (closed_at, by_push) in self._closed_times.items():
            fetched = merged.get(order_id)
            # Only a push's word is trusted over a page: an order a fetch once missed may well be open.
            if by_push and fetched is not None and order_id not in journal:
                fetched_at = fetched.get("update_time")
                if fetched_at is None or closed_at is None or fetched_at <= closed_at:
                    del merged[order_id]  # a copy from before the push that closed it
                    sources.pop(order_id, None)
        # The signature index follows only the rows that changed: rebuilding it for a 10 000-order book
        # took ~30 ms of the event loop on every reconcile, and every push waited behind it (P9).
        change = Change()
        for order_id, row in merged.items():
            current = self.orders.get(order_id)
            if current is row:
                continue
            if current is not None and row.get("placed_at") is None and current.get("placed_at") is not None:
                row = merged[order_id] = {**row, "placed_at": current["placed_at"]}
            if current is not None:
                self._unindex(order_id, current)
            self._by_signature.setdefault(signature(row), set()).add(order_id)
            if current != row:
                change.upsert_orders.append(row)
        for order_id, row in self.orders.items():
            if order_id in merged:
                continue
            self._unindex(order_id, row)
            if order_id not in journal:
                # Absent from every page and untouched by pushes while they were read: proven gone.
                change.remove_orders.append(order_id)
                change.closed.append(self._fetch_closed(order_id, row, book.fetched_at))
        change.upsert_twaps, change.remove_twaps = diff_rows(self.twaps, book.twaps.rows)
        self.orders, self.order_sources = merged, sources
        self.twaps, self.twap_sources = book.twaps.rows, book.twaps.sources
        self.data_as_of = book.fetched_at
        return change

    def _fetch_closed(self, order_id: str, row: Row, seen_at: float) -> Row:
        closed = closed_row(
            row,
            status=row.get("status"),
            outcome=lifecycle.OUTCOME_CLOSED,
            reason=lifecycle.reason_of(None, None),
            closed_at=seen_at,
        )
        self.closed.appendleft(closed)
        self._remember_closed(order_id, row.get("update_time"), by_push=False)
        return closed

    def previous_rows(self) -> tuple[RowSet, RowSet]:
        """The rows a fetch may reuse for records that did not change (read, never iterated, by the pool)."""
        return RowSet(self.orders, self.order_sources), RowSet(self.twaps, self.twap_sources)

    # --- a mirror of another process's feed -------------------------------------------------------

    def apply_published(self, message: Mapping[str, Any]) -> None:
        """Apply a diff the owner published (``Gap`` when it does not follow our seq; older ones are ignored)."""
        seq = message["seq"]
        if seq <= self.seq:
            return
        if seq != self.seq + 1:
            raise Gap
        for row in message["upsert"]["orders"]:
            self._put_order(row["id"], row, None)
        for order_id in message["remove"]["orders"]:
            self._remove_order(order_id)
        for row in message["upsert"]["twaps"]:
            self.twaps[row["id"]] = row
        for twap_id in message["remove"]["twaps"]:
            self.twaps.pop(twap_id, None)
        for row in message.get("closed") or ():
            self.closed.appendleft(row)  # a diff lists them in the order they closed
        self.seq = seq
        self.data_as_of = message.get("as_of", self.data_as_of)

    def load(self, snapshot: SnapshotView, stamp: float) -> None:
        """Replace everything with the owner's snapshot (a mirror filling itself)."""
        self.seq, self.data_as_of = snapshot.seq, snapshot.as_of
        self.set_status(snapshot.status, stamp)
        orders, twaps, closed = snapshot.orders, snapshot.twaps, snapshot.closed
        self.orders = {row["id"]: row for row in orders}
        self.order_sources = dict.fromkeys(self.orders)
        self._by_signature = _index(self.orders)
        self.twaps = {row["id"]: row for row in twaps}
        self.twap_sources = dict.fromkeys(self.twaps)
        self.closed = deque(closed, maxlen=self.closed.maxlen)

    # --- snapshots ----------------------------------------------------------------------------------

    def snapshot_view(self) -> SnapshotView:
        return SnapshotView(
            self.seq,
            self.data_as_of,
            self.status,
            list(self.orders.values()),
            list(self.twaps.values()),
            list(self.closed),
        )

    def cached_snapshot(self) -> list[str] | None:
        cached = self._snapshot_cache
        return cached[1] if cached is not None and cached[0] == self.status_key else None

    def cache_snapshot(self, key: tuple[int, float], texts: list[str]) -> None:
        if key == self.status_key:
            self._snapshot_cache = (key, texts)


def _index(orders: Mapping[str, Row]) -> dict[Signature, set[str]]:
    index: dict[Signature, set[str]] = {}
    for order_id, row in orders.items():
        index.setdefault(signature(row), set()).add(order_id)
    return index


def _seconds(value: Any) -> float | None:
    return None if value is None else float(value)
