"""One account in this process: its viewers, its data, how it publishes, and its role.

The role is *owner* — an :class:`~orders.live.feed.worker.UpstreamWorker` talks to QFEX — whenever this
process owns the account: always with one process; with several (``REDIS_URL``), while it holds the
account's lease. Otherwise it is a *follower* with a :class:`~orders.live.feed.follower.Mirror` of the
owner's data. A small supervisor task switches roles, and stops everything once nobody (here or, for
an owner, in another process) has watched the account for one reconcile interval.

Publishing goes through a :class:`~orders.live.feed.publisher.Publisher`: diffs and statuses in seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from orders.live import metrics
from orders.live import protocol as lp
from orders.live.rows import Row
from orders.qfex import Order

from . import corrections
from .budget import RateBudget
from .cluster import PUBLISHED, ClusterLink
from .config import FeedConfig, group_name
from .follower import Mirror
from .ownership import Ownership
from .publisher import Publisher
from .reader import PushReader
from .settings_watch import SettingsWatch
from .state import AccountState, Change
from .worker import UpstreamWorker

logger = logging.getLogger("orders.live.feed")

T = TypeVar("T")

MESSAGE_TYPE = PUBLISHED  # handled by consumers' feed_message()
_SMALL_SNAPSHOT_ROWS = 200  # encoding fewer rows than this is cheaper than a hop to the pool


@dataclass
class FeedStats:
    """Counters for tests and benchmarks."""

    fetches: int = 0  # fetches started
    pages: int = 0  # get_user_orders pages of the fetches that completed
    failures: int = 0
    sessions: int = 0  # upstream sessions opened
    pushes: int = 0  # order_response pushes applied


@dataclass(frozen=True)
class FeedSnapshot:
    """The last good data of one account, as of ``seq`` (copies: safe to keep)."""

    account: int
    seq: int
    as_of: float | None
    status: lp.Status
    orders: dict[str, Row]
    twaps: dict[str, Row]
    closed: tuple[Row, ...] = ()


class FeedServices(Protocol):
    """What an account feed uses of the process's feed (:class:`orders.live.feed.service.Feed`)."""

    config: FeedConfig
    loop: asyncio.AbstractEventLoop
    reader: PushReader
    settings: SettingsWatch
    ownership: Ownership
    link: ClusterLink | None

    @property
    def pool(self) -> Executor: ...  # read-only here, so the feed's ThreadPoolExecutor fits

    def budget_for(self, key: str) -> RateBudget: ...

    async def publish(self, group: str, payload: dict[str, Any]) -> None: ...

    def account_stopped(self, account: AccountFeed) -> None: ...


