"""Browser sockets of the live figures, and the changes they time.

- :class:`Viewer` — one browser socket (asyncio ``websockets``, the session cookie and the page's Origin)
  keeping what the page would show: rows by id, seq, state; every frame with its arrival time;
- :func:`open_viewers` / :func:`close_viewers` / :func:`until` — many at once, and waiting on them;
- :class:`Changer` / :func:`one_update` — one small change at the exchange and when every viewer had
  the diff it causes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from bench.harness.pages import apply_diff
from bench.live.world import PATIENCE, Site
from orders.simulator import Simulator

# Changes are spaced by more than the feed's coalescing window (0.5 s by default), so each change
# gets its own fetch and no measured update waits for the window.
SPACING = 0.6


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
            origin=Origin(site.origin),
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
                apply_diff(msg, self.orders, self.twaps)
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


async def sleep_until(deadline_ns: int) -> None:
    await asyncio.sleep(max(0.0, (deadline_ns - time.monotonic_ns()) / 1e9))
