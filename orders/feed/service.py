"""The feed: at most one upstream QFEX session per account, shared by every viewer.

Public API (all coroutines run on the feed's event loop — the server's loop under Daphne)::

    feed = get_feed()                                   # the process's feed, bound to the running loop
    await feed.watch(account_id, viewer)                # a viewer (a consumer's channel name) is interested
    await feed.unwatch(account_id, viewer)
    seq, texts = await feed.snapshot_messages(account_id) # the encoded snapshot's parts, from the cache
    snap = await feed.snapshot(account_id)              # FeedSnapshot(account, seq, as_of, status, orders, twaps)
    done = await feed.refresh(account_id, max_age=None) # asyncio.Future[bool]; await it to wait for the fetch
    snap = await feed.wait_for(account_id, predicate, timeout)
    feed.status(account_id) -> Status                   # also safe from other threads (pages)
    await shutdown_feed()                               # stop every session, join the pool's threads

Viewers get updates through the channel layer: group ``account.<id>`` (:func:`group_name`) receives
``{"type": "feed.message", "account", "seq", "kind": "diff"|"status", "text": <encoded message>}``;
the text is encoded once and relayed as is by every consumer.

How it behaves (design.md §2):

- Upstream work (connect, auth, subscribe, fetch, waiting for pushes) and the feed's DB reads run in
  a bounded ``ThreadPoolExecutor`` (``QFEXDASH_FEED_THREADS``), never on the event loop nor on
  asgiref's shared sync thread; every socket call has the client's timeout (``QFEX_TIMEOUT_SECONDS``).
- Fetches are single-flight and coalesced (``QFEXDASH_REFRESH_COALESCE_SECONDS``); an
  ``order_responses`` push triggers one; so does every ``QFEXDASH_RECONCILE_SECONDS`` while watched.
- Fetches are paced by a per-API-key budget of QFEX weight (``QFEXDASH_RATE_BUDGET_SHARE`` of
  12 000 / 60 s; 5 per ``get_user_orders`` page): work beyond it is deferred, not dropped.
- A fetch that changes rows publishes a diff (seq + 1) — several consecutive diffs when the change is
  larger than ``QFEXDASH_WS_ROWS_PER_MESSAGE`` rows; one that changes nothing publishes a small
  ``live`` status heartbeat. No periodic full snapshots: a viewer gets a snapshot when it joins or
  asks (``resync``), and every heartbeat carries the seq so a page that lost a diff notices.
- Failures keep the last good rows and publish ``stale`` with the cause and the next try; reconnects
  back off exponentially with full jitter (``QFEXDASH_BACKOFF_BASE_SECONDS``..``_CAP_SECONDS``).
  A rejected key or unreadable secret publishes ``error`` and is retried only after
  ``QFEXDASH_AUTH_RETRY_SECONDS`` (300 s), or at once when the account's key or settings change
  (checked every interval, and on a refresh). ``RateLimited`` pauses the key for QFEX's hint.
- No viewers for one reconcile interval → the session closes and the account's cache is dropped.
  QFEX closing a healthy session (maximum lifetime) → a transparent reconnect and a fetch.
- Ownership goes through a lease (:mod:`orders.leases`). With one process it is in-process. With
  ``REDIS_URL`` set (several Daphne processes) it is a Redis lease, and :mod:`orders.feed_cluster`
  makes the feed cluster-wide: one process owns each account's upstream session, the others mirror
  its rows and forward refreshes to it, and another process takes over when the owner dies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer

from orders import live_protocol as lp
from orders.cluster_state import ClusterState
from orders.feed_account import AccountFeed, FeedSnapshot, FeedStats
from orders.feed_budget import RateBudget
from orders.feed_cluster import ClusterLink, cluster_state_from_settings
from orders.feed_config import FeedConfig, group_name
from orders.leases import Leases, LocalLeases

__all__ = [
    "AccountOverview",
    "Feed",
    "FeedConfig",
    "FeedSnapshot",
    "FeedStats",
    "account_overviews",
    "account_statuses",
    "current_feed",
    "get_feed",
    "group_name",
    "shutdown_feed",
]

logger = logging.getLogger("orders.feed")

MESSAGE_TYPE = "feed.message"  # handled by consumers' feed_message()


@dataclass(frozen=True)
class AccountOverview:
    """What the accounts list shows of one account's feed: its state and how many rows it holds."""

    status: lp.Status
    orders: int | None = None  # None: not known in this process (nobody watches it here)
    twaps: int | None = None


