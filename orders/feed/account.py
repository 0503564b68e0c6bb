"""One account's feed: its upstream session, its rows, its seq, its state — a small state machine.

Everything here runs on the feed's event loop and mutates state only there; every blocking call
(database, QFEX socket) goes to the feed's bounded pool through :meth:`AccountFeed._in_pool`, one
call at a time, so the session is never used by two threads at once.

The loop, one step at a time:

1. nobody watching for a whole reconcile interval → close the session and stop;
2. backing off after a failure → wait (reading pushes if a session is still open);
3. no session → load the account (DB, in the pool), take the lease, connect + auth + subscribe;
4. a fetch is due (first fetch, refresh, push, or reconcile) and allowed (coalescing window and
   rate budget) → fetch all pages, diff against the last rows, publish;
5. otherwise → wait for ``order_response`` pushes for a short slice.

Refresh semantics: a refresh while a fetch runs joins it; one asked for within the coalescing
window after a fetch started (or within ``max_age`` of it) is answered by that fetch; otherwise it
makes the next fetch, which starts no sooner than one coalescing window after the previous one.

With several server processes (``feed.cluster`` set) an account feed is either the account's
*owner* (it holds the Redis lease: the loop above) or a *follower* (another process holds it): step 3
then finds the lease taken, and the feed mirrors the owner's published rows instead of fetching,
forwards refreshes to the owner, and tries the lease again every third of the lease time. See
:mod:`orders.feed_cluster`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from orders import feed_cluster as cluster
from orders import feed_upstream as upstream
from orders import live_protocol as lp
from orders.feed_budget import full_jitter_backoff
from orders.feed_config import GET_USER_ORDERS_WEIGHT, SUBSCRIBE_WEIGHT, group_name
from orders.qfex import ConnectionLost, QfexSession, RateLimited
from orders.rows import Row, RowSet

if TYPE_CHECKING:
    from orders.feed import Feed

logger = logging.getLogger("orders.feed")

T = TypeVar("T")

# A session that dies younger than this is a failure (backoff), not a routine end of life.
_MIN_HEALTHY_SESSION_SECONDS = 1.0


@dataclass
class FeedStats:
    """Counters for tests and benchmarks."""

    fetches: int = 0  # fetches started
    pages: int = 0  # get_user_orders pages of the fetches that completed
    failures: int = 0
    sessions: int = 0  # upstream sessions opened


@dataclass(frozen=True)
class FeedSnapshot:
    """The last good data of one account, as of ``seq``. Row dicts must not be mutated."""

    account: int
    seq: int
    as_of: float | None
    status: lp.Status
    orders: dict[str, Row]
    twaps: dict[str, Row]


class AccountFeed:
    def __init__(self, feed: Feed, account_id: int) -> None:
        self.feed = feed
        self.config = feed.config
        self.account_id = account_id
        self.group = group_name(account_id)
        self.viewers: set[str] = set()
        self._notifiers: dict[str, Callable[[dict[str, Any]], None]] = {}  # viewer → local callback
        # Starting from the wall clock keeps seq increasing across feed restarts (see live_protocol).
        # In a cluster the seq is the owner's: 0 until this process owns the account or mirrors it.
        self.cluster = feed.cluster
        self.seq = 0 if self.cluster is not None else int(time.time() * 1000)
        self.orders: dict[str, Row] = {}
        self.twaps: dict[str, Row] = {}
        # The last fetch's rows with their records; reused only while they are still self.orders/twaps
        # (a follower's mirror replaces those with the owner's rows).
        self._order_set: RowSet | None = None
        self._twap_set: RowSet | None = None
        self.data_as_of: float | None = None
        self.status = lp.Status(lp.CONNECTING, "Connecting to QFEX…")
        self._snapshot_cache: tuple[tuple[int, lp.Status], list[str]] | None = None
        self._label = ""
        self._public_key = ""
        self._fingerprint: str | None = None
        self._session: QfexSession | None = None
        self._session_opened_at = 0.0
        self._wanted = True  # the first fetch happens as soon as a session is open
        self._waiters: list[asyncio.Future[bool]] = []  # want the next fetch
        self._joined: list[asyncio.Future[bool]] = []  # joined the fetch in flight
        self._fetching = False
        self._last_fetch_start = -math.inf
        self._last_good_fetch_start = -math.inf
        self._next_reconcile = 0.0
        self._last_pages = 1
        self._attempt = 0
        self._retry_at = 0.0
        self._fatal = False
        self._recheck_credentials = False
        self._next_credentials_check = 0.0
        self._budget_note_published = False
        self._idle_since: float | None = time.monotonic()
        self._wake = asyncio.Event()
        self._updated = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._lease_name = cluster.lease_name(account_id)
        if self.cluster is not None:
            self._lease_ttl = self.config.lease_seconds
        else:
            self._lease_ttl = max(3 * self.config.reconcile_seconds, 15.0)
        self._lease_renew_at = 0.0
        self._holds_lease = False
        # Cluster only: until when our lease is surely ours (renewed by the cluster ticker), whether
        # other processes have viewers, and the follower's mirror of the owner's rows.
        self._lease_valid_until = 0.0
        self.remote_interest = False
        self._mirrored = False
        self._mirror_event = asyncio.Event()
        self._mirror_buffer: list[dict[str, Any]] = []
        self._snapshot_asked_at = -math.inf
        self._remote_waiters: list[asyncio.Future[bool]] = []
        self._forward_max_age: float | None = None
        self._forward_pending = False
        self._forward_scheduled = False
        self._last_forward = -math.inf
        self._helpers: set[asyncio.Task[None]] = set()
        self.stats = FeedStats()

    # --- called by Feed (on the loop) ---------------------------------------------------------------

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

    def ensure_running(self) -> None:
        if (self._task is None or self._task.done()) and not self._stopping:
            self._task = self.feed.loop.create_task(self._run(), name=f"qfex-feed-account-{self.account_id}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def request_refresh(self, max_age: float | None = None) -> asyncio.Future[bool]:
        """A future resolved (True on success) when a fetch answering this request has finished."""
        future: asyncio.Future[bool] = self.feed.loop.create_future()
        window = self.config.refresh_coalesce_seconds if max_age is None else max(max_age, 0.0)
        now = time.monotonic()
        if self.cluster is not None and not self._holds_lease:
            self._follower_refresh(future, window)
        elif self._fetching:
            self._joined.append(future)
        elif self._fatal:
            # Retrying a rejected key on every click would hammer QFEX; look whether an admin changed it.
            self._recheck_credentials = True
            self._waiters.append(future)
            self._wake.set()
        elif now - self._last_good_fetch_start < window:
            future.set_result(True)
        else:
            self._waiters.append(future)
            self._wanted = True
            self._wake.set()
        return future

    def snapshot(self) -> FeedSnapshot:
        return FeedSnapshot(self.account_id, self.seq, self.data_as_of, self.status, self.orders, self.twaps)

    async def snapshot_texts(self) -> tuple[int, list[str]]:
        """The current snapshot's encoded parts, encoded once per (seq, status) and off the loop."""
        key = (self.seq, self.status)
        cached = self._snapshot_cache
        if cached is not None and cached[0] == key:
            return self.seq, cached[1]
        seq, as_of, status, orders, twaps = self.seq, self.data_as_of, self.status, self.orders, self.twaps
        args = (self.account_id, seq, as_of, status, orders, twaps, self.config.rows_per_message)
        if len(orders) + len(twaps) <= 200:  # small: cheaper than a hop to the pool
            texts = upstream.encode_snapshot(*args)
        else:
            texts = await self._in_pool(upstream.encode_snapshot, *args)
        if (self.seq, self.status) == key:
            self._snapshot_cache = (key, texts)
        return seq, texts

    async def wait_mirrored(self, timeout: float) -> None:
        """A follower whose mirror is being filled waits up to ``timeout`` for it; others return at once."""
        if self.cluster is None or self._holds_lease or self._mirrored:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._mirror_event.wait()

    async def wait_for(self, predicate: Callable[[FeedSnapshot], bool], timeout: float) -> FeedSnapshot:
        """Wait until ``predicate(snapshot)`` holds; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                snapshot = self.snapshot()
                if predicate(snapshot):
                    return snapshot
                event = self._updated
                await event.wait()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # --- called by the cluster link (on the loop) -------------------------------------------------

    @property
    def holds_lease(self) -> bool:
        return self._holds_lease

    def owns(self) -> bool:
        """Whether this process may act as the account's owner right now (cluster: lease surely ours)."""
        if self.cluster is None:
            return True
        return self._holds_lease and time.monotonic() < self._lease_valid_until

    def lease_renewed(self, valid_until: float) -> None:
        if self._holds_lease:
            self._lease_valid_until = valid_until

    def lease_lost(self) -> None:
        """Renewal failed: stop publishing now; the loop closes the session after the call in flight
        and follows whichever process takes the lease (possibly this one again)."""
        if not self._holds_lease:
            return
        logger.warning("account %s: lost the upstream lease; closing the session", self.account_id)
        self._holds_lease = False
        self._lease_valid_until = 0.0
        self._mirrored = False
        self._mirror_event = asyncio.Event()
        self._mirror_buffer = []
        self._snapshot_asked_at = -math.inf
        self.remote_interest = False
        if not self.viewers and self._idle_since is None:
            self._idle_since = time.monotonic()
        waiters, self._waiters = self._waiters, []
        self._remote_waiters.extend(waiters)  # answered by the owner's next data
        self._retry_at = 0.0
        self._wake.set()

    def set_remote_interest(self, interested: bool) -> None:
        """Other processes have (or no longer have) viewers of the account we own."""
        if self.remote_interest and not interested and not self.viewers:
            self._idle_since = time.monotonic()  # one reconcile interval from now, as for a last local viewer
            self._wake.set()
        elif interested and self._idle_since is not None and not self.viewers:
            self._idle_since = None
        self.remote_interest = interested

    def on_published(self, event: dict[str, Any]) -> None:
        """A message the account's owner published to the group (our inbox is in it): mirror it."""
        if self._holds_lease or self.cluster is None:
            return  # our own publication coming back
        if not self._mirrored:
            if len(self._mirror_buffer) < 10_000:
                self._mirror_buffer.append(event)
            return
        try:
            self._apply_published(event)
        except cluster.MirrorGap:
            self._mirror_lost()

    async def on_snapshot_reply(self, event: dict[str, Any]) -> None:
        """The owner's snapshot: (re)fill the mirror, catch up on what arrived meanwhile, tell our viewers."""
        if self._holds_lease or self.cluster is None:
            return
        texts = event["texts"]
        if sum(len(text) for text in texts) <= 100_000:
            parsed = cluster.parse_snapshot(texts)
        else:
            parsed = await self._in_pool(cluster.parse_snapshot, texts)
        if self._holds_lease:
            return  # we took over while parsing
        seq, as_of, status, orders, twaps = parsed
        if self._mirrored and seq <= self.seq:
            return  # an older answer than what we already mirror
        self.seq, self.data_as_of, self.status, self.orders, self.twaps = seq, as_of, status, orders, twaps
        self._snapshot_cache = ((seq, status), list(texts))
        self._mirrored = True
        buffered, self._mirror_buffer = self._mirror_buffer, []
        try:
            for message in buffered:
                self._apply_published(message)
        except cluster.MirrorGap:
            self._mirror_lost()
        if self._mirrored:
            self._mirror_event.set()
            self._resolve_remote(True)
            self._tell_viewers({"type": cluster.RESNAPSHOT, "account": self.account_id})
        self._notify()

    def _apply_published(self, event: dict[str, Any]) -> None:
        seq = event["seq"]
        if event["kind"] == lp.DIFF:
            if seq <= self.seq:
                return
            if seq != self.seq + 1:
                raise cluster.MirrorGap
            message = orjson.loads(event["text"])
            self.orders, self.twaps = cluster.apply_diff(self.orders, self.twaps, message)
            self.seq = seq
            self.data_as_of = message.get("as_of", self.data_as_of)
        elif event["kind"] == lp.STATUS:
            if seq > self.seq:
                raise cluster.MirrorGap  # a diff went missing
            message = orjson.loads(event["text"])
            self.status = lp.Status(
                message["state"], message.get("reason") or "", message.get("as_of"), message.get("next_retry_at")
            )
            if self.status.as_of is not None:
                self.data_as_of = self.status.as_of
        else:
            return
        if self.status.state in (lp.LIVE, lp.STALE, lp.FAILED):
            self._resolve_remote(self.status.state == lp.LIVE)
        self._notify()

    def _mirror_lost(self) -> None:
        """A gap: keep showing the rows we have, ask the owner for its snapshot at once."""
        self._mirrored = False
        self._mirror_event = asyncio.Event()
        self._mirror_buffer = []
        self._snapshot_asked_at = -math.inf
        self._retry_at = 0.0
        self._wake.set()

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    # --- the loop ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping and not self._idle_expired():
                try:
                    await self._step()
                except Exception as exc:  # never let one account's surprise kill its feed
                    logger.exception("account %s: unexpected error in the feed", self.account_id)
                    await self._fail(exc)
        finally:
            if not self._stopping:
                logger.info("account %s: nobody watches any more; stopping its feed", self.account_id)
            for helper in list(self._helpers):
                helper.cancel()
            await self._end_session()
            await self._release_lease()
            self._resolve(self._waiters + self._joined + self._remote_waiters, False)
            self._waiters, self._joined, self._remote_waiters = [], [], []
            self._task = None
            self.feed._account_stopped(self)

    def _idle_expired(self) -> bool:
        return self._until_idle_expiry() <= 0.0

    def _until_idle_expiry(self) -> float:
        """Seconds until an unwatched feed stops (infinite while anyone watches)."""
        if self.viewers or self.remote_interest or self._idle_since is None:
            return math.inf
        return self._idle_since + self.config.reconcile_seconds - time.monotonic()

    async def _step(self) -> None:
        now = time.monotonic()
        if now < self._retry_at:
            await self._pause(self._retry_at - now)
            return
        if self._session is None:
            await self._connect()
            return
        if not await self._keep_lease():
            return
        wait = self._fetch_wait(now)
        if wait == 0.0:
            await self._fetch()
            return
        limit = self.config.listen_slice_seconds if wait is None else min(wait, self.config.listen_slice_seconds)
        await self._listen(limit)

    def _fetch_wait(self, now: float) -> float | None:
        """None when no fetch is due; else seconds until it may start (0: now)."""
        if not self.viewers and not self._waiters and not self.remote_interest:
            return None
        if not (self._wanted or now >= self._next_reconcile):
            return None
        gate = self._last_fetch_start + self.config.refresh_coalesce_seconds - now
        budget_wait = self._budget().wait_time(self._last_pages * GET_USER_ORDERS_WEIGHT)
        return max(gate, budget_wait, 0.0)

    async def _pause(self, seconds: float) -> None:
        """Wait out a backoff; keep reading pushes if a session is still open (after RateLimited)."""
        if self._fatal:
            await self._maybe_retry_after_key_change()
            if time.monotonic() >= self._retry_at:
                return
        if self._session is not None:
            await self._listen(min(seconds, self.config.listen_slice_seconds))
            return
        await self._sleep(min(seconds, self.config.reconcile_seconds))

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken (refresh, viewer change, stop), ``seconds`` pass, or the idle deadline."""
        if self._wake.is_set():
            self._wake.clear()
            return
        seconds = min(seconds, max(self._until_idle_expiry(), 0.0))
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    async def _maybe_retry_after_key_change(self) -> None:
        now = time.monotonic()
        if not (self._recheck_credentials or now >= self._next_credentials_check):
            return
        self._recheck_credentials = False
        self._next_credentials_check = now + self.config.reconcile_seconds
        fingerprint = await self._in_pool(upstream.account_fingerprint, self.account_id)
        waiters, self._waiters = self._waiters, []
        if fingerprint != self._fingerprint:
            logger.info("account %s: settings or key changed; reconnecting", self.account_id)
            self._fatal = False
            self._attempt = 0
            self._retry_at = 0.0
            self._waiters = waiters  # answered by the fetch after the reconnect
        else:
            self._resolve(waiters, False)

    # --- upstream steps ---------------------------------------------------------------------------

    async def _connect(self) -> None:
        if not self.viewers and not self._waiters and not self.remote_interest:
            await self._sleep(self.config.listen_slice_seconds)
            return
        # The lease first: a process that does not own the account never reads its secret.
        try:
            taken = await self._take_lease()
        except Exception as exc:
            await self._fail(exc)
            return
        if not taken:
            # Another process owns this account's upstream session: follow it, try again soon.
            await self._follow()
            return
        try:
            info, credentials = await self._in_pool(upstream.load_account, self.account_id)
        except Exception as exc:
            await self._fail(exc)
            return
        self._label, self._public_key, self._fingerprint = info.label, info.public_key, info.fingerprint
        budget_wait = self._budget().wait_time(SUBSCRIBE_WEIGHT)
        if budget_wait > 0:
            del credentials
            self._retry_at = time.monotonic() + budget_wait
            return
        try:
            self._session = await self._in_pool(upstream.open_session, info, credentials, self.config.timeout_seconds)
        except Exception as exc:
            await self._fail(exc)
            return
        finally:
            del credentials  # the session keeps what it needs to sign; nothing else holds the secret
        self._budget().charge(SUBSCRIBE_WEIGHT)
        self.stats.sessions += 1
        self._fatal = False
        self._session_opened_at = time.monotonic()
        self._wanted = True  # pushes may have been missed while disconnected
        logger.info("account %s: upstream session open", self.account_id)

    async def _fetch(self) -> None:
        session = self._session
        assert session is not None
        budget = self._budget()
        expected_pages = self._last_pages
        budget.charge(expected_pages * GET_USER_ORDERS_WEIGHT)
        self._fetching = True
        self._joined, self._waiters = self._waiters, []
        self._wanted = False
        start = time.monotonic()
        self.stats.fetches += 1
        self._last_fetch_start = start
        self._next_reconcile = start + self.config.reconcile_seconds
        try:
            result = await self._in_pool(
                upstream.fetch_and_diff,
                session,
                page_size=self.config.page_size,
                account_id=self.account_id,
                label=self._label,
                old_orders=self.orders,
                old_twaps=self.twaps,
                next_seq=self.seq + 1,
                rows_per_message=self.config.rows_per_message,
                previous_orders=_still_current(self._order_set, self.orders),
                previous_twaps=_still_current(self._twap_set, self.twaps),
            )
        except Exception as exc:
            self._fetching = False
            joined, self._joined = self._joined, []
            if isinstance(exc, ConnectionLost) and self._routine_end_of_session():
                # QFEX ended a healthy session mid-fetch: reconnect and fetch again, quietly.
                logger.info("account %s: upstream session ended during a fetch; reconnecting", self.account_id)
                await self._end_session()
                self._wanted = True
                self._waiters = joined + self._waiters
                return
            await self._fail(exc)
            self._resolve(joined, False)
            return
        self._fetching = False
        self.stats.pages += result.pages
        budget.charge((result.pages - expected_pages) * GET_USER_ORDERS_WEIGHT)
        if not self.owns():
            # The lease went to another process during the fetch: it publishes from now on, not us.
            joined, self._joined = self._joined, []
            self._resolve(joined, False)
            return
        self._last_pages = max(1, result.pages)
        self._last_good_fetch_start = start
        self._attempt = 0
        self.orders, self.twaps = result.orders, result.twaps
        self._order_set, self._twap_set = result.order_set, result.twap_set
        self.data_as_of = result.fetched_at
        if result.diff_texts:
            # The seq jumps to the last diff's at once: a snapshot taken while the diffs are being
            # published holds the new rows, and its seq makes consumers skip the diffs it contains.
            first_seq = self.seq + 1
            self.seq += len(result.diff_texts)
            for offset, text in enumerate(result.diff_texts):
                await self._publish(lp.DIFF, text, first_seq + offset)
        live = lp.Status(lp.LIVE, "", self.data_as_of, None)
        if live != self.status or not result.changed:
            # A state change, or a heartbeat: nothing changed, but the data is fresh as of now.
            await self._set_status(live, force=True)
        joined, self._joined = self._joined, []
        self._resolve(joined, True)
        self._budget_note_published = False
        self._notify()

    async def _listen(self, seconds: float) -> None:
        session = self._session
        assert session is not None
        try:
            received = await self._in_pool(upstream.listen, session, max(seconds, 0.01))
        except ConnectionLost as exc:
            if self._routine_end_of_session():
                # QFEX ends sessions at a maximum lifetime: reconnect at once, without alarming anyone.
                logger.info("account %s: upstream session ended; reconnecting", self.account_id)
                await self._end_session()
                self._wanted = True
                return
            await self._fail(exc)
            return
        except Exception as exc:
            await self._fail(exc)
            return
        if received:
            self._wanted = True
        await self._note_budget_deferral()

    async def _note_budget_deferral(self) -> None:
        """Say so (once) when our own rate budget holds a due fetch back for longer than an interval."""
        wait = self._fetch_wait(time.monotonic())
        if wait is None or wait <= self.config.reconcile_seconds or self._budget_note_published:
            return
        if self.status.state != lp.LIVE:
            return
        self._budget_note_published = True
        seconds = max(1, math.ceil(wait))
        reason = f"Fetches are spaced out to stay within this key's share of QFEX's rate limit; next in {seconds} s."
        await self._set_status(lp.Status(lp.LIVE, reason, self.data_as_of, time.time() + wait))

    def _routine_end_of_session(self) -> bool:
        """A healthy session that lived a while and then closed: QFEX's maximum lifetime, not a fault."""
        age = time.monotonic() - self._session_opened_at
        return self._attempt == 0 and not self._fatal and age >= _MIN_HEALTHY_SESSION_SECONDS

    async def _fail(self, exc: BaseException) -> None:
        self.stats.failures += 1
        keep_session = isinstance(exc, RateLimited) and self._session is not None and not self._session.closed
        if not keep_session:
            await self._end_session()
        now, wall = time.monotonic(), time.time()
        if upstream.is_fatal(exc):
            self._fatal = True
            self._retry_at = now + self.config.auth_retry_seconds
            self._next_credentials_check = now + self.config.reconcile_seconds
            try:
                self._fingerprint = await self._in_pool(upstream.account_fingerprint, self.account_id)
            except Exception:
                logger.warning("account %s: could not read the account's settings", self.account_id, exc_info=True)
            logger.warning("account %s: needs a person: %s", self.account_id, type(exc).__name__)
            status = lp.Status(
                lp.FAILED, upstream.fatal_reason(exc), self.data_as_of, wall + self.config.auth_retry_seconds
            )
        else:
            self._fatal = False  # e.g. the retry of a rejected key met a network problem instead
            self._attempt += 1
            backoff = full_jitter_backoff(
                self._attempt, self.config.backoff_base_seconds, self.config.backoff_cap_seconds
            )
            if isinstance(exc, RateLimited):
                # QFEX's hint is when one more request fits, but a fetch needs several pages: waiting
                # only the hint refused page 2 forever. Consecutive refusals wait at least an
                # exponentially growing pause (capped) so the key's budget refills for a whole fetch.
                floor = min(
                    self.config.backoff_cap_seconds, self.config.backoff_base_seconds * 2 ** (self._attempt - 1)
                )
                delay = max(exc.retry_after if exc.retry_after is not None else backoff, floor)
                self._budget().block_for(delay)
            else:
                delay = backoff
            self._retry_at = now + delay
            self._wanted = True  # fetch as soon as the pause is over
            seconds = max(1, math.ceil(delay))
            cause = upstream.failure_cause(exc, self.config.timeout_seconds)
            logger.warning(
                "account %s: upstream failure %s (%s); retry %d in %.1f s",
                self.account_id,
                type(exc).__name__,
                exc,
                self._attempt,
                delay,
            )
            status = lp.Status(lp.STALE, f"{cause}; next try in {seconds} s.", self.data_as_of, wall + delay)
        waiters, self._waiters = self._waiters, []
        await self._set_status(status)
        self._resolve(waiters, False)
        self._notify()

    async def _end_session(self) -> None:
        """Close the upstream session. The lease is kept (failures and backoff included) until the feed
        stops, so in a cluster no other process retries a failing account at the same time."""
        session, self._session = self._session, None
        if session is not None:
            try:
                await self._in_pool(upstream.close_session, session)
            except RuntimeError:  # the pool is already shut down (a feed closing past its deadline)
                upstream.close_session(session)

    async def _release_lease(self) -> None:
        if not self._holds_lease:
            return
        self._holds_lease = False
        self._lease_valid_until = 0.0
        await self.feed.leases.release(self._lease_name, self.feed.owner_id)
        if self.cluster is not None:
            await self.cluster.clear_status(self.account_id)

    async def _take_lease(self) -> bool:
        """Take (or extend) the lease; True when we hold it."""
        held_before = self._holds_lease
        asked_at = time.monotonic()
        self._holds_lease = await self.feed.leases.acquire(self._lease_name, self.feed.owner_id, self._lease_ttl)
        self._lease_renew_at = asked_at + self._lease_ttl / 3
        if self._holds_lease:
            self._lease_valid_until = asked_at + self._lease_ttl
            if self.cluster is not None and not held_before:
                self._become_owner()
        return self._holds_lease

    async def _keep_lease(self) -> bool:
        if self.cluster is not None:
            # The cluster ticker renews; here we only act on its verdict (or on a renewal it is late with).
            if self.owns():
                return True
            self.lease_lost()
            await self._end_session()
            return False
        if time.monotonic() < self._lease_renew_at:
            return True
        if await self.feed.leases.renew(self._lease_name, self.feed.owner_id, self._lease_ttl):
            self._lease_renew_at = time.monotonic() + self._lease_ttl / 3
            return True
        logger.warning("account %s: lost the upstream lease; closing the session", self.account_id)
        self._holds_lease = False
        await self._end_session()
        return False

    # --- cluster roles ----------------------------------------------------------------------------

    def _become_owner(self) -> None:
        """We just took the lease: continue from the mirror's rows with a seq well above it."""
        logger.info("account %s: this process now owns the upstream session", self.account_id)
        self.seq = max(self.seq + 1000, int(time.time() * 1000))
        self._snapshot_cache = None
        self._mirrored = False
        self._mirror_buffer = []
        self._mirror_event.set()  # nobody waits for a mirror any more
        self._wanted = True
        # Refreshes forwarded while following are answered by our first fetch.
        self._waiters.extend(self._remote_waiters)
        self._remote_waiters = []
        self._attempt, self._retry_at, self._fatal = 0, 0.0, False

    async def _follow(self) -> None:
        """One follower step: make sure the mirror is (being) filled, forward refreshes, retry soon."""
        assert self.cluster is not None
        now = time.monotonic()
        if self._waiters:
            # Refreshes asked for before we knew we were a follower.
            waiters, self._waiters = self._waiters, []
            self._remote_waiters.extend(waiters)
            self._forward_pending = True
        if not self._mirrored and now - self._snapshot_asked_at >= self.cluster.tick_seconds:
            self._snapshot_asked_at = now
            await self.cluster.request_snapshot(self.account_id)
        if self._forward_pending:
            await self._forward_refresh()
        self._retry_at = time.monotonic() + self.cluster.follower_retry_seconds()

    def _follower_refresh(self, future: asyncio.Future[bool], window: float) -> None:
        fresh = self.data_as_of is not None and time.time() - self.data_as_of < window
        if self._mirrored and fresh and self.status.state == lp.LIVE:
            future.set_result(True)
            return
        self._remote_waiters.append(future)
        self._forward_max_age = window if self._forward_max_age is None else min(self._forward_max_age, window)
        self._forward_pending = True
        if not self._forward_scheduled:
            # Forwards are coalesced like fetches: at most one per coalescing window.
            self._forward_scheduled = True
            delay = max(0.0, self._last_forward + self.config.refresh_coalesce_seconds - time.monotonic())
            self._spawn(self._forward_later(delay), f"qfex-feed-forward-{self.account_id}")

    async def _forward_later(self, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
        finally:
            self._forward_scheduled = False
        await self._forward_refresh()

    async def _forward_refresh(self) -> None:
        if not self._forward_pending or self.cluster is None or self._holds_lease:
            return
        self._forward_pending = False
        self._last_forward = time.monotonic()
        max_age, self._forward_max_age = self._forward_max_age, None
        if not await self.cluster.forward_refresh(self.account_id, max_age):
            self._retry_at = 0.0  # no owner right now: try the lease at once
            self._wake.set()

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = self.feed.loop.create_task(coroutine, name=name)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    def _resolve_remote(self, value: bool) -> None:
        waiters, self._remote_waiters = self._remote_waiters, []
        self._resolve(waiters, value)

    # --- helpers ----------------------------------------------------------------------------------

    def _budget(self) -> Any:
        return self.feed.budget_for(self._public_key or f"account:{self.account_id}")

    async def _set_status(self, status: lp.Status, *, force: bool = False) -> None:
        if status == self.status and not force:
            return
        changed = status != self.status
        self.status = status
        await self._publish(lp.STATUS, lp.encode(lp.status_message(self.account_id, self.seq, status)))
        if changed and self.cluster is not None and self.owns():
            await self.cluster.publish_status(self.account_id, status)
        self._notify()

    async def _publish(self, kind: str, text: str, seq: int | None = None) -> None:
        seq = self.seq if seq is None else seq
        payload = {"account": self.account_id, "seq": seq, "kind": kind, "text": text}
        if self.owns():
            await self.feed.publish(self.group, payload)
        elif self.cluster is not None and kind == lp.STATUS:
            # A follower's own trouble (e.g. Redis unreachable) concerns only its own viewers.
            self._tell_viewers({"type": cluster.PUBLISHED, **payload})

    def _tell_viewers(self, message: dict[str, Any]) -> None:
        """A message for this process's viewers only, through their ``notify`` callbacks."""
        for viewer, notify in list(self._notifiers.items()):
            try:
                notify(message)
            except Exception:
                logger.warning("account %s: could not notify viewer %s", self.account_id, viewer, exc_info=True)

    def _notify(self) -> None:
        event, self._updated = self._updated, asyncio.Event()
        event.set()

    @staticmethod
    def _resolve(futures: list[asyncio.Future[bool]], value: bool) -> None:
        for future in futures:
            if not future.done():
                future.set_result(value)

    async def _in_pool(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking call in the feed's pool. If we are cancelled meanwhile, the call still
        finishes before we return, so nobody touches the session while a thread is using it."""
        future = self.feed.loop.run_in_executor(self.feed.pool, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait([future])
            raise


def _still_current(built: RowSet | None, rows: dict[str, Row]) -> RowSet | None:
    """``built`` when its rows are still the feed's rows (not replaced by a mirror), else None."""
    return built if built is not None and built.rows is rows else None
