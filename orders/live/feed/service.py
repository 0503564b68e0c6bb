"""The feed: at most one upstream QFEX session per account, shared by every viewer.

Public API (all coroutines run on the feed's event loop — the server's loop under Daphne)::

    feed = get_feed()                                    # the process's feed, bound to the running loop
    await feed.watch(account_id, viewer, notify)         # a viewer (a consumer's channel name) is interested
    await feed.unwatch(account_id, viewer)
    seq, stamp, texts = await feed.snapshot_messages(account_id)  # encoded snapshot parts, from the cache
    snap = await feed.snapshot(account_id)               # FeedSnapshot: seq, as_of, status, orders, twaps, closed
    done = await feed.refresh(account_id, max_age=None)  # asyncio.Future[bool]; await it to wait for the fetch
    snap = await feed.wait_for(account_id, predicate, timeout)
    feed.status(account_id) -> Status                    # also safe from other threads (pages)
    await shutdown_feed()                                # stop every session, join the feed's threads

Viewers get updates through the channel layer: group ``account.<id>`` (:func:`group_name`) receives
``{"type": "feed.message", "account", "seq", "kind": "diff"|"status", "text": <encoded message>}``
(statuses also carry ``stamp``: with the seq it orders them); the text is encoded once and relayed as is
by every consumer.

How it behaves (design.md §2; each part is a module of this package):

- ``order_response`` pushes are applied to the account's rows and published as a diff at once
  (:mod:`~orders.live.feed.state`, :mod:`~orders.live.feed.lifecycle`). Full paged fetches are the reconcile: on
  join, on the reconcile cadence, after a reconnect, on Refresh and when a push cannot be placed —
  merged with the pushes that arrived meanwhile (:mod:`~orders.live.feed.schedule`, :mod:`~orders.live.feed.worker`).
- No thread waits for pushes: one reader thread serves every idle session (:mod:`~orders.live.feed.reader`).
  Blocking work (connect, auth, fetch, the feed's DB reads) runs in a bounded ``ThreadPoolExecutor``
  (``QFEXDASH_FEED_THREADS``), never on the event loop nor on asgiref's shared sync thread.
- Fetches are paced by the QFEX weight budget of the account's key at its endpoint
  (``QFEXDASH_RATE_BUDGET_SHARE`` of 12 000 / 60 s; :mod:`~orders.live.feed.budget`).
- Failures keep the last good rows and publish ``stale`` with the cause, ``error`` after
  ``QFEXDASH_ERROR_AFTER_FAILURES`` tries or when a person must act; changes to an account (disabled,
  deleted, new key, endpoint or subaccount) end its session within one reconcile interval.
- No viewers for one reconcile interval → the session closes and the account's data is dropped.
- Ownership (:mod:`~orders.live.feed.ownership`): one process owns everything; with ``REDIS_URL`` (several
  Daphne processes) a Redis lease per account, the others follow (:mod:`~orders.live.feed.cluster`,
  :mod:`~orders.live.feed.follower`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer

from orders.live import protocol as lp

from .account import MESSAGE_TYPE, AccountFeed, FeedSnapshot, FeedStats
from .budget import RateBudget
from .cluster import ClusterLink, cluster_state_from_settings
from .config import FeedConfig
from .ownership import LocalOwnership, Ownership
from .reader import PushReader
from .redis_state import ClusterState, read_overviews
from .settings_watch import SettingsWatch

logger = logging.getLogger("orders.live.feed")


@dataclass(frozen=True)
class AccountOverview:
    """What the accounts list shows of one account's feed: its state and how many rows it holds."""

    status: lp.Status
    orders: int | None = None  # None: not known (nobody watches it, or no data yet)
    twaps: int | None = None