class Feed:
    """Every account feed of this process. Create it inside the event loop it will run on.

    ``cluster``: the shared Redis state of several server processes; the feed then takes its leases,
    rate budgets and viewer interest from it and follows accounts other processes own (see
    :mod:`orders.feed_cluster`). The process's feed (:func:`get_feed`) gets one when ``REDIS_URL`` is set.
    """

    def __init__(
        self,
        config: FeedConfig | None = None,
        *,
        channel_layer: Any = None,
        leases: Leases | None = None,
        cluster: ClusterState | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.config = config or FeedConfig.from_settings()
        self.pool = ThreadPoolExecutor(max_workers=self.config.threads, thread_name_prefix="qfex-feed")
        self.channel_layer = channel_layer if channel_layer is not None else get_channel_layer()
        # Replaced by the feed's inbox channel name once the cluster link starts (see feed_cluster).
        self.owner_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.cluster: ClusterLink | None = None
        if cluster is not None:
            self.cluster = ClusterLink(self, cluster)
            self.leases: Leases = cluster.leases
        else:
            self.leases = leases or LocalLeases()
        self._accounts: dict[int, AccountFeed] = {}
        self._budgets: dict[str, RateBudget] = {}
        self._closed = False

    # --- viewers ------------------------------------------------------------------------------------

    async def watch(self, account_id: int, viewer: str, notify: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Register interest; starts the account's upstream session if it is not running.

        ``notify``: called on the loop with the messages only this process's viewers need (with several
        processes: ``feed.resnapshot`` when a follower's mirror has just been filled, and statuses only a
        follower knows about). Called directly, never through the channel layer, so a follower with a
        thousand viewers does not fill its own channel-layer inbox.
        """
        self._check_open()
        if self.cluster is not None and account_id not in self._accounts:
            await self.cluster.join(account_id)  # before the account feed can ask anyone for a snapshot
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

    async def snapshot_messages(self, account_id: int) -> tuple[int, list[str]]:
        """``(seq, texts)``: the encoded parts of a full snapshot, from the cache (no upstream call).

        Send every text, in order, with nothing of this account in between (see ``live_protocol``).
        """
        account = self._accounts.get(account_id)
        if account is None:
            snap = await self.snapshot(account_id)
            return snap.seq, [lp.encode(lp.snapshot_message(account_id, snap.seq, None, snap.status, [], []))]
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

    def status(self, account_id: int) -> lp.Status:
        """The account's current state; ``idle`` when nobody watches it. Safe from any thread."""
        account = self._accounts.get(account_id)
        return lp.Status(lp.IDLE) if account is None else account.status

    def statuses(self) -> dict[int, lp.Status]:
        return {account_id: account.status for account_id, account in dict(self._accounts).items()}

    def counts(self) -> dict[int, tuple[int, int]]:
        """``{account: (open orders, active TWAPs)}`` of the accounts this process holds rows for."""
        return {
            account_id: (len(account.orders), len(account.twaps))
            for account_id, account in dict(self._accounts).items()
            if account.data_as_of is not None
        }

    def stats(self, account_id: int) -> FeedStats:
        """Counters of the account's feed (fetches, pages, failures, sessions); zeros when not fed."""
        account = self._accounts.get(account_id)
        return FeedStats() if account is None else account.stats

    def is_running(self, account_id: int) -> bool:
        """Whether an upstream loop (and possibly a session) exists for the account."""
        account = self._accounts.get(account_id)
        return account is not None and account.running

    # --- used by account feeds ----------------------------------------------------------------------

    def budget_for(self, key: str) -> RateBudget:
        """The weight budget of one API key; shared with the other processes in a cluster."""
        if self.cluster is not None:
            return self.cluster.state.budget(key, self.config.weight_per_second, self.config.budget_burst)
        budget = self._budgets.get(key)
        if budget is None:
            budget = RateBudget(self.config.weight_per_second, self.config.budget_burst)
            self._budgets[key] = budget
        return budget

    async def publish(self, group: str, payload: dict[str, Any]) -> None:
        if self.channel_layer is None:
            return
        try:
            await self.channel_layer.group_send(group, {"type": MESSAGE_TYPE, **payload})
        except Exception:  # a broken channel layer must not stop the feed; viewers resync later
            logger.warning("could not publish to %s", group, exc_info=True)

    def _account_stopped(self, account: AccountFeed) -> None:
        if self._accounts.get(account.account_id) is not account:
            return
        if account.viewers and not self._closed:
            account.ensure_running()  # someone joined while the session was closing
        else:
            del self._accounts[account.account_id]
            if self.cluster is not None and not self._closed:
                self.loop.create_task(self._cluster_forget(account.account_id), name="qfex-feed-cluster-leave")

    async def _cluster_forget(self, account_id: int) -> None:
        if self.cluster is not None and account_id not in self._accounts:  # not watched again meanwhile
            await self.cluster.leave(account_id)

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
        """Close every upstream session and join the pool's threads."""
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
        if self.cluster is not None:
            for account in accounts:
                await self.cluster.leave(account.account_id)
            await self.cluster.aclose()
        self._accounts.clear()
        # Joining the threads blocks; do it off the loop (the pool is idle by now).
        await asyncio.to_thread(self.pool.shutdown, True, cancel_futures=True)


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


def account_statuses() -> dict[int, lp.Status]:
    """State of every account being fed (others are idle). Safe from any thread.

    With several processes (``REDIS_URL``) the owners' statuses are read from Redis, so every process's
    accounts page shows the same; if Redis cannot be reached, this process's own view is shown.
    """
    from django.conf import settings

    feed = _feed
    local = {} if feed is None else feed.statuses()
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return local
    from orders.cluster_state import read_statuses

    try:
        return {**local, **read_statuses(url, getattr(settings, "QFEXDASH_REDIS_PREFIX", "qfexdash"))}
    except Exception:
        logger.warning("could not read account statuses from Redis; showing this process's view", exc_info=True)
        return local


def account_overviews() -> dict[int, AccountOverview]:
    """State and row counts of every account being fed (others are idle). Safe from any thread."""
    feed = _feed
    counts = {} if feed is None else feed.counts()
    return {
        account_id: AccountOverview(status, *counts.get(account_id, (None, None)))
        for account_id, status in account_statuses().items()
    }
