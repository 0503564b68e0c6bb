"""The feed across several server processes (``REDIS_URL`` set): one owner per account, the others follow.

Without ``REDIS_URL`` none of this runs and the feed stays in its process, exactly as before.

Roles, per account and per process (an :class:`~orders.feed_account.AccountFeed` switches between them):

- **Owner** — the process whose account feed holds the account's lease in Redis
  (:class:`orders.leases.RedisLeases`, ``SET NX PX``). Only the owner opens the upstream QFEX session,
  fetches, and publishes diffs and statuses to the group ``account.<id>``. The lease's value is the
  owner's *inbox* (a channel-layer channel of its feed), so other processes know where to send requests.
  The lease is renewed by this module's ticker every third of ``QFEXDASH_LEASE_SECONDS``, apart from
  upstream calls that may block for seconds. A renewal that fails, or comes too late, makes the owner
  stop publishing at once and close its session as soon as the upstream call in flight returns; it
  keeps its upstream lease through failures and backoff, so a rejected key is not retried by every
  process in turn.
- **Follower** — a process with viewers of an account it does not own. Its consumers are in the
  account's group already, so the owner's diffs reach them with no relay. The follower's feed keeps a
  *mirror* of the owner's rows (its inbox is in the group too, and applies each diff in seq order), so a
  viewer joining in this process gets its snapshot locally at once, like on the owner. The mirror is
  filled by asking the owner for its snapshot (below) when it starts and after a seq gap; when it has
  been (re)filled, the follower sends its local viewers a fresh snapshot. Refresh requests are forwarded
  to the owner, whose coalescing then applies cluster-wide (viewer count never changes QFEX traffic).
  A follower tries to take the lease every third of the lease time: when the owner dies, its lease
  expires and the first follower to try becomes the owner. Its seq then jumps (wall-clock ms, at least
  1000 above the mirror's), so every page sees a gap and resyncs rather than applying a diff computed
  against rows it may not have.

Snapshot on join in a follower: **asked from the owner over the channel layer**, not kept in Redis.
A follower sends ``feed.snapshot_request`` to the owner's inbox and the owner answers on the follower's
inbox with its cached, already-encoded parts. Keeping the latest snapshot in Redis instead would make
the owner re-write the whole book (megabytes for 10 000 orders) on every change, whether or not
anybody in another process is watching; asking costs one message per follower (re)sync, which happens
once per process and account, plus after a lost message.

Viewer interest: each process with local viewers of an account refreshes its entry in
``<prefix>:interest:<id>`` every tick (TTL: the lease time). The owner keeps its upstream session while
it has viewers of its own or any other process's entry is live; with none, the session closes after
one reconcile interval as in a single process. The owner also writes the account's status to Redis on
every change and every tick, which is what the accounts page of every process shows
(:func:`orders.feed.account_statuses`). See :mod:`orders.cluster_state` for the keys.

Channel-layer messages (between feeds' inboxes; browsers never see these):
``feed.snapshot_request {account, reply_to}``, ``feed.snapshot_reply {account, seq, texts}``,
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
from typing import TYPE_CHECKING, Any

import orjson

from orders import live_protocol as lp
from orders.cluster_state import ClusterState
from orders.feed_config import group_name
from orders.rows import Row

if TYPE_CHECKING:
    from orders.feed import Feed
    from orders.feed_account import AccountFeed

logger = logging.getLogger("orders.feed")

SNAPSHOT_REQUEST = "feed.snapshot_request"
SNAPSHOT_REPLY = "feed.snapshot_reply"
REFRESH_REQUEST = "feed.refresh_request"
RESNAPSHOT = "feed.resnapshot"  # handled by consumers' feed_resnapshot()
STOP = "feed.stop"  # to our own inbox, when the feed shuts down
PUBLISHED = "feed.message"  # what the owner publishes to the account group
GROUP_REJOIN_SECONDS = 600.0  # as orders.consumers: group memberships expire after an hour


def lease_name(account_id: int) -> str:
    return f"qfexdash.feed.account.{int(account_id)}"


# --- the mirror: rebuilding rows from the owner's published messages --------------------------------


class MirrorGap(Exception):
    """A published message does not follow the mirror's seq: the mirror needs a fresh snapshot."""


def parse_snapshot(texts: list[str]) -> tuple[int, float | None, lp.Status, dict[str, Row], dict[str, Row]]:
    """``(seq, as_of, status, orders, twaps)`` from a snapshot's encoded parts (blocking for big ones)."""
    orders: dict[str, Row] = {}
    twaps: dict[str, Row] = {}
    first: dict[str, Any] | None = None
    for text in texts:
        message = orjson.loads(text)
        if message.get("type") != lp.SNAPSHOT:
            raise ValueError("not a snapshot part")
        if first is None:
            first = message
        elif message["seq"] != first["seq"]:
            raise ValueError("snapshot parts of different seqs")
        for row in message["orders"]:
            orders[row["id"]] = row
        for row in message["twaps"]:
            twaps[row["id"]] = row
    if first is None:
        raise ValueError("an empty snapshot")
    return first["seq"], first["as_of"], status_from_dict(first["status"]), orders, twaps


def status_from_dict(data: dict[str, Any]) -> lp.Status:
    return lp.Status(data["state"], data.get("reason") or "", data.get("as_of"), data.get("next_retry_at"))


