"""One upstream QFEX session of an owned account, from connect to close.

While idle the session is read by the push reader (:mod:`orders.live.feed.reader`); a pool job that uses
it (a fetch, the close) borrows it under its reader registration's lock. Its pushes and its end reach
the event loop through ``call_soon_threadsafe`` from whichever thread read them, in the order they
arrived — pushes read during a fetch too, so a fetch never delays them. Once closed, nothing it read
late is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from orders.live import metrics
from orders.qfex import Credentials, Order, QfexSession

from . import upstream
from .reader import PushReader, Registration

T = TypeVar("T")
U = TypeVar("U")


async def run_in_pool(pool: Executor, fn: Callable[..., T], /, *args: Any) -> T:
    """Run a blocking call in the feed's pool. If the caller is cancelled meanwhile, the call still
    finishes before this returns, so nobody touches a session while a thread is using it."""
    future = asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class UpstreamSession:
    """Open with :meth:`open`; ``on_push(order, arrived)`` and ``on_end(exc)`` are called on the loop."""

    def __init__(
        self,
        pool: Executor,
        reader: PushReader,
        on_push: Callable[[Order, float], None],
        on_end: Callable[[BaseException], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = pool
        self._reader = reader
        self._on_push = on_push
        self._on_end = on_end
        self._session: QfexSession | None = None
        self._registration: Registration | None = None
        self.live = True  # False once closed: late pushes and ends are dropped
        self.opened_at = 0.0
        self.fetched = False  # a fetch completed on this session

    async def open(self, info: upstream.AccountInfo, credentials: Credentials, timeout: float) -> None:
        """Connect, authenticate and subscribe (in the pool); then the reader watches the socket."""
        metrics.upstream_request("auth")
        self._session = await run_in_pool(self._pool, upstream.open_session, info, credentials, timeout, self._pushed)
        metrics.upstream_request("subscribe")
        metrics.session_opened()
        self._registration = self._reader.add(self._session, self._ended)
        self.opened_at = time.monotonic()

    async def run(self, fn: Callable[..., T], /, then: Callable[[T], U] | None = None, **kwargs: Any) -> T | U:
        """``fn(session, **kwargs)`` in the pool, holding the session (the reader lets go meanwhile);
        then, in the same thread but with the session handed back to the reader, ``then(result)`` —
        work that needs no socket (building a 10 000-order book's rows) never holds up the pushes."""
        session, registration = self._session, self._registration
        if session is None or registration is None:
            raise RuntimeError("the upstream session is not open")

        def job() -> T | U:
            try:
                with registration.lock:
                    result = fn(session, **kwargs)
            finally:
                registration.resume()
            return result if then is None else then(result)

        return await run_in_pool(self._pool, job)

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def close(self) -> None:
        """Close it (off the loop); the reader lets go of it first."""
        self.live = False
        session, self._session = self._session, None
        registration, self._registration = self._registration, None
        if session is None:
            return
        metrics.session_closed()

        def close() -> None:
            if registration is not None:
                registration.remove()
            upstream.close_session(session)

        try:
            await run_in_pool(self._pool, close)
        except RuntimeError:  # the pool is already shut down (a feed closing past its deadline)
            close()

    # --- called from the reading thread ------------------------------------------------------------

    def _pushed(self, order: Order) -> None:
        arrived = time.monotonic()
        with contextlib.suppress(RuntimeError):  # a closed loop: the feed is shutting down
            self._loop.call_soon_threadsafe(self._deliver_push, order, arrived)

    def _ended(self, exc: BaseException) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._deliver_end, exc)

    # --- on the loop -------------------------------------------------------------------------------

    def _deliver_push(self, order: Order, arrived: float) -> None:
        if self.live:
            self._on_push(order, arrived)

    def _deliver_end(self, exc: BaseException) -> None:
        if self.live:
            self._on_end(exc)