class Feed:
    """Every account feed of this process. Create it inside the event loop it will run on.

    ``cluster``: the shared Redis state of several server processes; the feed then takes its leases,
    rate budgets and viewer interest from it and follows accounts other processes own (see
    :mod:`orders.live.feed.cluster`). The process's feed (:func:`get_feed`) gets one when ``REDIS_URL`` is set.
    """

    def __init__(
        self, config: FeedConfig | None = None, *, channel_layer: Any = None, cluster: ClusterState | None = None
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.config = config or FeedConfig.from_settings()
        self.pool = ThreadPoolExecutor(max_workers=self.config.threads, thread_name_prefix="qfex-feed")
        self.reader = PushReader()
        self.settings = SettingsWatch(self.pool, max_age=self.config.reconcile_seconds / 2)
        self.channel_layer = channel_layer if channel_layer is not None else get_channel_layer()
        self.link: ClusterLink | None = None
        self.ownership: Ownership = LocalOwnership()
        self.cluster = cluster
        if cluster is not None:
            self.link = ClusterLink(cluster, self.config, self.channel_layer, self._linked, self._lease_lost)
            self.ownership = self.link.ownership
        self._accounts: dict[int, AccountFeed] = {}
        self._joining: Counter[int] = Counter()  # watch() calls waiting to join an account's group
        self._budgets: dict[str, RateBudget] = {}
        self._closed = False

    # --- viewers ------------------------------------------------------------------------------------

    async def watch(self, account_id: int, viewer: str, notify: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Register interest; starts the account's upstream session if it is not running.

        ``notify``: called on the loop with the messages only this process's viewers need
        (``feed.resnapshot`` when their snapshot is out of date, and statuses only a follower knows
        about). Called directly, never through the channel layer, so a process with a thousand viewers
        does not fill its own channel-layer inbox.
        """
        self._check_open()
        if self.link is not None and account_id not in self._accounts:
            self._joining[account_id] += 1  # a leave in progress must not undo this join
            try:
                await self.link.join(account_id)  # before the account feed can ask anyone for a snapshot
            finally:
                self._joining[account_id] -= 1
                if not self._joining[account_id]:
                    del self._joining[account_id]
        self._check_open()
        self._account(account_id, create=True).add_viewer(viewer, notify)

    async def unwatch(self, account_id: int, viewer: str) -> None:
        account = self._accounts.get(account_id)
        if account is not None:
            account.remove_viewer(viewer)

    def viewers(self, account_id: int) -> int:
        account = self._accounts.get(account_id)
        return 0 if account is None else len(account.viewers)

    # --- data ---------------------------------------------------------------------------------------

    async def snapshot(self, account_id: int) -> FeedSnapshot:
        account = self._accounts.get(account_id)
        if account is None:
            status = lp.Status(lp.IDLE, "Nobody is watching this account.")
            return FeedSnapshot(account_id, 0, None, status, {}, {})
        return account.snapshot()

    async def snapshot_messages(self, account_id: int) -> tuple[int, float, list[str]]:
        """``(seq, status stamp, texts)``: the encoded parts of a full snapshot, from the cache (no
        upstream call). Send every text, in order, with nothing of this account in between."""
        account = self._accounts.get(account_id)
        if account is None:
            status = lp.Status(lp.IDLE, "Nobody is watching this account.")
            return 0, 0.0, [lp.encode(lp.snapshot_message(account_id, 0, None, status, [], []))]
        # A follower that has just started waits (briefly) for the owner's rows rather than showing none.
        await account.wait_mirrored(self.config.refresh_coalesce_seconds + 1.0)
        return await account.snapshot_texts()

    async def refresh(self, account_id: int, *, max_age: float | None = None) -> asyncio.Future[bool]:
        """Ask for a fetch; returns a future that resolves (True on success) when it is done.

        Coalesced: joins a fetch in flight, or is answered by a fetch that started less than
        ``max_age`` seconds ago (default: the coalescing window). A refresh for an account nobody
        watches does nothing (resolves False).
        """
        account = self._accounts.get(account_id)
        if account is None or self._closed:
            future: asyncio.Future[bool] = self.loop.create_future()
            future.set_result(False)
            return future
        return account.request_refresh(max_age)

    async def wait_for(
        self, account_id: int, predicate: Callable[[FeedSnapshot], bool], timeout: float
    ) -> FeedSnapshot:
        """Wait until ``predicate(snapshot)`` holds for a watched account (``TimeoutError`` otherwise)."""
        return await self._account(account_id, create=False).wait_for(predicate, timeout)

    def position(self, account_id: int) -> tuple[int, float]:
        """``(seq, status stamp)`` of the account's current state; what a socket that has it all holds."""
        account = self._accounts.get(account_id)
        return (0, 0.0) if account is None else account.state.status_key

    def status(self, account_id: int) -> lp.Status:
        """The account's current state; ``idle`` when nobody watches it. Safe from any thread."""
        account = self._accounts.get(account_id)
        return lp.Status(lp.IDLE) if account is None else account.state.status

    def statuses(self) -> dict[int, lp.Status]:
        return {account_id: account.state.status for account_id, account in dict(self._accounts).items()}

    def overviews(self) -> dict[int, AccountOverview]:
        """State and row counts of the accounts this process feeds. Safe from any thread."""
        result = {}
        for account_id, account in dict(self._accounts).items():
            status, _seq, counts = account.shared_status()
            result[account_id] = AccountOverview(status, *(counts or (None, None)))
        return result

    def stats(self, account_id: int) -> FeedStats:
        """Counters of the account's feed (fetches, pages, failures, sessions, pushes); zeros when not fed."""
        account = self._accounts.get(account_id)
        return FeedStats() if account is None else account.stats

    def is_running(self, account_id: int) -> bool:
        """Whether the account's feed (and possibly its upstream session) is running."""
        account = self._accounts.get(account_id)
        return account is not None and account.running

    # --- used by account feeds ----------------------------------------------------------------------

    def budget_for(self, key: str) -> RateBudget:
        """The weight budget of one key at one endpoint; shared with the other processes in a cluster.
        QFEX's own retry hints block it for at most the backoff cap."""
        config = self.config
        if self.cluster is not None:
            return self.cluster.budget(key, config.weight_per_second, config.budget_burst, config.backoff_cap_seconds)
        budget = self._budgets.get(key)
        if budget is None:
            budget = RateBudget(config.weight_per_second, config.budget_burst, max_block=config.backoff_cap_seconds)
            self._budgets[key] = budget
        return budget

    async def publish(self, group: str, payload: dict[str, Any]) -> None:
        if self.channel_layer is None:
            return
        try:
            await self.channel_layer.group_send(group, {"type": MESSAGE_TYPE, **payload})
        except Exception:  # a broken channel layer must not stop the feed; viewers resync later
            logger.warning("could not publish to %s", group, exc_info=True)

    def account_stopped(self, account: AccountFeed) -> None:
        if self._accounts.get(account.account_id) is not account:
            return
        if account.viewers and not self._closed:
            account.ensure_running()  # someone joined while it was stopping
            return
        del self._accounts[account.account_id]
        if self.link is not None and not self._closed:
            self.loop.create_task(self._leave(account.account_id), name="qfex-feed-cluster-leave")

    async def _leave(self, account_id: int) -> None:
        if self.link is not None:
            await self.link.leave(account_id, lambda: account_id in self._accounts or account_id in self._joining)

    def _linked(self) -> dict[int, AccountFeed]:
        return self._accounts

    def _lease_lost(self, account_id: int) -> None:
        account = self._accounts.get(account_id)
        if account is not None:
            account.lease_lost()

    def _account(self, account_id: int, *, create: bool) -> AccountFeed:
        account = self._accounts.get(account_id)
        if account is None:
            if not create:
                raise KeyError(f"no feed for account {account_id}")
            account = AccountFeed(self, account_id)
            self._accounts[account_id] = account
        return account

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the feed is shut down")

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self, timeout: float | None = None) -> None:
        """Close every upstream session and join the feed's threads."""
        if self._closed:
            return
        self._closed = True
        accounts = list(self._accounts.values())
        for account in accounts:
            account.stop()
        limit = timeout if timeout is not None else self.config.timeout_seconds + 5.0
        tasks = [task for task in (account.task for account in accounts) if task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=limit)
            if pending:
                logger.warning("feed shutdown: %d account feeds did not stop in %.0f s", len(pending), limit)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=limit)
        if self.link is not None:
            for account in accounts:
                await self.link.leave(account.account_id, lambda: False)
            await self.link.aclose()
        self._accounts.clear()
        # Joining the threads blocks; do it off the loop (the pool is idle by now).
        await asyncio.to_thread(self._join_threads)

    def _join_threads(self) -> None:
        self.reader.close()
        self.pool.shutdown(True, cancel_futures=True)


