"""P2, P3, P4, P5 and P8: the live path end to end — simulator → feed in a real Daphne → browser sockets.

Each figure builds its own world (:func:`live_site`):

- the simulator runs in this process (:class:`TimedSimulator`), noting the moment each
  ``get_user_orders`` answer has been handed to its socket;
- a fresh SQLite database is prepared in a subprocess (``migrate``, then a user, a session and one
  qfexdash account per simulated key, pointing at the simulator);
- Daphne serves qfexdash from a subprocess (:class:`bench.harness.daphne.Daphne`) with the project's
  default settings (in-memory channel layer, reconcile 5 s, coalescing 0.5 s, 10 % rate budget), on a
  socket this process owns;
- "browsers" are asyncio ``websockets`` clients in this process, sending the session cookie and the
  page's Origin, keeping a page's view of the rows (snapshot parts, diffs in seq order, status).

Both ends of every latency are read with ``time.monotonic_ns()`` in this process (the simulator's
thread and the clients' loop), so no clock is compared across processes. Times start when the
simulator has handed the *last* page of a fetch to its socket: this slightly overstates the figure,
since it also counts the feed reading that (short, last) page. Everything is on 127.0.0.1, with
bounded counts and a deadline on every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.harness.daphne import Daphne
from bench.harness.env import server_env
from bench.harness.proc import require_open_files
from bench.harness.site import Account, Person, SiteSpec, prepare
from bench.stats import goal_p95_ms, summary_ms, verdict
from orders.simulator import SimAccount, Simulator

PATIENCE = 30.0  # seconds any single wait may take before the benchmark gives up
# Changes are spaced by more than the feed's coalescing window (0.5 s by default), so each change
# gets its own fetch and no measured update waits for the window.
SPACING = 0.6
# QFEX's budget: 12 000 weight per 60 s per user; get_user_orders weighs 5 per page, subscribe 0.1.
QFEX_WEIGHT_PER_SECOND = 12_000 / 60
PAGE_WEIGHT = 5.0
SUBSCRIBE_WEIGHT = 0.1
VIEWER = "bench"


def _sim_account(name: str, orders: int, twaps: int = 3) -> SimAccount:
    # Simulator-only keys: they open nothing on the real QFEX.
    return SimAccount(
        public_key=f"qfex_pub_bench_{name}", secret=f"qfex_secret_bench_{name}_sim_only", orders=orders, twaps=twaps
    )


# --- the simulator, timestamping its answers ------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One get_user_orders answer the simulator sent: when (monotonic ns), to which key, refused or not."""

    t_ns: int
    key: str | None
    refused: bool


class TimedSimulator(Simulator):
    """The simulator, noting when each ``get_user_orders`` answer (a page, or a ``RateLimited``
    refusal) has been handed to the connection's socket (``await send`` returned)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answers: list[Answer] = []
        self._answers_lock = threading.Lock()

    async def _handle(self, ws: Any) -> None:
        # Our client puts the public key in the URL (?api_key=), as QFEX asks.
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request is not None else {}
        key = (query.get("api_key") or [None])[0]
        send = ws.send

        async def timed_send(message: Any, text: bool | None = None) -> None:
            await send(message, text=text)
            if isinstance(message, bytes):
                if message.startswith(b'{"all_orders_response"'):
                    self._note_answer(key, refused=False)
                elif b'"RateLimited"' in message and b"get_user_orders" in message:
                    self._note_answer(key, refused=True)

        ws.send = timed_send
        await super()._handle(ws)

    def _note_answer(self, key: str | None, *, refused: bool) -> None:
        with self._answers_lock:
            self._answers.append(Answer(time.monotonic_ns(), key, refused))

    def answers(self, key: str, start_ns: int = 0, end_ns: int | None = None) -> list[Answer]:
        end = end_ns if end_ns is not None else time.monotonic_ns()
        with self._answers_lock:
            return [a for a in self._answers if a.key == key and start_ns <= a.t_ns <= end]

    def last_reply_before(self, key: str, t_ns: int) -> int:
        """When the last page sent to ``key`` before ``t_ns`` left the simulator."""
        replies = [a.t_ns for a in self.answers(key, 0, t_ns) if not a.refused]
        if not replies:
            raise RuntimeError(f"no get_user_orders reply to {key} before the update arrived")
        return replies[-1]


# --- qfexdash served by Daphne --------------------------------------------------------------------


@dataclass
class Site:
    """A running qfexdash (Daphne subprocess) fed by a simulator in this process."""

    sim: TimedSimulator
    session: str
    accounts: dict[str, int]  # simulator public key → qfexdash account id
    daphne: Daphne

    @property
    def port(self) -> int:
        return self.daphne.port

    @property
    def origin(self) -> str:
        return self.daphne.origin

    def ws_url(self, key: str) -> str:
        return self.daphne.ws_url(f"/ws/accounts/{self.accounts[key]}/")

    def book_size(self, key: str) -> tuple[int, int]:
        """(open orders, active TWAPs) of the key's book right now."""
        return len(self.sim.open_orders(key)), len(self.sim.active_twaps(key))

    def restart(self, **settings: str) -> None:
        """Daphne again, with the default settings plus ``settings`` (environment variables)."""
        self.daphne.restart(settings)

    def rss_kib(self) -> int:
        """Daphne's resident set size (VmRSS), KiB."""
        return self.daphne.rss_kib()


