"""The simulated QFEX trade WebSocket's server loop: a `websockets` server on loopback, in its own thread
and event loop.

Each connection gets a `Session` (`connection.py`): its messages are handled one after another by the
connection's handler task (`Dispatcher.on_message`), and everything it sends goes through its queue,
drained by its writer task. The pacer runs on the same loop. Other threads (tests calling `step()` and
friends) hand work to the loop with `call_on_loop`, so sessions and subscriptions are only touched there;
the set of open sessions is also read under the state's lock for the connection counts.

Nothing here logs or echoes a secret or a signature: auth failures are answered with a reason only,
`incoming_message` echoes are scrubbed, and the websockets frame logger is kept below DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from .book import Push
from .connection import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    NoFrameLogger,
    Session,
    SimConnection,
    query_api_key,
    reset,
    write_queue,
)
from .dispatch import Dispatcher
from .pacer import Pacer
from .state import ExchangeState
from .subscriptions import Subscriptions

logger = logging.getLogger("orders.simulator")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_INCOMING_BYTES = 1 << 20
THREAD_NAME = "qfex-simulator"


def check_address(host: str, port: int) -> None:
    if host not in LOOPBACK_HOSTS:
        raise ValueError("the simulator only listens on loopback (127.0.0.1, localhost or ::1)")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError("port must be a whole number from 0 to 65535")


class SimServer:
    """Listens, serves connections and runs the pacer, in a thread started by `start()` and ended by `stop()`.

    `handle` serves one connection (the simulator passes its own hook, which ends in `serve_connection`).
    """

    def __init__(
        self,
        state: ExchangeState,
        handle: Callable[[ServerConnection], Awaitable[None]],
        *,
        host: str,
        port: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        close_timeout: float,
    ) -> None:
        check_address(host, port)
        self.host = host
        self.port = port
        self._state = state
        self._handle = handle
        # QFEX pings authenticated clients (interval unknown). Whether it drops a client that does not answer
        # is unknown too, so by default the pings are not enforced (ping_timeout None).
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self.sessions: set[Session] = set()  # added and removed on the loop, under the state's lock
        self.subscriptions = Subscriptions(state)
        self._dispatcher = Dispatcher(state, self.subscriptions)
        self.pacer = Pacer(state, self.subscriptions.publish_orders)
        self._connection_serial = 0
        # Event-loop state, (re)created by each start().
        self._thread: threading.Thread | None = None
        self._thread_ident: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._start_error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    # ----- life cycle -----

    def start(self) -> None:
        """Start serving in a background daemon thread; returns once the listener accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        ready = threading.Event()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, args=(ready,), name=THREAD_NAME, daemon=True)
        self._thread.start()
        ready.wait()
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise self._start_error

    def stop(self) -> None:
        """Close every connection and the listener and join the thread. Safe to call twice."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        if threading.current_thread() is not thread:
            thread.join()
        self._thread = None

    def call_on_loop(self, callback: Callable[[], None]) -> None:
        """Run `callback()` on the loop thread (now if already there); dropped when not running."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._thread_ident:
            callback()
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback)

    def publish_threadsafe(self, pushes: list[Push]) -> None:
        """Publish order changes made on any thread to the sessions subscribed to their books."""
        if pushes:
            self.call_on_loop(lambda: self.subscriptions.publish_orders(pushes))

    def close_sessions(self, public_key: str, code: int, reason: str) -> None:
        """Close the sessions logged in with this key, once what they have queued is sent."""

        def close() -> None:
            for session in list(self.sessions):
                if session.account is not None and session.account.public_key == public_key:
                    session.close_after_queue(code, reason)

        self.call_on_loop(close)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as exc:
            if not ready.is_set():
                self._start_error = exc
                ready.set()
            else:
                logger.exception("simulator: event loop failed")
        finally:
            try:
                pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._loop = None
                self._stop_event = None

    async def _main(self, ready: threading.Event) -> None:
        stop_event = self._stop_event = asyncio.Event()
        try:
            server = await serve(
                self._handle,
                self.host,
                self.port,
                process_request=self._process_request,
                compression=None,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=self._close_timeout,
                max_size=MAX_INCOMING_BYTES,
                logger=NoFrameLogger(logging.getLogger("orders.simulator.websockets")),
                create_connection=SimConnection,
            )
        except OSError as exc:
            self._start_error = OSError(exc.errno, f"cannot listen on {self.host}:{self.port}: {exc.strerror}")
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._thread_ident = threading.get_ident()
        pacer = asyncio.create_task(self.pacer.run())
        logger.info("simulator: listening on %s", self.url)
        ready.set()
        try:
            await stop_event.wait()
        finally:
            pacer.cancel()
            await self._shutdown(server)
            self._thread_ident = None
            logger.info("simulator: stopped")

    async def _shutdown(self, server: Server) -> None:
        # A silent connection never answers a close handshake: cut it instead of waiting for a timeout.
        for session in list(self.sessions):
            if session.ws.silent_forever or self._state.faults.silent:
                reset(session.ws.transport)
        server.close()
        try:
            async with asyncio.timeout(self._close_timeout + 3):
                await server.wait_closed()
        except TimeoutError:
            for session in list(self.sessions):
                session.ws.transport.abort()
            async with asyncio.timeout(3):
                await server.wait_closed()

    # ----- connections -----

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """The handshake faults (F1 and the silent handshake); None lets the upgrade go ahead."""
        self._state.traffic.note_handshake()
        faults = self._state.faults
        if faults.refuse_handshake:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        if faults.reset_handshake:
            reset(connection.transport)
            await asyncio.shield(connection.connection_lost_waiter)
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "reset\n")  # never sent
        if faults.silent_handshake:
            assert self._stop_event is not None
            stopping = asyncio.ensure_future(self._stop_event.wait())
            either: set[asyncio.Future[Any]] = {stopping, connection.connection_lost_waiter}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        return None

    async def serve_connection(self, ws: ServerConnection) -> None:
        """Serve one upgraded connection until it closes: its writer, its deadlines and its messages."""
        assert isinstance(ws, SimConnection)
        faults = self._state.faults
        with self._state.lock:
            self._connection_serial += 1
            serial = self._connection_serial
        session = Session(ws, query_api_key(ws.request), f"sim-conn-{serial}")
        ws.faults = faults
        with self._state.lock:
            self.sessions.add(session)
        tasks: list[asyncio.Task[None]] = []
        try:
            if faults.silent:
                ws.silent_forever = True
                if ws.keepalive_task is not None:
                    ws.keepalive_task.cancel()
                await ws.wait_closed()
                return
            tasks.append(asyncio.create_task(write_queue(session)))
            tasks.append(asyncio.create_task(_auth_watchdog(session, faults.auth_deadline)))
            if faults.max_lifetime > 0:
                tasks.append(asyncio.create_task(_lifetime(session, faults.max_lifetime)))
            async for raw in ws:
                if self._state.faults.silent:
                    continue  # F4 switched on mid-connection: process nothing while it lasts
                if not session.closing:
                    await self._dispatcher.on_message(session, raw)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            if session.book_id is not None:
                self.subscriptions.drop(session, session.book_id)
            with self._state.lock:
                self.sessions.discard(session)


async def _auth_watchdog(session: Session, deadline: float) -> None:
    await asyncio.sleep(deadline)
    if not session.authenticated and not session.closing:
        logger.info("simulator: %s closed: no auth within %g s", session.connection_id, deadline)
        session.close_after_queue(CLOSE_POLICY, "authentication timeout")


async def _lifetime(session: Session, seconds: float) -> None:
    await asyncio.sleep(seconds)
    session.close_after_queue(CLOSE_GOING_AWAY, "connection lifetime exceeded")