_feed: Feed | None = None


def get_feed() -> Feed:
    """The process's feed, created on first use inside the running event loop.

    A feed belongs to one loop. If the loop it was made on is gone (e.g. between tests), a new feed
    replaces it.
    """
    global _feed
    loop = asyncio.get_running_loop()
    if _feed is not None and _feed.loop is not loop:
        if not _feed.loop.is_closed() and not _feed.closed:
            logger.warning("the feed's event loop changed; starting a new feed")
        _feed.pool.shutdown(wait=False, cancel_futures=True)
        _feed.reader.close()
        _feed = None
    if _feed is None or _feed.closed:
        _feed = Feed(cluster=cluster_state_from_settings())
        _close_with_the_server(_feed)
    return _feed


def _close_with_the_server(feed: Feed) -> None:
    """Under Daphne, close the feed before the server exits (SIGTERM): upstream sessions end cleanly
    and, with several processes, the leases are released, so another process takes the accounts over
    at once instead of after the lease time."""
    reactor = sys.modules.get("twisted.internet.reactor")  # never import it: that would install one
    if reactor is None or getattr(reactor, "_asyncioEventloop", None) is not feed.loop:
        return
    from twisted.internet import defer

    def before_shutdown() -> Any:
        if feed.closed:
            return None
        return defer.Deferred.fromFuture(asyncio.ensure_future(feed.aclose(timeout=5.0)))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)