@contextmanager
def live_site(accounts: Sequence[SimAccount], *, seed: int = 21, **simulator: Any) -> Iterator[Site]:
    """A simulator serving ``accounts`` (``simulator``: more of its constructor's arguments) and qfexdash in
    Daphne with one qfexdash account per key."""
    with (
        TimedSimulator(list(accounts), seed=seed, **simulator) as sim,
        tempfile.TemporaryDirectory(prefix="qfexdash-bench-") as name,
    ):
        folder = Path(name)
        env = server_env(folder)
        entered = tuple(Account.of(f"Bench {n}", a) for n, a in enumerate(accounts, 1))
        prepared = prepare(env, SiteSpec(sim.url, (Person(VIEWER, entered),)))
        ids = {a.public_key: prepared.accounts[a.label] for a in entered}
        with Daphne(env, folder / "daphne.log", patience=2 * PATIENCE) as daphne:
            try:
                daphne.start()
                yield Site(sim, prepared.sessions[VIEWER], ids, daphne)
            except Exception as exc:
                exc.add_note(f"Daphne's log ends with:\n{daphne.log_tail(30)}")
                raise


# --- browsers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One frame a viewer received: when (monotonic ns), its type and seq, payload bytes and rows carried."""

    t_ns: int
    kind: str
    seq: int | None
    nbytes: int
    rows: int
    state: str = ""


