"""A follower's mirror of an account another server process owns (several processes, ``REDIS_URL``).

The follower's consumers are in the account's group already, so the owner's diffs reach them with no
relay. The mirror keeps this process's copy of the rows (its feed's inbox is in the group too and
applies each diff in seq order), so a viewer joining here gets its snapshot locally at once, as on the
owner. The mirror is filled by asking the owner for its snapshot (``feed.snapshot_request``) when it
starts and after a seq gap; once (re)filled, it tells this process's viewers to take a fresh snapshot.
Refreshes are forwarded to the owner (at most one per coalescing window), whose coalescing then
applies cluster-wide. See :mod:`orders.live.feed.cluster` for the messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import orjson

from orders.live import protocol as lp

from .cluster import RESNAPSHOT, ClusterLink
from .config import FeedConfig
from .state import AccountState, Gap, SnapshotView

T = TypeVar("T")

_BUFFER_LIMIT = 10_000


class MirrorHost(Protocol):
    account_id: int
    state: AccountState

    def tell_viewers(self, message: dict[str, Any]) -> None: ...

    def notify(self) -> None: ...

    async def in_pool(self, fn: Callable[..., T], /, *args: Any) -> T: ...


class Mirror:
    def __init__(self, host: MirrorHost, link: ClusterLink, config: FeedConfig) -> None:
        self.host = host
        self.link = link
        self.config = config
        self.mirrored = False
        self._filled = asyncio.Event()
        self._buffer: list[dict[str, Any]] = []
        self._snapshot_asked_at = -math.inf
        self.max_seen_seq = 0  # the highest seq the owner published that we saw (a new owner continues above)
        self._waiters: list[asyncio.Future[bool]] = []
        self._forward_max_age: float | None = None
        self._forward_pending = False
        self._forward_task: asyncio.Task[None] | None = None
        self._last_forward = -math.inf

    # --- the owner's messages -----------------------------------------------------------------------

    def on_published(self, event: dict[str, Any]) -> None:
        self.max_seen_seq = max(self.max_seen_seq, int(event.get("seq") or 0))
        if not self.mirrored:
            if len(self._buffer) < _BUFFER_LIMIT:
                self._buffer.append(event)
            return
        try:
            self._apply(event)
        except Gap:
            self.lost()
        self.host.notify()

    async def on_snapshot_reply(self, event: dict[str, Any]) -> None:
        """The owner's snapshot: (re)fill the mirror, catch up on what arrived meanwhile, tell our viewers."""
        texts = event["texts"]
        if sum(len(text) for text in texts) <= 100_000:
            snapshot = parse_snapshot(texts)
        else:
            snapshot = await self.host.in_pool(parse_snapshot, texts)
        state = self.host.state
        if self.mirrored and snapshot.seq <= state.seq:
            return  # an older answer than what we already mirror
        state.load(snapshot, float(event.get("stamp") or time.time()))
        self.max_seen_seq = max(self.max_seen_seq, snapshot.seq)
        self.mirrored = True
        buffered, self._buffer = self._buffer, []
        try:
            for message in buffered:
                self._apply(message)
        except Gap:
            self.lost()
        if self.mirrored:
            self._filled.set()
            self._resolve(True)
            self.host.tell_viewers({"type": RESNAPSHOT, "account": self.host.account_id})
        self.host.notify()

    def _apply(self, event: dict[str, Any]) -> None:
        state = self.host.state
        if event["kind"] == lp.DIFF:
            state.apply_published(orjson.loads(event["text"]))
        elif event["kind"] == lp.STATUS:
            if event["seq"] > state.seq:
                raise Gap  # a diff went missing (or the owner jumped its seq for a big change)
            message = orjson.loads(event["text"])
            state.set_status(lp.Status.from_dict(message), float(event.get("stamp") or time.time()))
            if state.status.as_of is not None:
                state.data_as_of = state.status.as_of
            if state.status.state in (lp.LIVE, lp.STALE, lp.FAILED):
                self._resolve(state.status.state == lp.LIVE)

    def lost(self) -> None:
        """A gap: keep showing the rows we have, ask the owner for its snapshot at once."""
        self.mirrored = False
        self._filled = asyncio.Event()
        self._buffer = []
        self._snapshot_asked_at = -math.inf

    # --- steps and requests ---------------------------------------------------------------------------

    async def step(self) -> None:
        """One follower tick: make sure the mirror is (being) filled, forward pending refreshes."""
        now = time.monotonic()
        if not self.mirrored and now - self._snapshot_asked_at >= self.link.tick_seconds:
            self._snapshot_asked_at = now
            await self.link.request_snapshot(self.host.account_id)
        if self._forward_pending:
            await self._forward()

    async def wait_mirrored(self, timeout: float) -> None:
        if self.mirrored:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._filled.wait()

    def request_refresh(self, max_age: float) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        state = self.host.state
        fresh = state.data_as_of is not None and time.time() - state.data_as_of < max_age
        if self.mirrored and fresh and state.status.state == lp.LIVE:
            future.set_result(True)
            return future
        self._waiters.append(future)
        self._forward_max_age = max_age if self._forward_max_age is None else min(self._forward_max_age, max_age)
        self._forward_pending = True
        if self._forward_task is None or self._forward_task.done():
            # Forwards are coalesced like fetches: at most one per coalescing window.
            delay = max(0.0, self._last_forward + self.config.refresh_coalesce_seconds - time.monotonic())
            self._forward_task = asyncio.get_running_loop().create_task(
                self._forward_later(delay), name=f"qfex-feed-forward-{self.host.account_id}"
            )
        return future

    async def _forward_later(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await self._forward()

    async def _forward(self) -> None:
        if not self._forward_pending:
            return
        self._forward_pending = False
        self._last_forward = time.monotonic()
        max_age, self._forward_max_age = self._forward_max_age, None
        await self.link.forward_refresh(self.host.account_id, max_age)

    def take_waiters(self) -> list[asyncio.Future[bool]]:
        """Refreshes still waiting (this process is becoming the owner: its first fetch answers them)."""
        waiters, self._waiters = self._waiters, []
        return waiters

    def close(self) -> None:
        if self._forward_task is not None:
            self._forward_task.cancel()
        self._resolve(False)

    def _resolve(self, value: bool) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(value)


def parse_snapshot(texts: list[str]) -> SnapshotView:
    """A snapshot's encoded parts back into one view (blocking for big ones: run it in the pool)."""
    orders: list[dict[str, Any]] = []
    twaps: list[dict[str, Any]] = []
    closed: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    for text in texts:
        message = orjson.loads(text)
        if message.get("type") != lp.SNAPSHOT:
            raise ValueError("not a snapshot part")
        if first is None:
            first = message
        elif message["seq"] != first["seq"]:
            raise ValueError("snapshot parts of different seqs")
        orders.extend(message["orders"])
        twaps.extend(message["twaps"])
        closed.extend(message.get("closed") or ())
    if first is None:
        raise ValueError("an empty snapshot")
    return SnapshotView(first["seq"], first["as_of"], lp.Status.from_dict(first["status"]), orders, twaps, closed)
