"""P9 and P10: an order event at the exchange → the browser socket receives the diff that carries it.

The world is the other live figures' (:func:`bench.live.world.live_site`): the simulator in this
process, qfexdash in a Daphne subprocess with the project's default settings, browser sockets in this
process sending the session cookie and the page's Origin. Only that public stack is measured — the simulator, Daphne and
the live protocol — never the feed's internals, so these figures keep working whatever the feed becomes.

The simulator runs its own background activity (``pace``: new orders, partial and full fills,
modifies, cancels, TWAP slices) and notes the moment each ``order_response`` push is produced
(:meth:`orders.simulator.Simulator.order_events`). A socket notes the moment each diff arrives and what
it carried. Both are ``time.monotonic_ns()`` of this process. An event is **carried** by the first diff
after it that shows the order in that state: an upsert of the order's id with the event's status and
``quantity_remaining``, or — for an order that ended (filled to 0, cancelled, rejected…) — its id among
the removed (or closed) rows. Then:

- **exact**: a diff carried the event itself;
- **superseded**: no diff showed this state, but a later event of the same order was carried (the page
  went straight to a newer state, e.g. two quick partial fills read by one fetch); its latency is until
  that diff;
- **never shown**: neither — typically an order opened and closed between two reads of the book, which
  a page never needed to show.

Latency figures are over exact + superseded events. Events are counted from a window that starts after
a warm-up; after the window the pace stops and the page must show exactly the exchange's book.

P9: one account, 4 events/s, 20 ms per ``get_user_orders`` page, a 100-order and a 10 000-order book
(one site each), and during the 10 000-order window the ``get_user_orders`` requests QFEX received
(P8 again: weight per minute as a share of QFEX's 12 000 / 60 s). P10: 50 accounts on one process, one
socket each, about 1 order event/s per account (the pace applies to the whole market, spread at random
over the books: pace = 50 / ``ORDER_EVENT_SHARE``); then, in the same run and with the same market
activity, the same measured with only one of those accounts watched.
"""

from __future__ import annotations

import asyncio
import bisect
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from bench.harness.proc import require_open_files
from bench.live.viewers import Viewer, close_viewers, until
from bench.live.world import PAGE_WEIGHT, QFEX_WEIGHT_PER_SECOND, Site, live_site, sim_account
from bench.stats import p95, summary_ms, verdict
from orders.simulator import OrderEvent
from orders.simulator.market import ORDER_EVENT_SHARE

P9_PACE = 4.0  # activity events per second (about 3.4 of them change an order)
PAGE_LATENCY = 0.020  # seconds before each get_user_orders reply
P9_SIZES = (100, 10_000)
P10_ACCOUNTS = 50
P10_RATE = 1.0  # order events per second per account
P10_ORDERS = 100
WARM_UP = 3.0  # seconds of activity before the window opens
EVENT_LOG = 1_000_000
# Statuses after which an order is no longer open (anything else is: ACK, MODIFIED, FILLED with some left).
OPEN_STATUSES = frozenset({"ACK", "MODIFIED"})


# --- what a socket received -----------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One appearance of an order in a diff: when it arrived and what it said."""

    t_ns: int
    ended: bool  # removed (or listed as closed)
    status: str | None = None
    remaining: Decimal | None = None