class AccountFeed:
    def __init__(self, feed: FeedServices, account_id: int) -> None:
        self.feed = feed
        self.config = feed.config
        self.account_id = account_id
        self.group = group_name(account_id)
        self.viewers: set[str] = set()
        self._notifiers: dict[str, Callable[[dict[str, Any]], None]] = {}  # viewer → local callback
        self.remote_interest = False
        # Starting from the wall clock keeps seq increasing across restarts (see orders.live.protocol); in a
        # cluster the seq is the owner's: 0 until this process owns the account or mirrors it.
        first_seq = 0 if feed.link is not None else int(time.time() * 1000)
        self.state = AccountState(account_id, seq=first_seq, closed_limit=self.config.closed_rows)
        self.stats = FeedStats()
        self.worker: UpstreamWorker | None = None
        self.mirror: Mirror | None = None
        self._idle_since: float | None = time.monotonic()
        self._updated = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = False
        self.publisher = Publisher(
            self.state, self.config.rows_per_message, self._send, self.tell_viewers, metrics.observe_publish
        )
        self.task: asyncio.Task[None] | None = None

    # --- viewers (called by Feed, on the loop) -----------------------------------------------------

    def add_viewer(self, viewer: str, notify: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.viewers.add(viewer)
        if notify is not None:
            self._notifiers[viewer] = notify
        self._idle_since = None
        self.ensure_running()

    def remove_viewer(self, viewer: str) -> None:
        self.viewers.discard(viewer)
        self._notifiers.pop(viewer, None)
        if not self.viewers and self._idle_since is None:
            self._idle_since = time.monotonic()
            self._wake.set()

    def set_remote_interest(self, interested: bool) -> None:
        """Other processes have (or no longer have) viewers of the account we own."""
        if self.remote_interest and not interested and not self.viewers:
            self._idle_since = time.monotonic()  # one reconcile interval from now, as for a last local viewer
            self._wake.set()
        elif interested and not self.viewers:
            self._idle_since = None
        self.remote_interest = interested

    def wanted(self) -> bool:
        return bool(self.viewers or self.remote_interest)

    def ensure_running(self) -> None:
        if (self.task is not None and not self.task.done()) or self._stopping:
            return
        self.publisher.start(f"qfex-feed-publish-{self.account_id}")
        if self.feed.link is None and self.worker is None:
            self._start_worker()  # one process owns everything: at once, so a refresh right away is served
        self.task = self.feed.loop.create_task(self._run(), name=f"qfex-feed-account-{self.account_id}")

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # --- data ---------------------------------------------------------------------------------------

    def request_refresh(self, max_age: float | None = None) -> asyncio.Future[bool]:
        """A future resolved (True on success) when a fetch answering this request has finished."""
        window = self.config.refresh_coalesce_seconds if max_age is None else max(max_age, 0.0)
        if self.worker is not None:
            return self.worker.request_refresh(window)
        if self.mirror is not None:
            return self.mirror.request_refresh(window)
        future: asyncio.Future[bool] = self.feed.loop.create_future()
        future.set_result(False)  # not started yet (or stopping): the first fetch comes by itself
        return future

    def snapshot(self) -> FeedSnapshot:
        state = self.state
        orders, twaps = dict(state.orders), dict(state.twaps)
        return FeedSnapshot(
            self.account_id, state.seq, state.data_as_of, state.status, orders, twaps, tuple(state.closed)
        )

    async def snapshot_texts(self) -> tuple[int, float, list[str]]:
        """``(seq, status stamp, texts)``: the current snapshot's encoded parts, encoded once per state."""
        state = self.state
        key = state.status_key
        cached = state.cached_snapshot()
        if cached is not None:
            return key[0], key[1], cached
        view = state.snapshot_view()
        encode = functools.partial(_encode_snapshot, self.account_id, self.config.rows_per_message)
        if len(view.orders) + len(view.twaps) + len(view.closed) <= _SMALL_SNAPSHOT_ROWS:
            texts = encode(view)
        else:
            texts = await self.in_pool(encode, view)
        state.cache_snapshot(key, texts)
        return key[0], key[1], texts

    async def wait_mirrored(self, timeout: float) -> None:
        """A follower whose mirror is being filled waits up to ``timeout`` for it; others return at once."""
        if self.mirror is not None:
            await self.mirror.wait_mirrored(timeout)

    async def wait_for(self, predicate: Callable[[FeedSnapshot], bool], timeout: float) -> FeedSnapshot:
        """Wait until ``predicate(snapshot)`` holds; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                snapshot = self.snapshot()
                if predicate(snapshot):
                    return snapshot
                await self._updated.wait()

    def owns(self) -> bool:
        return self.worker is not None and self.feed.ownership.owns(self.account_id)

    def shared_status(self) -> tuple[lp.Status, int, tuple[int, int] | None]:
        """What the owner writes to Redis for every process's accounts page, and for a successor's seq."""
        state = self.state
        counts = (len(state.orders), len(state.twaps)) if state.data_as_of is not None else None
        return state.status, state.seq, counts

    # --- changes, from the worker or a push (on the loop) ------------------------------------------

    def on_push(self, order: Order, arrived: float) -> None:
        self.stats.pushes += 1
        change, reconcile = self.state.apply_push(order)
        if change.unknown_status is not None:
            corrections.unknown_status(self.account_id, change.unknown_status)
        if change:
            self.publish_change(change, time.time(), arrived)
        if reconcile and self.worker is not None:
            self.worker.request_reconcile()

    def publish_change(self, change: Change, as_of: float | None, arrived: float | None = None) -> None:
        self.publisher.change(change, as_of, arrived)
        self.notify()

    def publish_status(self, status: lp.Status) -> None:
        self.publisher.status(status)
        metrics.set_feed_state(self.account_id, status.state)
        self.notify()

    async def _send(self, payload: dict[str, Any], share: bool) -> None:
        link = self.feed.link
        if self.owns():
            await self.feed.publish(self.group, payload)
            if share and link is not None:
                await link.share_status(self)
        elif link is not None and payload["kind"] == lp.STATUS:
            # A follower's own trouble (e.g. Redis unreachable) concerns only its own viewers.
            self.tell_viewers({"type": PUBLISHED, **payload})

    # --- as a follower (several processes) --------------------------------------------------------

    def on_published(self, event: dict[str, Any]) -> None:
        """A message the account's owner published to the group (our inbox is in it): mirror it."""
        if self.mirror is not None and self.worker is None:
            self.mirror.on_published(event)

    async def on_snapshot_reply(self, event: dict[str, Any]) -> None:
        if self.mirror is not None and self.worker is None:
            await self.mirror.on_snapshot_reply(event)

    def tell_viewers(self, message: dict[str, Any]) -> None:
        """A message for this process's viewers only, through their ``notify`` callbacks."""
        for viewer, notify in list(self._notifiers.items()):
            try:
                notify(message)
            except Exception:
                logger.warning("account %s: could not notify viewer %s", self.account_id, viewer, exc_info=True)

    def notify(self) -> None:
        event, self._updated = self._updated, asyncio.Event()
        event.set()

    # --- the supervisor ---------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping and self._until_idle() > 0:
                await self._supervise()
        finally:
            await self._stop_roles()
            metrics.forget_account(self.account_id)
            self.task = None
            self.feed.account_stopped(self)

    async def _supervise(self) -> None:
        link = self.feed.link
        if self.worker is not None and not self.feed.ownership.owns(self.account_id):
            logger.warning("account %s: lost the upstream lease; following its new owner", self.account_id)
            await self._stop_worker()
        if self.worker is None:
            if link is None or await self._claim():
                await self._become_owner()
            else:
                if self.mirror is None:
                    self.mirror = Mirror(self, link, self.config)
                await self.mirror.step()
        delay = (
            self.config.reconcile_seconds if link is None or self.worker is not None else link.follower_retry_seconds()
        )
        await self._sleep(min(delay, self._until_idle()))

    async def _claim(self) -> bool:
        try:
            return await self.feed.ownership.claim(self.account_id)
        except Exception as exc:
            logger.warning("account %s: could not take its lease: %s", self.account_id, type(exc).__name__)
            return False

    async def _become_owner(self) -> None:
        link = self.feed.link
        waiters: list[asyncio.Future[bool]] = []
        if link is not None:
            logger.info("account %s: this process now owns the upstream session", self.account_id)
            known = max(self.state.seq, await link.last_known_seq(self.account_id))
            if self.mirror is not None:
                known = max(known, self.mirror.max_seen_seq)
                waiters = self.mirror.take_waiters()
                self.mirror.close()
                self.mirror = None
            # Above anything any page has seen (a gap makes every page resync), never below the clock.
            self.state.seq = max(known + 1000, int(time.time() * 1000))
        self._start_worker()
        assert self.worker is not None
        for future in waiters:  # refreshes forwarded while following: our first fetch answers them
            self.worker.request_refresh(0.0).add_done_callback(functools.partial(_copy_result, future))

    def _start_worker(self) -> None:
        self.worker = UpstreamWorker(
            self,
            self.config,
            pool=self.feed.pool,
            reader=self.feed.reader,
            settings=self.feed.settings,
            budget_for=self.feed.budget_for,
            stats=self.stats,
        )

    async def _stop_worker(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()
            await asyncio.wait([worker.task])

    async def _stop_roles(self) -> None:
        owned = self.owns()
        await self._stop_worker()
        if self.mirror is not None:
            self.mirror.close()
            self.mirror = None
        await self.publisher.stop(self.config.timeout_seconds)
        link = self.feed.link
        if link is not None and owned:
            await link.clear_status(self.account_id)
        with contextlib.suppress(Exception):
            await self.feed.ownership.release(self.account_id)

    def lease_lost(self) -> None:
        self._wake.set()

    def _until_idle(self) -> float:
        """Seconds until an unwatched feed stops (infinite while anyone watches)."""
        if self.viewers or self.remote_interest or self._idle_since is None:
            return math.inf
        return self._idle_since + self.config.reconcile_seconds - time.monotonic()

    async def _sleep(self, seconds: float) -> None:
        if not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(seconds, 0.0)):
                    await self._wake.wait()
        self._wake.clear()

    async def in_pool(self, fn: Callable[..., T], /, *args: Any) -> T:
        return await self.feed.loop.run_in_executor(self.feed.pool, functools.partial(fn, *args))


def _encode_snapshot(account_id: int, rows_per_message: int, view: Any) -> list[str]:
    messages = lp.snapshot_messages(
        account_id,
        view.seq,
        view.as_of,
        view.status,
        view.orders,
        view.twaps,
        rows_per_message,
        closed=view.closed,
    )
    return [lp.encode(message) for message in messages]


def _copy_result(target: asyncio.Future[bool], source: asyncio.Future[bool]) -> None:
    if not target.done():
        target.set_result(bool(source.result()) if not source.cancelled() else False)