class Viewer:
    """One browser socket, keeping what the page would show: rows by id, seq, state."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []
        self.orders: dict[str, Any] = {}
        self.twaps: dict[str, Any] = {}
        self.seq: int | None = None
        self.state = ""
        self.snapshots = 0
        self.snapshot_at = 0  # when the last part of the last snapshot arrived
        self.gaps = 0
        self.errors: Counter[str] = Counter()
        self.target: tuple[int, int] | None = None  # (orders, twaps): note when the page first shows that many
        self.full_at: int | None = None
        self.closed = False
        self._parts: list[dict[str, Any]] = []
        self._event = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, site: Site, key: str) -> Viewer:
        ws = await connect(
            site.ws_url(key),
            origin=site.origin,  # type: ignore[arg-type]  (websockets' Origin is a str NewType)
            additional_headers={"Cookie": f"sessionid={site.session}"},
            compression=None,  # as Daphne would answer a browser: it does not negotiate permessage-deflate
            proxy=None,
            ping_interval=None,
            max_size=2**24,
            open_timeout=PATIENCE,
            close_timeout=5,
        )
        return cls(ws)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(Exception):
            await self._reader
        for task in list(self._tasks):
            task.cancel()

    async def _read(self) -> None:
        try:
            while True:
                raw = await self.ws.recv(decode=False)
                self._apply(raw, time.monotonic_ns())
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._notify()

    def _apply(self, raw: bytes, t_ns: int) -> None:
        msg = orjson.loads(raw)
        kind = msg.get("type", "")
        rows = 0
        if kind == "snapshot":
            rows = len(msg["orders"]) + len(msg["twaps"])
            part, parts = msg.get("part", 1), msg.get("parts", 1)
            if part == 1:
                self._parts = []
            self._parts.append(msg)
            if part == parts and len(self._parts) == parts:
                self.orders = {row["id"]: row for m in self._parts for row in m["orders"]}
                self.twaps = {row["id"]: row for m in self._parts for row in m["twaps"]}
                self.seq = msg["seq"]
                self.state = msg["status"]["state"]
                self.snapshots += 1
                self.snapshot_at = t_ns
        elif kind == "diff":
            upsert, remove = msg["upsert"], msg["remove"]
            rows = sum(len(upsert[k]) + len(remove[k]) for k in ("orders", "twaps"))
            if self.seq is not None and msg["seq"] == self.seq + 1:
                self.seq = msg["seq"]
                for name, book in (("orders", self.orders), ("twaps", self.twaps)):
                    for row in upsert[name]:
                        book[row["id"]] = row
                    for row_id in remove[name]:
                        book.pop(row_id, None)
            elif self.seq is not None and msg["seq"] > self.seq + 1:
                self._gap()
        elif kind == "status":
            self.state = msg["state"]
            if self.seq is not None and msg["seq"] > self.seq:
                self._gap()
        elif kind == "error":
            self.errors[msg.get("code", "")] += 1
        self.frames.append(Frame(t_ns, kind, msg.get("seq"), len(raw), rows, self.state))
        if self.full_at is None and self.target is not None and self.has_book(*self.target):
            self.full_at = t_ns
        self._notify()

    def _gap(self) -> None:
        # What the page does: forget the seq and ask for a snapshot. A benchmark run should see none.
        self.gaps += 1
        self.seq = None
        task = asyncio.get_running_loop().create_task(self.send({"type": "resync"}))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def changed(self) -> None:
        """Return once another frame has arrived (or the socket closed)."""
        if self.closed:
            raise ConnectionError(f"the server closed the socket (code {self.ws.close_code} {self.ws.close_reason!r})")
        await self._event.wait()

    def has_book(self, orders: int, twaps: int) -> bool:
        return len(self.orders) == orders and len(self.twaps) == twaps

    def first_diff_after(self, index: int) -> Frame | None:
        return next((f for f in self.frames[index:] if f.kind == "diff"), None)


async def until(viewers: Sequence[Viewer], condition: Callable[[Viewer], bool], what: str) -> None:
    """Wait until ``condition`` holds for every viewer (at most PATIENCE seconds)."""
    try:
        async with asyncio.timeout(PATIENCE):
            for viewer in viewers:
                while not condition(viewer):
                    await viewer.changed()
    except TimeoutError:
        done = sum(1 for v in viewers if condition(v))
        raise RuntimeError(f"timed out waiting for {what} ({done} of {len(viewers)} viewers there)") from None


async def open_viewers(site: Site, key: str, count: int, concurrency: int = 64) -> list[Viewer]:
    """``count`` sockets on the key's account, at most ``concurrency`` handshakes at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Viewer:
        async with gate:
            return await Viewer.open(site, key)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    viewers = [r for r in results if isinstance(r, Viewer)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await close_viewers(viewers)
        raise RuntimeError(f"{len(failures)} of {count} sockets failed to open: {failures[0]!r}")
    return viewers


async def close_viewers(viewers: Sequence[Viewer], concurrency: int = 128) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(viewer: Viewer) -> None:
        async with gate:
            await viewer.close()

    await asyncio.gather(*(one(v) for v in viewers))


def showing(site: Site, key: str) -> Callable[[Viewer], bool]:
    """A viewer shows the key's whole current book, live."""
    orders, twaps = site.book_size(key)
    return lambda v: v.state == "live" and v.has_book(orders, twaps)


class Changer:
    """One small change to one account's book at a time: a new order, then the cancel of that order,
    and so on, so the book keeps its size. Each pushes one ``order_response``."""

    def __init__(self, sim: Simulator, key: str) -> None:
        self.sim = sim
        self.key = key
        self.added: list[str] = []

    def __call__(self) -> None:
        if self.added:
            self.sim.remove_order(self.key, self.added.pop())
        else:
            self.added.append(self.sim.add_orders(self.key, 1)[0]["order_id"])


@dataclass(frozen=True)
class Update:
    """How long one change took to reach the viewers, in seconds."""

    reply_to_first: float  # the upstream frame that carried the change (push, or page) → the first viewer's diff
    reply_to_last: float  # ... → the last viewer's diff
    change_to_last: float  # the change made at the exchange → the last viewer's diff


async def one_update(site: Site, key: str, viewers: Sequence[Viewer], change: Callable[[], None]) -> Update:
    """Make one change and wait until every viewer has received the diff it causes."""
    marks = [len(v.frames) for v in viewers]
    changed_at = time.monotonic_ns()
    change()
    try:
        async with asyncio.timeout(PATIENCE):
            for viewer, mark in zip(viewers, marks, strict=True):
                while viewer.first_diff_after(mark) is None:
                    await viewer.changed()
    except TimeoutError:
        raise RuntimeError(f"timed out waiting for a diff on {len(viewers)} sockets") from None
    arrivals = [v.first_diff_after(mark).t_ns for v, mark in zip(viewers, marks, strict=True)]  # type: ignore[union-attr]
    first, last = min(arrivals), max(arrivals)
    # The upstream frame that carried the change: its order_response push (the feed applies pushes at
    # once), or — when the exchange pushed nothing — the last get_user_orders page before the diff.
    pushes = site.sim.order_events(since_ns=changed_at, account_key=key)
    upstream = pushes[0].t_ns if pushes and pushes[0].t_ns <= first else site.sim.last_reply_before(key, first)
    if upstream < changed_at:
        raise RuntimeError("a diff arrived before anything upstream carried the change")
    return Update((first - upstream) / 1e9, (last - upstream) / 1e9, (last - changed_at) / 1e9)


async def _sleep_until(deadline_ns: int) -> None:
    await asyncio.sleep(max(0.0, (deadline_ns - time.monotonic_ns()) / 1e9))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# --- P2: reply → browser, 1 viewer ----------------------------------------------------------------


def p2(samples: int, cold_starts: int | None = None) -> list[str]:
    """Reply → browser latency for the first full book of a cold feed, and for one-order diffs."""
    main = _sim_account("p2", 1000)
    colds = [_sim_account(f"p2_cold_{n:02d}", 1000) for n in range(cold_starts or min(samples, 30))]
    with live_site([main, *colds]) as site:
        diffs, change_to_diff, books, carriers, resyncs = asyncio.run(_p2(site, main.public_key, colds, samples))
        costs = _server_side_costs(site.sim, main.public_key, samples)
    return [
        "P2 upstream frame (a page, or the push carrying the change) → browser socket has the update "
        "(1000 orders, 1 viewer, real Daphne)",
        f"   first full book of a cold feed ({carriers}): {summary_ms(books)} — {goal_p95_ms(books, 0.015)}",
        f"   diff, one order changed:                    {summary_ms(diffs)} — {goal_p95_ms(diffs, 0.005)}",
        f"   for context, change at the exchange → diff in the browser (the push, applied at once): "
        f"{summary_ms(change_to_diff)}",
        f"   for context, a page joins → its whole snapshot received (from the feed's cache): {summary_ms(resyncs)}",
        f"   in-process, what the feed does after the last page (1000 orders): rows {_ms(costs['rows'])} "
        f"(from scratch) or {_ms(costs['rows_reused'])} (one order changed since the last fetch), "
        f"diff {_ms(costs['diff'])}, encode a 1-row diff {_ms(costs['encode_diff'])}",
        f"   encoding a 1000-row snapshot in-process: orjson {_ms(costs['orjson'])}, stdlib json {_ms(costs['json'])}"
        f" ({costs['json'] / costs['orjson']:.1f}×)",
    ]


async def _p2(
    site: Site, key: str, colds: Sequence[SimAccount], samples: int
) -> tuple[list[float], list[float], list[float], str, list[float]]:
    diffs: list[float] = []
    change_to_diff: list[float] = []
    viewers = await open_viewers(site, key, 1)
    try:
        await until(viewers, showing(site, key), "the first full book")
        change = Changer(site.sim, key)
        for n in range(samples + 3):  # three warm-up changes
            await asyncio.sleep(SPACING)
            update = await one_update(site, key, viewers, change)
            if n >= 3:
                diffs.append(update.reply_to_last)
                change_to_diff.append(update.change_to_last)
    finally:
        await close_viewers(viewers)

    books: list[float] = []
    resyncs: list[float] = []
    carriers: Counter[str] = Counter()
    for account in colds:
        cold_key = account.public_key
        viewers = await open_viewers(site, cold_key, 1)
        viewer = viewers[0]
        try:
            # Nobody watched this account before: the feed connects, fetches, and the rows follow.
            viewer.target = site.book_size(cold_key)
            await until(viewers, lambda v: v.full_at is not None, "a cold feed's first book")
            full_at = viewer.full_at
            assert full_at is not None
            books.append((full_at - site.sim.last_reply_before(cold_key, full_at)) / 1e9)
            carrying = [f for f in viewer.frames if f.rows and f.t_ns <= full_at]
            rows = "+".join(str(f.rows) for f in carrying)
            carriers[f"{len(carrying)} {carrying[-1].kind} messages of {rows} rows"] += 1
            await until(viewers, showing(site, cold_key), "the live state")
            # A second page joins: its whole snapshot comes from the feed's cache (a resync of a page that
            # already has everything is not answered any more).
            asked = time.monotonic_ns()
            joiners = await open_viewers(site, cold_key, 1)
            viewers = [*viewers, *joiners]
            await until(joiners, lambda v: v.snapshots >= 1, "the joining page's snapshot")
            resyncs.append((joiners[0].snapshot_at - asked) / 1e9)
        finally:
            await close_viewers(viewers)
    return diffs, change_to_diff, books, "; ".join(f"as {k} ×{n}" for k, n in carriers.items()), resyncs


def _server_side_costs(sim: Simulator, key: str, samples: int) -> dict[str, float]:
    """Median in-process cost (seconds) of what the feed does after a fetch's last page, for 1000 orders:
    build the rows from the parsed records, diff them against the previous rows, encode one diff; and the
    cost of encoding a whole 1000-row snapshot with orjson (what the feed uses) and with stdlib json.
    Rows are built both from scratch (a cold feed) and reusing the last fetch's rows (one order changed)."""
    from orders.live import protocol as lp
    from orders.live.rows import build_order_rows, build_twap_rows, diff_rows, order_rows, twap_rows
    from orders.qfex.records import parse_order, parse_twap

    records = [parse_order(o) for o in sim.open_orders(key)]
    twap_records = [parse_twap(t) for t in sim.active_twaps(key)]
    previous = order_rows(records, 1, "Bench")
    # The same book after one order changed, parsed afresh as a new fetch's records would be.
    changed = [dict(o) for o in sim.open_orders(key)]
    changed[0]["quantity_remaining"] = "0.5"
    new_records = [parse_order(o) for o in changed]
    new_twap_records = [parse_twap(t) for t in sim.active_twaps(key)]
    last_orders = build_order_rows(records, 1, "Bench")
    last_twaps = build_twap_rows(twap_records, 1, "Bench")
    orders = order_rows(records, 1, "Bench")
    twaps = twap_rows(twap_records, 1, "Bench")
    upserts = [next(iter(orders.values()))]
    snapshot = lp.snapshot_message(1, 1, time.time(), lp.Status(lp.LIVE), orders.values(), twaps.values())

    def timed(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(max(samples, 5)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return {
        "rows": timed(lambda: (order_rows(records, 1, "Bench"), twap_rows(twap_records, 1, "Bench"))),
        "rows_reused": timed(
            lambda: (
                build_order_rows(new_records, 1, "Bench", last_orders),
                build_twap_rows(new_twap_records, 1, "Bench", last_twaps),
            )
        ),
        "diff": timed(lambda: diff_rows(previous, orders)),
        "encode_diff": timed(lambda: lp.encode(lp.diff_message(1, 2, 1.0, upsert_orders=upserts))),
        "orjson": timed(lambda: lp.encode(snapshot)),
        "json": timed(lambda: json.dumps(snapshot, default=lp.decimal_text, ensure_ascii=False)),
    }


# --- P3: N viewers of one account -----------------------------------------------------------------


@dataclass
class ViewerRun:
    viewers: int
    join_requests: int  # get_user_orders pages while the viewers joined a cold feed
    window_requests: int  # pages during the fixed window of changes
    window_seconds: float
    changes: int
    all_updated: list[float]  # reply → last viewer, seconds
    gaps: int


def p3(samples: int, viewer_counts: Sequence[int] = (1, 10, 50, 200)) -> list[str]:
    """Upstream requests per N viewers (must not grow with N), and reply → all N viewers updated."""
    accounts = {n: _sim_account(f"p3_{n}", 1000) for n in viewer_counts}
    changes = max(3, samples // 2)
    require_open_files(2 * max(viewer_counts) + 256)
    with live_site(list(accounts.values())) as site:
        runs = asyncio.run(_p3(site, accounts, changes))
    return p3_table(
        "P3 one account (1000 orders), N viewers on one Daphne: upstream get_user_orders pages and "
        "reply → every viewer updated",
        runs,
        changes,
    )


def p3_table(title: str, runs: Sequence[ViewerRun], changes: int) -> list[str]:
    """The P3 report: pages per N viewers (joins and window), reply → last viewer, and the verdicts."""
    lines = [title, f"   {'N':>5}  {'pages: joins':>12}  {'pages: window':>13}  all N updated (reply → last viewer)"]
    for run in runs:
        lines.append(
            f"   {run.viewers:>5}  {run.join_requests:>12}  {run.window_requests:>13}  {summary_ms(run.all_updated)}"
            + (f"  ({run.gaps} seq gaps!)" if run.gaps else "")
        )
    windows = {run.window_requests for run in runs}
    joins = {run.join_requests for run in runs}
    same = len(windows) == 1 and len(joins) == 1
    window = runs[0].window_seconds
    lines.append(
        f"   window: {window:.1f} s with {changes} one-order changes, {SPACING:g} s apart; each N joins a cold feed."
        f" Pages independent of N: {'yes' if same else 'NO'}"
        f" (joins {sorted(joins)}, window {sorted(windows)})"
    )
    fifty = next((run for run in runs if run.viewers == 50), None)
    if fifty is not None:
        lines.append(f"   50 viewers all updated: {goal_p95_ms(fifty.all_updated, 0.075)}")
    return lines


async def changes_window(
    site: Site, key: str, viewers: Sequence[Viewer], change: Changer, changes: int, joined: int
) -> ViewerRun:
    """``changes`` one-order changes, SPACING apart: reply → last viewer for each, and the pages QFEX
    answered over the whole window (which must not depend on how many viewers there are)."""
    latencies = []
    start = time.monotonic_ns()
    for n in range(changes):
        await _sleep_until(start + int((n + 1) * SPACING * 1e9))
        latencies.append((await one_update(site, key, viewers, change)).reply_to_last)
    end = start + int((changes + 1) * SPACING * 1e9)
    await _sleep_until(end)
    window = len(site.sim.answers(key, start, end))
    gaps = sum(v.gaps for v in viewers)
    return ViewerRun(len(viewers), joined, window, (end - start) / 1e9, changes, latencies, gaps)


async def _p3(site: Site, accounts: dict[int, SimAccount], changes: int) -> list[ViewerRun]:
    runs = []
    for count, account in accounts.items():
        key = account.public_key
        before = len(site.sim.answers(key))
        viewers = await open_viewers(site, key, count)
        try:
            await until(viewers, showing(site, key), f"{count} viewers showing the book")
            joined = len(site.sim.answers(key)) - before
            runs.append(await changes_window(site, key, viewers, Changer(site.sim, key), changes, joined))
        finally:
            await close_viewers(viewers)
    return runs


# --- P4: 1000 idle sockets ------------------------------------------------------------------------


def p4(samples: int, sockets: int = 1000, settle: float = 2.5) -> list[str]:
    """Daphne's RSS per idle authenticated socket, and one small update fanned out to all of them.

    ``settle``: seconds the server is left idle before each RSS reading (more than one access re-check
    interval, so every socket's periodic work has run at least once)."""
    account = _sim_account("p4", 20, twaps=1)
    key = account.public_key
    require_open_files(2 * sockets + 256)
    with live_site([account]) as site:
        opened, seconds, before, after, updates, cpu = asyncio.run(
            _p4(site, key, sockets, max(3, samples // 8), settle)
        )
    reply_to_all = [u.reply_to_last for u in updates]
    per_socket = (after - before) / sockets
    lines = [
        f"P4 {sockets} idle authenticated sockets on one Daphne process (one account with 20 orders; all sockets"
        " share one session)",
        f"   opened {opened}/{sockets}, each with its snapshot, in {seconds:.1f} s; Daphne RSS {before / 1024:.1f} MiB"
        f" with 1 socket → {after / 1024:.1f} MiB with {sockets + 1}: {per_socket:.1f} KiB per socket"
        f" — goal ≤ 64 KiB → {verdict(opened >= min(sockets, 1000) and per_socket <= 64)}",
        f"   one small update (one order) → all {sockets} sockets: reply → last socket {summary_ms(reply_to_all)}"
        f" — goal ≤ 500 ms → {verdict(max(reply_to_all) <= 0.5)}",
        f"   for context: reply → first socket {summary_ms([u.reply_to_first for u in updates])};"
        f" change at the exchange → last socket {summary_ms([u.change_to_last for u in updates])}",
        f"   the {sockets} receiving sockets live in this benchmark process, on the same machine: it used"
        f" {statistics.median(cpu) * 1000:.0f} ms of CPU per update (median)",
    ]
    if sockets < 1000:
        lines.append(f"   (only {sockets} sockets: the goal is about 1000)")
    return lines


async def _p4(
    site: Site, key: str, sockets: int, count: int, settle: float
) -> tuple[int, float, int, int, list[Update], list[float]]:
    first = await open_viewers(site, key, 1)
    crowd: list[Viewer] = []
    try:
        await until(first, showing(site, key), "the first viewer showing the book")
        await asyncio.sleep(settle)  # let the server settle: one access re-check round, pools warm
        before = site.rss_kib()
        started = time.monotonic()
        crowd = await open_viewers(site, key, sockets)
        await until(crowd, lambda v: v.snapshots >= 1 and v.state == "live", "every socket's snapshot")
        seconds = time.monotonic() - started
        await asyncio.sleep(settle)  # idle: every socket has had an access re-check since it joined
        after = site.rss_kib()
        everyone = [*first, *crowd]
        change = Changer(site.sim, key)
        updates = []
        cpu = []  # this process's CPU time per update: the receiving side's share of the fan-out
        for _ in range(count):
            await asyncio.sleep(SPACING)
            started = time.process_time()
            updates.append(await one_update(site, key, everyone, change))
            cpu.append(time.process_time() - started)
        opened = sum(1 for v in crowd if not v.closed)
        return opened, seconds, before, after, updates, cpu
    finally:
        await close_viewers([*first, *crowd])


# --- P5: bytes per update -------------------------------------------------------------------------


def p5(samples: int) -> list[str]:
    """Diff bytes for changes of ≤ 1 % of 1000 orders, against the snapshot's bytes."""
    account = _sim_account("p5", 1000)
    with live_site([account]) as site:
        snapshot_bytes, parts, kinds = asyncio.run(_p5(site, account.public_key, max(1, samples // 8)))
    lines = [
        f"P5 bytes per update, 1000 orders: the snapshot is {snapshot_bytes:,} bytes ({parts} part"
        f"{'s' if parts != 1 else ''}); diff payload bytes per change:",
    ]
    worst = 0
    for name, (sizes, rows) in kinds.items():
        worst = max(worst, max(sizes))
        lines.append(
            f"   {name:<47} median {statistics.median(sizes):>6,.0f} B, max {max(sizes):>6,} B"
            f" ({max(sizes) / snapshot_bytes:.2%} of the snapshot; rows per diff {min(rows)}–{max(rows)})"
        )
    lines.append(
        f"   largest ≤ 1 % diff: {worst / snapshot_bytes:.2%} of the snapshot — goal ≤ 2 % →"
        f" {verdict(worst <= 0.02 * snapshot_bytes)} (WebSocket framing adds 2–4 bytes per message; no compression)"
    )
    return lines


async def _p5(site: Site, key: str, reps: int) -> tuple[int, int, dict[str, tuple[list[int], list[int]]]]:
    sim = site.sim
    viewers = await open_viewers(site, key, 1)
    viewer = viewers[0]
    added: list[str] = []

    def events(n: int) -> Callable[[], None]:
        def run() -> None:
            while not sim.step(n):  # a TWAP event pushes nothing; make sure an order changed
                pass

        return run

    def new_orders() -> None:
        added.extend(order["order_id"] for order in sim.add_orders(key, 10))

    def cancels() -> None:
        for _ in range(10):
            sim.remove_order(key, added.pop() if added else sim.open_orders(key)[0]["order_id"])

    kinds: dict[str, Callable[[], None]] = {
        "1 exchange event (fill, modify, new or cancel)": events(1),
        "10 exchange events (1 % of the orders)": events(10),
        "10 new orders (every row whole: the worst 1 %)": new_orders,
        "10 cancels": cancels,
    }
    results: dict[str, tuple[list[int], list[int]]] = {}
    try:
        await until(viewers, showing(site, key), "the book")
        # The whole book's snapshot, as a page joining now gets it.
        joiners = await open_viewers(site, key, 1)
        viewers = [*viewers, *joiners]
        await until(joiners, lambda v: v.snapshots >= 1, "a joining page's snapshot")
        parts = [f for f in joiners[0].frames if f.kind == "snapshot"]
        snapshot_bytes = sum(f.nbytes for f in parts)
        for name, change in kinds.items():
            sizes: list[int] = []
            rows: list[int] = []
            for _ in range(reps):
                await asyncio.sleep(SPACING)
                mark = len(viewer.frames)
                change()
                await until([viewer], lambda v, m=mark: v.first_diff_after(m) is not None, "a diff")
                # A change bigger than a message's row limit would come as several diffs: count them all.
                await asyncio.sleep(SPACING)
                diffs = [f for f in viewer.frames[mark:] if f.kind == "diff"]
                sizes.append(sum(f.nbytes for f in diffs))
                rows.append(sum(f.rows for f in diffs))
            results[name] = (sizes, rows)
        return snapshot_bytes, len(parts), results
    finally:
        await close_viewers(viewers)


# --- P8: share of QFEX's rate budget --------------------------------------------------------------


@dataclass
class BudgetRun:
    name: str
    start_ns: int
    seconds: float
    answers: list[Answer]  # get_user_orders answers to the key during the window
    subscribes: int
    stale_frames: int

    @property
    def replies(self) -> int:
        return sum(1 for a in self.answers if not a.refused)

    @property
    def refused(self) -> int:
        return sum(1 for a in self.answers if a.refused)

    @property
    def weight(self) -> float:
        """Weight QFEX charged: pages answered and subscriptions (a refused request costs nothing)."""
        return self.replies * PAGE_WEIGHT + self.subscribes * SUBSCRIBE_WEIGHT

    @property
    def share(self) -> float:
        return self.weight / (self.seconds * QFEX_WEIGHT_PER_SECOND)

    @property
    def fetches(self) -> list[tuple[int, int, bool]]:
        """(start ns, pages answered, refused) per fetch: answers less than 150 ms apart are one fetch."""
        groups: list[list[Any]] = []
        for answer in self.answers:
            if groups and answer.t_ns - groups[-1][1] < 150_000_000:
                groups[-1][1] = answer.t_ns
            else:
                groups.append([answer.t_ns, answer.t_ns, 0, False])
            groups[-1][2] += 0 if answer.refused else 1
            groups[-1][3] = groups[-1][3] or answer.refused
        return [(first, pages, refused) for first, _, pages, refused in groups]

    def sustained_share(self) -> float | None:
        """The share over the window's second half, after any start-up burst is spent: the weight of
        fetches i..j-1 over the time from fetch i's start to fetch j's (no window-edge error)."""
        half = self.start_ns + int(self.seconds / 2 * 1e9)
        late = [fetch for fetch in self.fetches if fetch[0] >= half]
        if len(late) < 2:
            return None
        weight = sum(pages for _, pages, _ in late[:-1]) * PAGE_WEIGHT
        return weight / ((late[-1][0] - late[0][0]) / 1e9 * QFEX_WEIGHT_PER_SECOND)


# Fetch start times jitter by a few ms, so a sustained rate computed from a handful of fetches is
# known to about ±2 % of its value; a budget is judged honoured within that.
RESOLUTION = 1.02


def p8(samples: int, window: float = 20.0, viewers: int = 5, first_minute: float = 60.0) -> list[str]:
    """The dashboard's share of QFEX's weight budget under a refresh flood: default, the first minute
    (``first_minute`` seconds) of a cold 10 000-order account, a lowered share, and QFEX answering
    RateLimited."""
    del samples  # fixed windows, not samples
    main = _sim_account("p8", 1000)
    big = _sim_account("p8_big", 10_000, twaps=5)
    with live_site([main, big]) as site:
        site.sim.pace = 2.0  # background activity: order pushes trigger fetches too
        default = asyncio.run(_budget_run(site, main.public_key, viewers, window, "default (10 %), 1000 orders"))
        # From before the first viewer joins, over a whole minute: the first minute of a cold feed.
        big_run = asyncio.run(
            _budget_run(site, big.public_key, viewers, first_minute, "default, 10 000 orders, cold", from_cold=True)
        )
        site.restart(QFEXDASH_RATE_BUDGET_SHARE="0.02")
        lowered = asyncio.run(_budget_run(site, main.public_key, viewers, window, "QFEXDASH_RATE_BUDGET_SHARE=0.02"))
        site.restart()
        # QFEX lets this user have 60 weight per 60 s (12 pages a minute), far below the dashboard's own budget.
        site.sim.faults.rate_limit_weight = 60.0
        limited = asyncio.run(_budget_run(site, main.public_key, viewers, window, "QFEX allows 60 weight/min"))
    lines = [
        f"P8 share of QFEX's budget (12 000 weight / 60 s per user; 5 per page): {viewers} viewers each sending"
        f" `refresh` as fast as the socket allows, exchange activity 2 events/s, {window:g} s per run",
        f"   {'run':<33} {'pages':>5} {'refused':>7} {'weight/min':>10} {'share':>6} {'sustained':>9}",
    ]
    for run in (default, big_run, lowered, limited):
        steady = run.sustained_share()
        lines.append(
            f"   {run.name:<33} {run.replies:>5} {run.refused:>7} {run.weight / run.seconds * 60:>10.0f}"
            f" {run.share:>6.1%} {'—' if steady is None else f'{steady:.1%}':>9}"
        )
    sustained = [value for value in (default.sustained_share(), big_run.sustained_share()) if value is not None]
    lowered_steady = lowered.sustained_share()
    lines.append(
        f"   default ≤ 10 %: sustained {verdict(bool(sustained) and max(sustained) <= 0.10 * RESOLUTION)};"
        f" over the first {first_minute:g} s of a cold 10 000-order feed ({big_run.share:.1%})"
        f" {verdict(big_run.share <= 0.10)};"
        f" lowered to 2 %: {verdict(lowered_steady is not None and lowered_steady <= 0.02 * RESOLUTION)}"
    )
    refused_at = next((a.t_ns for a in limited.answers if a.refused), None)
    if refused_at is None:
        lines.append("   on RateLimited: QFEX never refused a request in this run (no back-off to show)")
    else:
        after = [a for a in limited.answers if a.t_ns >= refused_at]
        span = (limited.start_ns + int(limited.seconds * 1e9) - refused_at) / 1e9
        complete = sum(1 for first, _, refused in limited.fetches if first >= refused_at and not refused)
        lines.append(
            f"   on RateLimited: after QFEX's first refusal, {len(after)} requests in {span:.1f} s"
            f" ({len(after) / span:.2f}/s, {sum(a.refused for a in after)} refused, {complete} fetches completed)"
            f" vs {len(default.answers) / default.seconds:.2f}/s without the limit; viewers saw"
            f" {limited.stale_frames} frames in state 'stale'"
        )
    return lines


async def _budget_run(
    site: Site, key: str, count: int, window: float, name: str, *, from_cold: bool = False
) -> BudgetRun:
    """``window`` seconds of refresh flood; counted from when the viewers are live, or with
    ``from_cold`` from before they join an account nobody watched (its first fetch included)."""
    subscribes = site.sim.request_count("subscribe")
    start = time.monotonic_ns()
    viewers = await open_viewers(site, key, count)
    try:
        await until(viewers, lambda v: v.state == "live" and v.snapshots >= 1, "live viewers")
        if not from_cold:
            subscribes = site.sim.request_count("subscribe")
            start = time.monotonic_ns()
        end = start + int(window * 1e9)
        marks = [len(v.frames) for v in viewers]
        await _flood(viewers, end)
        answers = site.sim.answers(key, start, end)
        subscribes = site.sim.request_count("subscribe") - subscribes
        stale = sum(1 for v, m in zip(viewers, marks, strict=True) for f in v.frames[m:] if f.state == "stale")
    finally:
        await close_viewers(viewers)
    return BudgetRun(name, start, window, answers, subscribes, stale)


async def _flood(viewers: Sequence[Viewer], end_ns: int) -> None:
    """Every viewer sends ``refresh`` every 0.55 s (the socket allows 20 frames per 10 s) until ``end_ns``."""
    interval = 0.55

    async def one(viewer: Viewer, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic_ns() < end_ns and not viewer.closed:
            await viewer.send({"type": "refresh"})
            await asyncio.sleep(interval)

    await asyncio.gather(*(one(v, n * interval / len(viewers)) for n, v in enumerate(viewers)))
    await _sleep_until(end_ns)