def apply_diff(
    orders: dict[str, Row], twaps: dict[str, Row], message: dict[str, Any]
) -> tuple[dict[str, Row], dict[str, Row]]:
    """New row dicts with one diff applied (the old dicts may be in a snapshot being encoded: never mutated)."""
    result = []
    for name, rows in (("orders", orders), ("twaps", twaps)):
        upserts, removes = message["upsert"][name], message["remove"][name]
        if upserts or removes:
            rows = dict(rows)
            for row in upserts:
                rows[row["id"]] = row
            for row_id in removes:
                rows.pop(row_id, None)
        result.append(rows)
    return result[0], result[1]


# --- the per-process link ----------------------------------------------------------------------------


class ClusterLink:
    """This process's side of the cluster: its inbox, the ticker, requests to owners. One per Feed."""

    def __init__(self, feed: Feed, state: ClusterState) -> None:
        self.feed = feed
        self.state = state
        self.leases = state.leases
        self.inbox = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._noted: set[int] = set()  # accounts whose interest entry this process wrote
        self._started = False
        self._closed = False
        self._rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS

    @property
    def lease_seconds(self) -> float:
        return self.feed.config.lease_seconds

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
        inbox = await self.feed.channel_layer.new_channel()
        if self._started:  # another watch() started the link while we awaited
            return
        self._started = True
        self.inbox = inbox
        self.feed.owner_id = self.inbox  # the lease value tells others where the owner listens
        loop = self.feed.loop
        self._tasks = [
            loop.create_task(self._read_inbox(), name="qfex-feed-cluster-inbox"),
            loop.create_task(self._tick_forever(), name="qfex-feed-cluster-ticker"),
        ]

    # --- accounts joining and leaving this process ------------------------------------------------

    async def join(self, account_id: int) -> None:
        """Our inbox receives what the account's owner publishes (for the mirror)."""
        await self.start()
        await self.feed.channel_layer.group_add(group_name(account_id), self.inbox)

    async def leave(self, account_id: int) -> None:
        with contextlib.suppress(Exception):
            await self.feed.channel_layer.group_discard(group_name(account_id), self.inbox)
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
            await self.feed.channel_layer.send(channel, message)
        except Exception:  # a full or unreachable inbox: the caller retries on its next tick
            logger.warning("could not send %s to %s", message.get("type"), channel, exc_info=True)
            return False
        return True

    async def request_snapshot(self, account_id: int) -> bool:
        owner = await self.owner_inbox(account_id)
        if owner is None:
            return False
        return await self.send(owner, {"type": SNAPSHOT_REQUEST, "account": account_id, "reply_to": self.inbox})

    async def forward_refresh(self, account_id: int, max_age: float | None) -> bool:
        owner = await self.owner_inbox(account_id)
        if owner is None:
            return False
        return await self.send(owner, {"type": REFRESH_REQUEST, "account": account_id, "max_age": max_age})

    async def publish_status(self, account_id: int, status: lp.Status) -> None:
        try:
            await self.state.publish_status(account_id, status, 2 * self.lease_seconds)
        except Exception:
            logger.warning("account %s: could not write its status to Redis", account_id, exc_info=True)

    async def clear_status(self, account_id: int) -> None:
        with contextlib.suppress(Exception):
            await self.state.clear_status(account_id)

    # --- the inbox --------------------------------------------------------------------------------

    async def _read_inbox(self) -> None:
        layer = self.feed.channel_layer
        while not self._closed:
            try:
                message = await layer.receive(self.inbox)
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
        account = self.feed._accounts.get(message.get("account"))  # type: ignore[arg-type]
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

    async def _answer_snapshot(self, account: AccountFeed, reply_to: str) -> None:
        seq, texts = await account.snapshot_texts()
        if account.owns():
            reply = {"type": SNAPSHOT_REPLY, "account": account.account_id, "seq": seq, "texts": texts}
            await self.send(reply_to, reply)

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = self.feed.loop.create_task(coroutine, name=name)
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
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("feed cluster tick failed", exc_info=True)
            await asyncio.sleep(max(self.tick_seconds - (time.monotonic() - started), 0.05))

    async def tick(self) -> None:
        """Renew our leases, note our viewers' interest, learn whether others still watch what we own."""
        if time.monotonic() >= self._rejoin_at:
            # Group memberships expire (CHANNEL_LAYER_GROUP_EXPIRY); renew ours like consumers do.
            self._rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS
            for account_id in list(self.feed._accounts):
                await self.feed.channel_layer.group_add(group_name(account_id), self.inbox)
        for account in list(self.feed._accounts.values()):
            account_id = account.account_id
            if account.viewers:
                await self.state.note_interest(account_id, self.inbox, self.lease_seconds)
                self._noted.add(account_id)
            elif account_id in self._noted:
                self._noted.discard(account_id)
                await self.state.drop_interest(account_id, self.inbox)
            if account.holds_lease:
                asked_at = time.monotonic()
                if await self.leases.renew(lease_name(account_id), self.inbox, self.lease_seconds):
                    account.lease_renewed(asked_at + self.lease_seconds)
                    others = await self.state.other_interest(account_id, self.inbox)
                    account.set_remote_interest(others > 0)
                    await self.publish_status(account_id, account.status)
                else:
                    account.lease_lost()

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
        await asyncio.wait(tasks, timeout=self.lease_seconds)
        for account_id in list(self._noted):
            with contextlib.suppress(Exception):
                await self.state.drop_interest(account_id, self.inbox)
        self._noted.clear()
        await self.state.aclose()


def cluster_state_from_settings() -> ClusterState | None:
    """The shared Redis state when ``REDIS_URL`` is set (several server processes), else None."""
    from django.conf import settings

    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    return ClusterState(url, getattr(settings, "QFEXDASH_REDIS_PREFIX", "qfexdash"))
