"""The upstream worker: one account's QFEX session while this process owns the account.

It exists only while the process owns the account (always, with one process); its host
(:class:`orders.live.feed.account.AccountFeed`) creates it, hands it pushes' consequences and stops it
when nobody watches any more or the ownership is lost. One task per account runs a loop of small steps:

1. the session ended (the push reader saw QFEX close it) → reconnect quietly if it was a healthy
   session's routine end (QFEX's maximum lifetime), else a failure;
2. every reconcile interval → compare the account's settings with the session's (disabled, deleted,
   a new key, endpoint or subaccount): any change ends the session, so the change takes effect while
   the account is watched;
3. backing off after a failure → wait;
4. no session → load the account (in the pool), connect + authenticate + subscribe;
5. a fetch is due (:mod:`orders.live.feed.schedule`) → read every page in the pool and merge the complete
   read into the rows by the merge rule (:meth:`AccountState.apply_fetch`, docs/qfex-protocol.md §4.4);
   a read that fails or is cut short is abandoned (an incomplete read removes nothing);
6. otherwise → sleep until something is due. No thread waits for pushes: the push reader
   (:mod:`orders.live.feed.reader`) reads the idle session and each push reaches the host on the loop.

Failures keep the last good rows and publish ``stale`` with the cause (no countdown in the words; the
status carries ``next_retry_at``); after ``error_after_failures`` failed tries in a row the state is
``error`` with what to do. A failure no retry can fix (a rejected or refused key, an unreadable
secret, a disabled or deleted account, QFEX asking for KYC or T&Cs) is ``error`` at once and retried
only every ``auth_retry_seconds`` — or at once when the account's settings change.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Protocol

from orders.live import metrics
from orders.live import protocol as lp
from orders.qfex import ConnectionLost, Order, RateLimited

from . import corrections, upstream
from .budget import RateBudget, budget_key
from .config import EXCHANGE_WEIGHT_PER_MINUTE, GET_USER_ORDERS_WEIGHT, SUBSCRIBE_WEIGHT, FeedConfig
from .failures import Failures, status_for
from .reader import PushReader
from .schedule import FetchSchedule
from .session import UpstreamSession, run_in_pool
from .settings_watch import SettingsWatch
from .state import AccountState, Change, FetchedBook

logger = logging.getLogger("orders.live.feed")


# A session that dies younger than this is a failure (backoff), not a routine end of life.
_MIN_HEALTHY_SESSION_SECONDS = 1.0
# QFEX closing a session this soon after the login, before anything was fetched, twice in a row: a refused key.
_QUICK_CLOSE_SECONDS = 5.0


class Host(Protocol):
    """What the worker needs from the account feed that owns it."""

    account_id: int
    state: AccountState

    def on_push(self, order: Order, arrived: float) -> None: ...

    def publish_change(self, change: Change, as_of: float | None) -> None: ...

    def publish_status(self, status: lp.Status) -> None: ...

    def wanted(self) -> bool: ...

    def owns(self) -> bool: ...


class WorkerStats(Protocol):
    fetches: int
    pages: int
    failures: int
    sessions: int


class UpstreamWorker:
    def __init__(
        self,
        host: Host,
        config: FeedConfig,
        *,
        pool: Executor,
        reader: PushReader,
        settings: SettingsWatch,
        budget_for: Callable[[str], RateBudget],
        stats: WorkerStats,
    ) -> None:
        self.host = host
        self.config = config
        self.loop = asyncio.get_running_loop()
        self._pool = pool
        self._reader = reader
        self._settings = settings
        self._budget_for = budget_for
        self.stats = stats
        self.schedule = FetchSchedule(config)
        self._session: UpstreamSession | None = None
        self._session_ended: BaseException | None = None
        self.failures = Failures(config)
        self._budget_key = ""
        self._fingerprint: str | None = None
        # Ask every half interval for an answer at most half an interval old: a change shows within one.
        self._settings_period = config.reconcile_seconds / 2
        self._next_settings_check = time.monotonic() + self._settings_period
        self._retry_at = 0.0
        self._waiters: list[asyncio.Future[bool]] = []  # want the next fetch
        self._joined: list[asyncio.Future[bool]] = []  # joined the fetch in flight
        self._fetching = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._helpers: set[asyncio.Future[Any]] = set()
        self.task = self.loop.create_task(self._run(), name=f"qfex-feed-worker-{host.account_id}")

    # --- called by the host (on the loop) ----------------------------------------------------------

    def request_refresh(self, max_age: float) -> asyncio.Future[bool]:
        """A future resolved (True on success) when a fetch answering this request has finished."""
        future: asyncio.Future[bool] = self.loop.create_future()
        if self._fetching:
            self._joined.append(future)
        elif self.failures.fatal:
            # Retrying a rejected key on every click would hammer QFEX; look whether someone changed it.
            self._next_settings_check = 0.0
            self._waiters.append(future)
        elif self.schedule.answers(max_age):
            future.set_result(True)
            return future
        else:
            self._waiters.append(future)
            self.schedule.want()
        self._wake.set()
        return future

    def request_reconcile(self) -> None:
        """A push could not be placed: reconcile soon."""
        self.schedule.want_prompt()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    @property
    def budget(self) -> RateBudget:
        return self._budget_for(self._budget_key or f"account:{self.host.account_id}")

    # --- the loop ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._stopping:
                try:
                    await self._step()
                except Exception as exc:  # never let one account's surprise kill its feed
                    logger.exception("account %s: unexpected error in the feed", self.host.account_id)
                    await self._fail(exc)
        finally:
            for helper in list(self._helpers):
                helper.cancel()
            await self._end_session()
            _resolve(self._waiters + self._joined, False)
            self._waiters, self._joined = [], []

    async def _step(self) -> None:
        now = time.monotonic()
        if self._session_ended is not None:
            exc, self._session_ended = self._session_ended, None
            await self._on_session_end(exc)
        elif now >= self._next_settings_check:
            await self._check_settings()
        elif now < self._retry_at:
            await self._sleep(self._retry_at - now)
        elif self._session is None:
            if self.host.wanted() or self._waiters:
                await self._connect()
            else:
                await self._sleep(self.config.reconcile_seconds)
        else:
            due = self.schedule.due_in(self.budget)
            if due == 0.0:
                await self._fetch()
            else:
                await self._sleep(self.schedule.next_due() if due is None else due)

    async def _sleep(self, seconds: float) -> None:
        """Sleep until woken (refresh, push needing a reconcile, session end, stop) or ``seconds`` pass."""
        seconds = min(seconds, max(self._next_settings_check - time.monotonic(), 0.0))
        if not self._wake.is_set():
            try:
                async with asyncio.timeout(max(seconds, 0.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
        self._wake.clear()

    # --- settings --------------------------------------------------------------------------------

    async def _check_settings(self) -> None:
        self._next_settings_check = time.monotonic() + self._settings_period
        try:
            fingerprint = await self._settings.fingerprint(self.host.account_id)
        except Exception:
            logger.warning("account %s: could not read the account's settings", self.host.account_id, exc_info=True)
            return
        if fingerprint == self._fingerprint:
            if self.failures.fatal:
                _resolve(self._waiters, False)  # a refresh of an unchanged rejected key: nothing to retry
                self._waiters = []
            return
        logger.info("account %s: its settings or key changed; reconnecting", self.host.account_id)
        self._fingerprint = fingerprint
        await self._end_session()
        self.failures.reset()
        self._retry_at = 0.0
        self.schedule.want()

    # --- upstream steps ---------------------------------------------------------------------------

    async def _connect(self) -> None:
        account_id = self.host.account_id
        try:
            info, credentials = await run_in_pool(self._pool, upstream.load_account, account_id)
        except Exception as exc:
            with contextlib.suppress(Exception):  # so a fix (enable it, a new key) is noticed, not a non-change
                self._fingerprint = await self._settings.fingerprint(account_id)
            await self._fail(exc)
            return
        self._fingerprint = info.fingerprint
        self._settings.note(account_id, info.fingerprint)
        self._budget_key = budget_key(info.url, info.public_key)
        self.host.state.label = info.label
        budget_wait = self.budget.wait_time(SUBSCRIBE_WEIGHT)
        if budget_wait > 0:
            del credentials
            self._retry_at = time.monotonic() + budget_wait
            return
        session = UpstreamSession(self._pool, self._reader, self.host.on_push, self._note_session_end)
        try:
            await session.open(info, credentials, self.config.timeout_seconds)
        except Exception as exc:
            if isinstance(exc, ConnectionLost):
                await self._quick_close(exc)  # QFEX closed the socket during the login or the subscribe
            else:
                await self._fail(exc)
            return
        finally:
            del credentials  # the session keeps what it needs to sign; nothing else holds the secret
        self.budget.charge(SUBSCRIBE_WEIGHT)
        self._session, self._session_ended, self.failures.fatal = session, None, False
        self.stats.sessions += 1
        self.schedule.want()  # pushes may have been missed while disconnected
        logger.info("account %s: upstream session open", account_id)
        if not info.verified:
            self._spawn(run_in_pool(self._pool, upstream.mark_verified, account_id))

    def _note_session_end(self, exc: BaseException) -> None:
        """The reader saw QFEX end the session (on the loop)."""
        self._session_ended = exc
        self._wake.set()

    async def _on_session_end(self, exc: BaseException) -> None:
        session = self._session
        if session is None:
            return  # already closed by us
        age = time.monotonic() - session.opened_at
        if not session.fetched and age < _QUICK_CLOSE_SECONDS:
            await self._quick_close(exc)
            return
        if self.failures.attempt == 0 and not self.failures.fatal and age >= _MIN_HEALTHY_SESSION_SECONDS:
            # QFEX ends sessions at a maximum lifetime: reconnect at once, without alarming anyone.
            logger.info("account %s: upstream session ended; reconnecting", self.host.account_id)
            await self._end_session()
            self.schedule.want()
            return
        await self._fail(exc)

    async def _quick_close(self, exc: BaseException) -> None:
        refused = self.failures.quick_close(exc)
        if refused is not exc:
            logger.warning("account %s: QFEX closed the session right after the login, again", self.host.account_id)
        await self._fail(refused)

    async def _fetch(self) -> None:
        budget = self.budget
        expected = self.schedule.pages
        budget.charge(expected * GET_USER_ORDERS_WEIGHT)
        self._fetching = True
        self._joined, self._waiters = self._waiters, []
        start = self.schedule.started()
        self.stats.fetches += 1
        state = self.host.state
        state.begin_fetch()
        session = self._session
        assert session is not None
        try:
            rows = functools.partial(
                upstream.book_rows, account_id=self.host.account_id, label=state.label, previous=state.previous_rows()
            )
            book = await session.run(upstream.fetch_pages, then=rows, page_size=self.config.page_size)
        except Exception as exc:
            state.abandon_fetch()
            self._fetching = False
            metrics.upstream_request("get_user_orders")  # at least the page that failed
            joined, self._joined = self._joined, []
            if isinstance(exc, ConnectionLost) and self.failures.attempt == 0 and session.fetched:
                # QFEX ended a healthy session mid-fetch: reconnect and fetch again, quietly.
                logger.info("account %s: session ended during a fetch; reconnecting", self.host.account_id)
                await self._end_session()
                self.schedule.want()
                self._waiters = joined + self._waiters
                return
            await self._fail(exc)
            _resolve(joined, False)
            return
        self._fetching = False
        self.stats.pages += book.pages
        budget.charge((book.pages - expected) * GET_USER_ORDERS_WEIGHT)
        metrics.upstream_request("get_user_orders", book.pages)
        metrics.set_budget_share(self.host.account_id, budget.spent_last_minute() / EXCHANGE_WEIGHT_PER_MINUTE)
        joined, self._joined = self._joined, []
        if not self.host.owns():
            state.abandon_fetch()  # the lease went to another process during the fetch: it publishes now
            _resolve(joined, False)
            return
        self.schedule.succeeded(start, book.pages)
        self.failures.succeeded()
        session.fetched = True
        self.host.publish_change(_merge_read(self.host.account_id, state, book), book.fetched_at)
        self.host.publish_status(status_for(state.status, lp.LIVE, "", state.data_as_of))  # also the heartbeat
        _resolve(joined, True)

    async def _fail(self, exc: BaseException) -> None:
        self.stats.failures += 1
        keep_session = isinstance(exc, RateLimited) and self._session is not None and not self._session.closed
        if not keep_session:
            await self._end_session()
        state = self.host.state
        verdict = self.failures.fail(exc, state.status, state.data_as_of, self.budget)
        if verdict.fatal:
            logger.warning("account %s: needs a person: %s", self.host.account_id, type(exc).__name__)
        else:
            logger.warning(
                "account %s: upstream failure %s (%s); retry %d in %.1f s",
                self.host.account_id,
                type(exc).__name__,
                exc,
                self.failures.attempt,
                verdict.delay,
            )
            self.schedule.want()  # fetch as soon as the pause is over
        self._retry_at = time.monotonic() + verdict.delay
        waiters, self._waiters = self._waiters, []
        self.host.publish_status(verdict.status)
        _resolve(waiters, False)

    async def _end_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # --- helpers ----------------------------------------------------------------------------------

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._helpers.add(task)
        task.add_done_callback(self._helper_done)

    def _helper_done(self, task: asyncio.Future[Any]) -> None:
        self._helpers.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("account %s: a background job failed", self.host.account_id, exc_info=task.exception())


def _merge_read(account_id: int, state: AccountState, book: FetchedBook) -> Change:
    """A complete read merged by the merge rule; its corrections counted and logged, its age reset."""
    change = state.apply_fetch(book)
    corrections.report(account_id, change.corrections)
    metrics.complete_read(account_id)
    return change


def _resolve(futures: list[asyncio.Future[bool]], value: bool) -> None:
    for future in futures:
        if not future.done():
            future.set_result(value)
