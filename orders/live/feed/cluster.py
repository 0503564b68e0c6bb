"""The feed across several server processes (``REDIS_URL`` set): one owner per account, the others follow.

Without ``REDIS_URL`` none of this runs and the feed stays in its process, exactly as before.

Roles, per account and per process (an :class:`~orders.live.feed.account.AccountFeed` switches between them):

- **Owner** — the process whose account feed holds the account's lease in Redis
  (:class:`orders.live.feed.leases.RedisLeases`, ``SET NX PX``). Only the owner opens the upstream QFEX session,
  fetches, and publishes diffs and statuses to the group ``account.<id>``. The lease's value is the
  owner's *inbox* (a channel-layer channel of its feed), so other processes know where to send requests.
  The lease is renewed by this module's ticker every third of ``QFEXDASH_LEASE_SECONDS``
  (:class:`orders.live.feed.ownership.ClusterOwnership`: every lease in one tick, each renewal isolated; a
  renewal Redis could not answer keeps the lease until its known expiry). A lease Redis says is gone,
  or one past its known expiry, makes the owner stop publishing at once and close its session as soon
  as the upstream call in flight returns; it keeps its lease through upstream failures and backoff, so a
  rejected key is not retried by every process in turn.
- **Follower** — a process with viewers of an account it does not own. Its consumers are in the
  account's group already, so the owner's diffs reach them with no relay. The follower's feed keeps a
  *mirror* of the owner's rows (its inbox is in the group too, and applies each diff in seq order), so a
  viewer joining in this process gets its snapshot locally at once, like on the owner. The mirror is
  filled by asking the owner for its snapshot (below) when it starts and after a seq gap; when it has
  been (re)filled, the follower sends its local viewers a fresh snapshot. Refresh requests are forwarded
  to the owner, whose coalescing then applies cluster-wide (viewer count never changes QFEX traffic).
  A follower tries to take the lease every third of the lease time: when the owner dies, its lease
  expires and the first follower to try becomes the owner. Its seq then jumps 1000 above the highest
  seq it knows anyone published — the mirror's, any message it saw, the seq the old owner wrote to
  Redis with its status — and never below its own clock's milliseconds, so every page sees a gap and
  resyncs rather than applying a diff computed against rows it may not have.

Snapshot on join in a follower: **asked from the owner over the channel layer**, not kept in Redis.
A follower sends ``feed.snapshot_request`` to the owner's inbox and the owner answers on the follower's
inbox with its cached, already-encoded parts. Keeping the latest snapshot in Redis instead would make
the owner re-write the whole book (megabytes for 10 000 orders) on every change, whether or not
anybody in another process is watching; asking costs one message per follower (re)sync, which happens
once per process and account, plus after a lost message.

Viewer interest: each process with local viewers of an account refreshes its entry in
``<prefix>:interest:<id>`` every tick (TTL: the lease time). The owner keeps its upstream session while
it has viewers of its own or any other process's entry is live; with none, the session closes after
one reconcile interval as in a single process. The owner also writes the account's status, seq and row
counts to Redis on every change and every tick, which is what the accounts page of every process shows
(:func:`orders.live.feed.account_overviews`). See :mod:`orders.live.feed.redis_state` for the keys. Joining and
leaving an account's group are serialised per account, and a leave checks, under that lock, that
nobody started watching the account again meanwhile.

Channel-layer messages (between feeds' inboxes; browsers never see these):
``feed.snapshot_request {account, reply_to}``, ``feed.snapshot_reply {account, seq, stamp, texts}``,
``feed.refresh_request {account, max_age}``. A follower tells its own consumers (``feed.resnapshot
{account}``, or a status only it knows) through the callbacks they registered with ``Feed.watch``, not
through the channel layer: a thousand separate sends would overflow the process's channel-layer inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from orders.live import protocol as lp

from .config import FeedConfig, group_name
from .ownership import ClusterOwnership, lease_name
from .redis_state import ClusterState

logger = logging.getLogger("orders.live.feed")

SNAPSHOT_REQUEST = "feed.snapshot_request"
SNAPSHOT_REPLY = "feed.snapshot_reply"
REFRESH_REQUEST = "feed.refresh_request"
RESNAPSHOT = "feed.resnapshot"  # handled by consumers' feed_resnapshot()
STOP = "feed.stop"  # to our own inbox, when the feed shuts down
PUBLISHED = "feed.message"  # what the owner publishes to the account group
GROUP_REJOIN_SECONDS = 600.0  # as orders.live.consumers: group memberships expire after an hour


class LinkedAccount(Protocol):
    """What the link needs from an account feed of this process."""

    account_id: int
    viewers: set[str]

    def owns(self) -> bool: ...

    def on_published(self, event: dict[str, Any]) -> None: ...

    async def on_snapshot_reply(self, event: dict[str, Any]) -> None: ...

    async def snapshot_texts(self) -> tuple[int, float, list[str]]: ...

    def request_refresh(self, max_age: float | None = None) -> asyncio.Future[bool]: ...

    def set_remote_interest(self, interested: bool) -> None: ...

    def shared_status(self) -> tuple[lp.Status, int, tuple[int, int] | None]: ...


class ClusterLink:
    """This process's side of the cluster: its inbox, the ticker, requests to owners. One per Feed.

    ``accounts`` gives the account feeds of this process by id; ``on_lost`` is called with an account id
    when its lease turns out to be gone.
    """

    def __init__(
        self,
        state: ClusterState,
        config: FeedConfig,
        channel_layer: Any,
        accounts: Callable[[], Mapping[int, LinkedAccount]],
        on_lost: Callable[[int], None],
    ) -> None:
        self.state = state
        self.config = config
        self.channel_layer = channel_layer
        self._accounts = accounts
        self.leases = state.leases
        self.inbox = ""
        self.ownership = ClusterOwnership(state.leases, config.lease_seconds, on_lost, lambda: self.inbox)
        self._tasks: list[asyncio.Task[None]] = []
        self._noted: set[int] = set()  # accounts whose interest entry this process wrote
        self._group_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._started = False
        self._closed = False
        self._rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS

    @property
    def lease_seconds(self) -> float:
        return self.config.lease_seconds

    @property
    def tick_seconds(self) -> float:
        return self.lease_seconds / 3

    def follower_retry_seconds(self) -> float:
        """When a follower next tries the lease: a tick, jittered so followers do not all try at once."""
        return self.tick_seconds * random.uniform(0.5, 1.0)  # noqa: S311  (load spreading only)

    async def start(self) -> None:
        if self._started:
            return
        # The default "specific." prefix: channels_redis pulls every channel of that prefix from one
        # per-process key, whichever receiver holds its lock. A channel of its own prefix would only be
        # read when its own receive got the lock, seconds later behind busy consumers.
        inbox = await self.channel_layer.new_channel()
        if self._started:  # another watch() started the link while we awaited
            return
        self._started = True
        self.inbox = inbox  # the lease value tells others where the owner listens
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_inbox(), name="qfex-feed-cluster-inbox"),
            loop.create_task(self._tick_forever(), name="qfex-feed-cluster-ticker"),
        ]

    # --- accounts joining and leaving this process ------------------------------------------------

    async def join(self, account_id: int) -> None:
        """Our inbox receives what the account's owner publishes (for the mirror)."""
        await self.start()
        async with self._group_locks[account_id]:
            await self.channel_layer.group_add(group_name(account_id), self.inbox)

    async def leave(self, account_id: int, still_wanted: Callable[[], bool]) -> None:
        """Leave the account's group unless ``still_wanted()`` says someone watches it again (checked
        under the account's lock, after any join in progress)."""
        async with self._group_locks[account_id]:
            if still_wanted():
                return
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group_name(account_id), self.inbox)
            if account_id in self._noted:
                self._noted.discard(account_id)
                with contextlib.suppress(Exception):
                    await self.state.drop_interest(account_id, self.inbox)

    # --- requests to the owner --------------------------------------------------------------------

    async def owner_inbox(self, account_id: int) -> str | None:
        holder = await self.leases.holder(lease_name(account_id))
        return holder if holder and holder != self.inbox else None

    async def send(self, channel: str, message: dict[str, Any]) -> bool:
        try:
            await self.channel_layer.send(channel, message)
        except Exception:  # a full or unreachable inbox: the caller retries on its next tick
            logger.warning("could not send %s to %s", message.get("type"), channel, exc_info=True)
            return False
        return True

    async def request_snapshot(self, account_id: int) -> bool:
        owner = await self._owner_or_none(account_id)
        if owner is None:
            return False
        return await self.send(owner, {"type": SNAPSHOT_REQUEST, "account": account_id, "reply_to": self.inbox})

    async def forward_refresh(self, account_id: int, max_age: float | None) -> bool:
        owner = await self._owner_or_none(account_id)
        if owner is None:
            return False
        return await self.send(owner, {"type": REFRESH_REQUEST, "account": account_id, "max_age": max_age})

    async def _owner_or_none(self, account_id: int) -> str | None:
        try:
            return await self.owner_inbox(account_id)
        except Exception:
            logger.warning("account %s: could not look up its owner in Redis", account_id, exc_info=True)
            return None

    async def last_known_seq(self, account_id: int) -> int:
        """The seq the account's last owner wrote with its status (0 when none is left in Redis)."""
        try:
            return await self.state.read_seq(account_id)
        except Exception:
            logger.warning("account %s: could not read its last seq from Redis", account_id, exc_info=True)
            return 0

    async def share_status(self, account: LinkedAccount) -> None:
        status, seq, counts = account.shared_status()
        try:
            await self.state.publish_status(account.account_id, status, 2 * self.lease_seconds, seq=seq, counts=counts)
        except Exception:
            logger.warning("account %s: could not write its status to Redis", account.account_id, exc_info=True)

    async def clear_status(self, account_id: int) -> None:
        with contextlib.suppress(Exception):
            await self.state.clear_status(account_id)

    # --- the inbox --------------------------------------------------------------------------------

    async def _read_inbox(self) -> None:
        while not self._closed:
            try:
                message = await self.channel_layer.receive(self.inbox)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("feed inbox: receive failed; retrying", exc_info=True)
                await asyncio.sleep(self.tick_seconds)
                continue
            if message.get("type") == STOP:
                return
            try:
                self._dispatch(message)
            except Exception:
                logger.exception("feed inbox: could not handle a %s message", message.get("type"))

    def _dispatch(self, message: dict[str, Any]) -> None:
        account = self._accounts().get(message.get("account"))  # type: ignore[arg-type]
        kind = message.get("type")
        if account is None:
            return
        if kind == PUBLISHED:
            account.on_published(message)
        elif kind == SNAPSHOT_REPLY:
            self._spawn(account.on_snapshot_reply(message), "qfex-feed-cluster-mirror")
        elif kind == SNAPSHOT_REQUEST and account.owns():
            self._spawn(self._answer_snapshot(account, message["reply_to"]), "qfex-feed-cluster-answer")
        elif kind == REFRESH_REQUEST and account.owns():
            account.request_refresh(message.get("max_age"))

    async def _answer_snapshot(self, account: LinkedAccount, reply_to: str) -> None:
        seq, stamp, texts = await account.snapshot_texts()
        if account.owns():
            reply = {"type": SNAPSHOT_REPLY, "account": account.account_id, "seq": seq, "stamp": stamp, "texts": texts}
            await self.send(reply_to, reply)

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("feed cluster task %s failed", task.get_name(), exc_info=task.exception())

    # --- the ticker: leases, interest, statuses ---------------------------------------------------

    async def _tick_forever(self) -> None:
        while not self._closed:
            started = time.monotonic()
            await self.tick()
            await asyncio.sleep(max(self.tick_seconds - (time.monotonic() - started), 0.05))

    async def tick(self) -> None:
        """Renew our leases, then note our viewers' interest and share the statuses of what we own —
        each account on its own, so one account's error never skips the others."""
        try:
            await self.ownership.renew_all()
        except Exception:
            logger.warning("feed cluster: renewing leases failed", exc_info=True)
        if time.monotonic() >= self._rejoin_at:
            # Group memberships expire (CHANNEL_LAYER_GROUP_EXPIRY); renew ours like consumers do.
            self._rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS
            for account_id in list(self._accounts()):
                with contextlib.suppress(Exception):
                    await self.channel_layer.group_add(group_name(account_id), self.inbox)
        for account in list(self._accounts().values()):
            try:
                await self._tick_account(account)
            except Exception:
                logger.warning("feed cluster: the tick of account %s failed", account.account_id, exc_info=True)

    async def _tick_account(self, account: LinkedAccount) -> None:
        account_id = account.account_id
        if account.viewers:
            await self.state.note_interest(account_id, self.inbox, self.lease_seconds)
            self._noted.add(account_id)
        elif account_id in self._noted:
            self._noted.discard(account_id)
            await self.state.drop_interest(account_id, self.inbox)
        if account.owns():
            others = await self.state.other_interest(account_id, self.inbox)
            account.set_remote_interest(others > 0)
            await self.share_status(account)

    # --- lifecycle --------------------------------------------------------------------------------

    async def aclose(self) -> None:
        self._closed = True
        tasks, self._tasks = list(self._tasks), []
        reader = next((task for task in tasks if task.get_name() == "qfex-feed-cluster-inbox"), None)
        if reader is not None and not reader.done():
            # Wake the reader with a message rather than cancelling it: a receive cancelled at the wrong
            # moment can leave channels_redis waiting until the process ends.
            await self.send(self.inbox, {"type": STOP})
            await asyncio.wait([reader], timeout=2 * self.tick_seconds)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.lease_seconds)
        for account_id in list(self._noted):
            with contextlib.suppress(Exception):
                await self.state.drop_interest(account_id, self.inbox)
        self._noted.clear()
        await self.state.aclose()


def cluster_state_from_settings() -> ClusterState | None:
    """The shared Redis state when ``REDIS_URL`` is set (several server processes), else None."""
    from django.conf import settings

    url = settings.REDIS_URL
    if not url:
        return None
    return ClusterState(url, settings.QFEXDASH_REDIS_PREFIX)