def current_feed() -> Feed | None:
    """The process's feed if it is running on the current event loop; never creates one."""
    feed = _feed
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return feed if feed is not None and feed.loop is loop and not feed.closed else None


async def shutdown_feed() -> None:
    """Close the process's feed, if any (tests, worker shutdown)."""
    global _feed
    feed, _feed = _feed, None
    if feed is not None and feed.loop is asyncio.get_running_loop():
        await feed.aclose()
    elif feed is not None:
        feed.pool.shutdown(wait=False, cancel_futures=True)
        feed.reader.close()


def account_overviews() -> dict[int, AccountOverview]:
    """State and row counts of every account being fed (others are idle). Safe from any thread.

    With several processes (``REDIS_URL``) the owners' entries are read from Redis, so every process's
    accounts page shows the same; if Redis cannot be reached, this process's own view is shown.
    """
    from django.conf import settings

    feed = _feed
    local = {} if feed is None else feed.overviews()
    url = settings.REDIS_URL
    if not url:
        return local
    try:
        shared = read_overviews(url, settings.QFEXDASH_REDIS_PREFIX)
    except Exception:
        logger.warning("could not read account statuses from Redis; showing this process's view", exc_info=True)
        return local
    return {
        **local,
        **{key: AccountOverview(status, *(counts or (None, None))) for key, (status, counts) in shared.items()},
    }


def account_statuses() -> dict[int, lp.Status]:
    """State of every account being fed (others are idle). Safe from any thread."""
    return {account_id: overview.status for account_id, overview in account_overviews().items()}