class EventViewer(Viewer):
    """A page's socket (:class:`~bench.live.viewers.Viewer`) that also keeps, per order id, every diff
    that showed it."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.shown: dict[str, list[Shown]] = defaultdict(list)
        self.diffs = 0

    def _apply(self, raw: bytes, t_ns: int) -> None:
        if b'"type":"diff"' in raw[:24]:
            self.diffs += 1
            message = orjson.loads(raw)
            for row in message["upsert"]["orders"]:
                self.shown[row["id"]].append(
                    Shown(t_ns, False, row.get("status"), _decimal(row.get("quantity_remaining")))
                )
            for order_id in message["remove"]["orders"]:
                self.shown[order_id].append(Shown(t_ns, True))
            for row in message.get("closed") or ():
                if isinstance(row, dict) and "id" in row:
                    self.shown[row["id"]].append(Shown(t_ns, True, row.get("status")))
        super()._apply(raw, t_ns)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


# --- matching events to diffs ---------------------------------------------------------------------


def ended(event: OrderEvent) -> bool:
    """Whether the event closed the order (it leaves the open book)."""
    if event.status in OPEN_STATUSES:
        return False
    if event.status == "FILLED":
        remaining = _decimal(event.quantity_remaining)
        return remaining is not None and remaining <= 0
    return True


def _carries(shown: Shown, event: OrderEvent) -> bool:
    if ended(event):
        return shown.ended
    return not shown.ended and shown.status == event.status and shown.remaining == _decimal(event.quantity_remaining)


@dataclass
class Matched:
    """Events of one run sorted into exact / superseded / never shown, with latencies in seconds."""

    exact: list[float] = field(default_factory=list)
    superseded: list[float] = field(default_factory=list)
    never_shown: int = 0

    @property
    def latencies(self) -> list[float]:
        return self.exact + self.superseded

    @property
    def events(self) -> int:
        return len(self.exact) + len(self.superseded) + self.never_shown


def match(events: Sequence[OrderEvent], shown: dict[str, list[Shown]]) -> Matched:
    """Sort ``events`` (of the accounts one socket watched) by how a diff carried them (module docstring)."""
    result = Matched()
    carried_at: dict[int, int | None] = {}  # event serial → arrival of the diff that carried it
    for event in events:
        appearances = shown.get(event.order_id, [])
        start = bisect.bisect_left([s.t_ns for s in appearances], event.t_ns)
        carried_at[event.serial] = next((s.t_ns for s in appearances[start:] if _carries(s, event)), None)
    # A later event of the same order that was carried also shows this one's effect (superseded).
    later: dict[str, int | None] = {}
    for event in sorted(events, key=lambda e: e.serial, reverse=True):
        arrival = carried_at[event.serial]
        if arrival is not None:
            result.exact.append((arrival - event.t_ns) / 1e9)
            later[event.order_id] = arrival
        elif later.get(event.order_id) is not None:
            result.superseded.append((later[event.order_id] - event.t_ns) / 1e9)  # type: ignore[operator]
        else:
            result.never_shown += 1
    return result


# --- one measuring run ----------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    accounts: int
    seconds: float
    matched: Matched
    events_per_account: list[int]  # order events in the window, per watched account
    requests: int  # get_user_orders QFEX received during the window (every account of the simulator)
    diffs: int
    gaps: int
    converged: bool  # after the window, every page showed exactly the exchange's book

    @property
    def event_rate(self) -> float:
        """Order events per second per watched account."""
        return sum(self.events_per_account) / len(self.events_per_account) / self.seconds


def _open_ids(site: Site, key: str) -> set[str]:
    return {order["order_id"] for order in site.sim.open_orders(key)}


def _shows_truth(site: Site, key: str) -> Any:
    ids = _open_ids(site, key)
    return lambda viewer: viewer.state == "live" and set(viewer.orders) == ids


async def measure(site: Site, keys: Sequence[str], *, name: str, pace: float, events: int, max_seconds: float) -> Run:
    """Watch ``keys`` (one socket each) while the market runs at ``pace``; stop once the watched accounts
    had ``events`` order events in the window (averaged per account) or after ``max_seconds``."""
    sim = site.sim
    sim.pace = 0
    viewers: list[EventViewer] = []
    try:
        for key in keys:
            viewers.append(await EventViewer.open(site, key))  # type: ignore[arg-type]
        for viewer, key in zip(viewers, keys, strict=True):
            await until([viewer], _shows_truth(site, key), f"the page showing {key}'s book")
        sim.pace = pace
        await asyncio.sleep(WARM_UP)
        start = time.monotonic_ns()
        requests = sim.request_count("get_user_orders")
        deadline = start + int(max_seconds * 1e9)
        books = {account.user_id for account in sim.accounts if account.public_key in keys}
        while time.monotonic_ns() < deadline:
            await asyncio.sleep(1.0)
            if sum(1 for e in sim.order_events(start) if e.book_id in books) >= events * len(keys):
                break
        end = time.monotonic_ns()
        requests = sim.request_count("get_user_orders") - requests
        sim.pace = 0
        converged = True
        for viewer, key in zip(viewers, keys, strict=True):
            try:
                await until([viewer], _shows_truth(site, key), f"the page showing {key}'s final book")
            except RuntimeError:
                converged = False
        matched = Matched()
        counts = []
        for viewer, key in zip(viewers, keys, strict=True):
            window = [e for e in sim.order_events(start, key) if e.t_ns < end]
            counts.append(len(window))
            one = match(window, viewer.shown)
            matched.exact += one.exact
            matched.superseded += one.superseded
            matched.never_shown += one.never_shown
    finally:
        sim.pace = 0
        await close_viewers(viewers)
    return Run(
        name,
        len(keys),
        (end - start) / 1e9,
        matched,
        counts,
        requests,
        sum(v.diffs for v in viewers),
        sum(v.gaps for v in viewers),
        converged,
    )


def _line(run: Run, goal: float | None) -> str:
    lat = run.matched.latencies
    m = run.matched
    judged = "" if goal is None else f" — goal p95 ≤ {goal * 1000:g} ms → {verdict(bool(lat) and p95(lat) <= goal)}"
    if not lat:
        return f"   {run.name}: no event reached a page ({m.events} events){judged}"
    return (
        f"   {run.name}: {summary_ms(lat)}{judged};"
        f" {m.events} events: {len(m.exact)} exact, {len(m.superseded)} superseded, {m.never_shown} never shown"
    )


def _context(run: Run) -> str:
    events = sum(run.events_per_account)
    spread = (
        f", per account min {min(run.events_per_account)} max {max(run.events_per_account)}" if run.accounts > 1 else ""
    )
    return (
        f"      {run.seconds:.0f} s window, {run.event_rate:.2f} order events/s per account{spread};"
        f" {run.requests} get_user_orders ({run.requests / max(events, 1):.2f} per event), {run.diffs} diffs,"
        f" {run.gaps} seq gaps; page equal to the exchange's book afterwards: {'yes' if run.converged else 'NO'}"
    )


# --- P9 -------------------------------------------------------------------------------------------


def p9(
    samples: int,
    sizes: Sequence[int] = P9_SIZES,
    pace: float = P9_PACE,
    page_latency: float = PAGE_LATENCY,
) -> list[str]:
    """Exchange event → diff on the page, one account, for each book size; P8 again on the largest."""
    runs = []
    for size in sizes:
        account = sim_account(f"p9_{size}", size)
        with live_site([account], page_latency=page_latency, event_log_size=EVENT_LOG) as site:
            max_seconds = 3 * samples / (pace * ORDER_EVENT_SHARE) + 30
            runs.append(
                asyncio.run(
                    measure(
                        site,
                        [account.public_key],
                        name=f"{size:>6,} orders".replace(",", " "),
                        pace=pace,
                        events=samples,
                        max_seconds=max_seconds,
                    )
                )
            )
    small, large = runs[0], runs[-1]
    lines = [
        f"P9 exchange order event → the page's socket has the diff carrying it (simulator {pace:g} events/s,"
        f" {page_latency * 1000:g} ms per page, 1 account, 1 socket, real Daphne, project defaults)"
    ]
    for run in runs:
        lines += [_line(run, 0.150), _context(run)]
    if small.matched.latencies and large.matched.latencies:
        factor = p95(large.matched.latencies) / p95(small.matched.latencies)
        lines.append(
            f"   {large.name.strip()} / {small.name.strip()} p95: {factor:.2f}×"
            f" — goal ≤ 1.3× → {verdict(factor <= 1.3)}"
        )
    weight = large.requests * PAGE_WEIGHT
    share = weight / (large.seconds * QFEX_WEIGHT_PER_SECOND)
    lines.append(
        f"P8 during the {large.name.strip()} run: {large.requests} get_user_orders in {large.seconds:.0f} s ="
        f" {weight / large.seconds * 60:.0f} weight/min, {share:.1%} of QFEX's 12 000 / 60 s —"
        f" goal ≤ 5 % → {verdict(share <= 0.05)}"
    )
    return lines


# --- P10 ------------------------------------------------------------------------------------------


def p10(samples: int, accounts: int = P10_ACCOUNTS, rate: float = P10_RATE, orders: int = P10_ORDERS) -> list[str]:
    """Exchange event → diff with ``accounts`` accounts watched on one process, vs one of them alone."""
    sims = [sim_account(f"p10_{n:02d}", orders, twaps=1) for n in range(accounts)]
    keys = [a.public_key for a in sims]
    pace = accounts * rate / ORDER_EVENT_SHARE
    max_seconds = 3 * samples / rate + 30
    require_open_files(4 * accounts + 256)
    with live_site(sims, page_latency=PAGE_LATENCY, event_log_size=EVENT_LOG) as site:
        # One account first, while no other account's feed runs; the market's activity is the same in both.
        one = asyncio.run(
            measure(site, keys[:1], name="1 account watched", pace=pace, events=samples, max_seconds=max_seconds)
        )
        many = asyncio.run(
            measure(
                site,
                keys,
                name=f"{accounts} accounts watched",
                pace=pace,
                events=samples,
                max_seconds=max_seconds,
            )
        )
    lines = [
        f"P10 exchange order event → diff with {accounts} accounts ({orders} orders each) watched on one Daphne,"
        f" one socket each, about {rate:g} order event/s per account (simulator pace {pace:.1f}/s over"
        f" {accounts} books, {PAGE_LATENCY * 1000:g} ms per page); then one account alone, same activity",
        _line(many, 0.250),
        _context(many),
        _line(one, None),
        _context(one),
    ]
    if one.matched.latencies and many.matched.latencies:
        factor = p95(many.matched.latencies) / p95(one.matched.latencies)
        medians = statistics.median(many.matched.latencies) / statistics.median(one.matched.latencies)
        lines.append(
            f"   {accounts} accounts / 1 account p95: {factor:.2f}× (medians {medians:.2f}×) — goal ≤ 1.5× →"
            f" {verdict(factor <= 1.5)}"
        )
    return lines
