"""The simulated QFEX trade WebSocket: a `websockets` server on loopback, in its own thread and event loop.

Each connection gets a `_Session`: its messages are handled one after another by the connection's handler
task, and everything it sends (replies, pushes, closes, the F2 partial frame) goes through one queue drained
by a writer task, so frames leave in the order they were produced. Book state lives in a `Market` guarded by
one lock, so tests may call `step()`, `add_orders()` and friends from their own thread while clients are
being served; pushes produced there are handed to the loop with `call_soon_threadsafe`.

Nothing here logs or echoes a secret or a signature: auth failures are answered with a reason only,
`incoming_message` echoes are scrubbed, and the websockets frame logger is kept below DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import math
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import frames
from .accounts import DEMO_ACCOUNTS, SimAccount, check_unique
from .auth import AuthFailed, NonceMemory, authenticate
from .book import PAGE_CAP, PAGE_ORDERS, Market, Push, page_reply
from .events import DEFAULT_SIZE, EventLog, OrderEvent
from .faults import Faults
from .ratelimit import DEFAULT_WEIGHT, DEFAULT_WEIGHTS, RateLimiter

logger = logging.getLogger("orders.simulator")

ALLOWED_TYPES = frozenset({"auth", "subscribe", "unsubscribe", "get_user_orders"})
# Types QFEX would execute as trading actions: refused with PermissionDenied. Every other type outside
# ALLOWED_TYPES is "unknown" here and refused with InvalidParameter. Both kinds are recorded.
TRADING_TYPES = frozenset(
    {
        "add_order", "add_twap", "cancel_order", "cancel_all_orders", "cancel_on_disconnect", "modify_order",
        "close_position", "set_user_leverage", "cancel_stop_order", "modify_stop_order", "transfer_balance",
    }
)  # fmt: skip
CHANNELS = frozenset({"order_responses", "fills", "positions", "balances", "stop_orders"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_QUEUED_FRAMES = 10_000  # a client this far behind is cut off rather than buffered forever
MAX_INCOMING_BYTES = 1 << 20
RAW_RECORD_CHARS = 1000
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001


class _NoFrameLogger(logging.LoggerAdapter):
    """websockets logs every frame, the auth frame's signature included, when its logger is at DEBUG.
    Reporting DEBUG as disabled keeps frames out of the logs whatever the logging configuration."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


class _SimConnection(ServerConnection):
    """A server connection whose output can be switched off (F4) once the handshake is done."""

    faults: Faults | None = None  # set after the handshake, so the 101 response always goes out
    silent_forever = False

    def send_data(self) -> None:
        if self.silent_forever or (self.faults is not None and self.faults.silent):
            for data in self.protocol.data_to_send():
                if not data and self.transport.can_write_eof():
                    # The peer asked to close: end the TCP stream, still without sending a frame.
                    with contextlib.suppress(OSError):
                        self.transport.write_eof()
            return
        super().send_data()


class _Session:
    def __init__(self, ws: _SimConnection, url_api_key: str | None, connection_id: str) -> None:
        self.ws = ws
        self.url_api_key = url_api_key
        self.connection_id = connection_id
        self.account: SimAccount | None = None
        self.book_id: str | None = None
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[bytes | tuple[Any, ...]] = asyncio.Queue()
        self.closing = False
        self.envelopes_sent = 0

    @property
    def authenticated(self) -> bool:
        return self.account is not None

    def enqueue(self, item: bytes | tuple[Any, ...]) -> None:
        if self.closing:
            return
        if self.queue.qsize() >= MAX_QUEUED_FRAMES:
            self.closing = True
            logger.warning("simulator: dropping a client that stopped reading (%d frames queued)", MAX_QUEUED_FRAMES)
            _reset(self.ws.transport)
            return
        self.queue.put_nowait(item)

    def close_after_queue(self, code: int, reason: str) -> None:
        self.enqueue(("close", code, reason))
        self.closing = True


def _reset(transport: Any) -> None:
    """Abort the TCP connection with a RST (SO_LINGER 0) rather than an orderly FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _check_non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number, 0 or more")
    return float(value)


class Simulator:
    """A QFEX-compatible trade WebSocket on loopback, with live books and switchable faults.

    Usage: `with Simulator(accounts=[...], seed=7) as sim: ... sim.url ...` or `start()` / `stop()`.
    After `stop()` the simulator may be started again: it listens on the same port and keeps its books,
    which is how a test simulates a server restart (`restart()`).

    The books are a pure function of `seed`, `epoch` and the sequence of `step()`/`add_*`/`remove_*` calls
    (plus F12 churn, which draws from the same random source). `epoch` (the virtual clock's start, Unix
    seconds) defaults to now so the demo's timestamps look current; pass it to compare two runs exactly.
    Every public method may be called from any thread while the simulator runs.
    """

    def __init__(
        self,
        accounts: Sequence[SimAccount] | None = None,
        *,
        seed: int = 7,
        pace: float = 0.0,
        page_latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        epoch: float | None = None,
        weights: Mapping[str, float] | None = None,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = None,
        close_timeout: float = 2.0,
        page_order: str = "insertion",
        event_log_size: int = DEFAULT_SIZE,
    ) -> None:
        accounts = list(DEMO_ACCOUNTS if accounts is None else accounts)
        check_unique(accounts)
        if host not in LOOPBACK_HOSTS:
            raise ValueError("the simulator only listens on loopback (127.0.0.1, localhost or ::1)")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port must be a whole number from 0 to 65535")
        self._host = host
        self._port = port
        self._accounts_by_key = {account.public_key: account for account in accounts}
        self._revoked: set[str] = set()
        self.faults = faults if faults is not None else Faults()
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        # QFEX pings authenticated clients (interval unknown). Whether it drops a client that does not answer
        # is unknown too, so by default the pings are not enforced (ping_timeout None).
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._pace = _check_non_negative("pace", pace)
        self._page_latency = _check_non_negative("page_latency", page_latency)
        self._page_order = _check_page_order(page_order)
        epoch = time.time() if epoch is None else epoch
        self._lock = threading.RLock()
        self._event_log = EventLog(event_log_size)
        self._market = Market(
            accounts, seed, round(epoch, 6), event_seconds=self._event_seconds(), event_log=self._event_log
        )
        self._nonces = NonceMemory()
        self._limiter = RateLimiter()
        self._requests: Counter[str] = Counter()
        self._forbidden: list[dict[str, Any]] = []
        self._received: deque[tuple[str | None, str]] = deque(maxlen=100_000)
        self._handshakes = 0
        self._sessions: set[_Session] = set()
        self._subscribers: dict[str, set[_Session]] = {}
        self._connection_serial = 0
        # Event-loop state, (re)created by each start().
        self._thread: threading.Thread | None = None
        self._thread_ident: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._pace_changed: asyncio.Event | None = None
        self._start_error: BaseException | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Simulator {self.url if self.running else ''} {state}, {len(self._accounts_by_key)} accounts>"

    # ----- life cycle -----

    def start(self) -> Simulator:
        """Start serving in a background daemon thread; returns once the listener accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        ready = threading.Event()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, args=(ready,), name="qfex-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise self._start_error
        return self

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

    def restart(self) -> None:
        """Stop (every client sees its connection end) and listen again on the same port with the same books."""
        self.stop()
        self.start()

    def __enter__(self) -> Simulator:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self._port}"

    @property
    def accounts(self) -> tuple[SimAccount, ...]:
        return tuple(self._accounts_by_key.values())

    # ----- knobs -----

    @property
    def pace(self) -> float:
        """Activity events per second performed by a background task (0 = only explicit `step()` calls)."""
        return self._pace

    @pace.setter
    def pace(self, value: float) -> None:
        self._pace = _check_non_negative("pace", value)
        with self._lock:
            self._market.event_seconds = self._event_seconds()
        self._call_on_loop(self._wake_pacer)

    @property
    def page_latency(self) -> float:
        """Extra seconds before every get_user_orders reply (on top of `faults.reply_delay`)."""
        return self._page_latency

    @page_latency.setter
    def page_latency(self, value: float) -> None:
        self._page_latency = _check_non_negative("page_latency", value)

    @property
    def page_order(self) -> str:
        """How get_user_orders lists a book: "insertion" (default; a modified order keeps its place) or
        "updated" (latest update first, so a filled or modified order jumps to offset 0). Settable at run time."""
        return self._page_order

    @page_order.setter
    def page_order(self, value: str) -> None:
        self._page_order = _check_page_order(value)

    def _event_seconds(self) -> float:
        # With a pace, the virtual clock advances about as fast as the wall clock.
        return 1.0 / self._pace if self._pace > 0 else 1.0

    # ----- book access for tests and the demo -----

    def _book_id(self, account_key: str) -> str:
        if account_key in self._market.books:
            return account_key
        account = self._accounts_by_key.get(account_key)
        if account is not None:
            return account.user_id
        raise KeyError(f"unknown account {account_key!r} (use a user_id, a subaccount id or a public key)")

    def step(self, n: int = 1) -> list[dict[str, Any]]:
        """Perform `n` deterministic activity events; returns the order changes they pushed, in order."""
        with self._lock:
            pushes = self._market.step(n)
        self._publish_threadsafe(pushes)
        return [dict(push.order) for push in pushes]

    def open_orders(self, account_key: str) -> list[dict[str, Any]]:
        """The book's open orders in the order get_user_orders pages through them (current shape)."""
        with self._lock:
            book = self._market.books[self._book_id(account_key)]
            return [dict(order) for order in book.ordered(self._page_order)]

    def active_twaps(self, account_key: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(twap) for twap in self._market.books[self._book_id(account_key)].twaps]

    def add_orders(self, account_key: str, count: int = 1, **fields: Any) -> list[dict[str, Any]]:
        """Add `count` random orders, with `fields` overriding any field (or adding extra ones); pushes ACKs."""
        with self._lock:
            pushes = self._market.add_orders(self._book_id(account_key), count, fields)
        self._publish_threadsafe(pushes)
        return [dict(push.order) for push in pushes]

    def fill_order(self, account_key: str, order_id: str, quantity: Any) -> dict[str, Any] | None:
        """Fill part of an open order (pushes FILLED with what remains); None if it is not open."""
        with self._lock:
            push = self._market.fill_order(self._book_id(account_key), order_id, quantity)
        if push is None:
            return None
        self._publish_threadsafe([push])
        return dict(push.order)

    def modify_order(self, account_key: str, order_id: str, **fields: Any) -> dict[str, Any] | None:
        """Modify an open order (new id, status MODIFIED, pushed); returns it, or None if it is not open."""
        with self._lock:
            push = self._market.modify_order(self._book_id(account_key), order_id, fields)
        if push is None:
            return None
        self._publish_threadsafe([push])
        return dict(push.order)

    def remove_order(self, account_key: str, order_id: str) -> dict[str, Any] | None:
        """Cancel an order (pushes CANCELLED); returns the pushed order, None when there is no such order."""
        with self._lock:
            push = self._market.remove_order(self._book_id(account_key), order_id)
        if push is None:
            return None
        self._publish_threadsafe([push])
        return dict(push.order)

    def add_twaps(self, account_key: str, count: int = 1, **fields: Any) -> list[dict[str, Any]]:
        """Start `count` random TWAPs, with `fields` overriding any field (no push: QFEX has no TWAP channel)."""
        with self._lock:
            return self._market.add_twaps(self._book_id(account_key), count, fields)

    def advance_twap(self, account_key: str, twap_id: str) -> dict[str, Any] | None:
        """Run one child slice of a TWAP now; returns the TWAP, or None once its last slice ran (it is gone)."""
        with self._lock:
            book = self._market.books[self._book_id(account_key)]
            twap = next((t for t in book.twaps if t.get("twap_id") == twap_id), None)
            if twap is None:
                raise KeyError(f"no active TWAP {twap_id!r}")
            self._market.advance_twap(book, twap)
            return dict(twap) if any(t is twap for t in book.twaps) else None

    def revoke(self, public_key: str) -> None:
        """Refuse the key from now on and close the sessions already authenticated with it."""
        if public_key not in self._accounts_by_key:
            raise KeyError(f"unknown public key {public_key!r}")
        with self._lock:
            self._revoked.add(public_key)

        def close_sessions() -> None:
            for session in list(self._sessions):
                if session.account is not None and session.account.public_key == public_key:
                    session.close_after_queue(CLOSE_POLICY, "API key revoked")

        self._call_on_loop(close_sessions)

    def unrevoke(self, public_key: str) -> None:
        with self._lock:
            self._revoked.discard(public_key)

    # ----- observability -----

    def request_count(self, msg_type: str) -> int:
        """How many messages of this `type` were received, over all connections (refused ones included)."""
        with self._lock:
            return self._requests[msg_type]

    def order_events(self, since_ns: int = 0, account_key: str | None = None) -> list[OrderEvent]:
        """The order_response pushes produced at or after `since_ns` (`time.monotonic_ns()`), of one book
        (user id, subaccount id or public key) or all, oldest first, each with the moment it was produced
        (see `orders/simulator/events.py`). Kept for the last `event_log_size` pushes."""
        book_id = None if account_key is None else self._book_id(account_key)
        return self._event_log.since(since_ns, book_id)

    @property
    def forbidden_received(self) -> list[dict[str, Any]]:
        """Every message received outside the read-only allow-list (trading, unknown, invalid JSON, binary),
        as received but with credential-like fields redacted. A copy."""
        with self._lock:
            return list(self._forbidden)

    @property
    def received_log(self) -> list[tuple[str | None, str]]:
        """(public key or None, message type) of every message received, oldest first. A copy."""
        with self._lock:
            return list(self._received)

    @property
    def connection_count(self) -> int:
        """WebSocket connections currently open (handshake completed, not yet closed)."""
        with self._lock:
            return len(self._sessions)

    def authenticated_connections(self, account_key: str | None = None) -> int:
        """Open connections that authenticated (onto this account's book when `account_key` is given)."""
        book_id = None if account_key is None else self._book_id(account_key)
        with self._lock:
            return sum(1 for s in self._sessions if s.authenticated and (book_id is None or s.book_id == book_id))

    @property
    def handshake_count(self) -> int:
        """HTTP upgrade requests received (refused and reset ones included), e.g. to spot reconnect storms."""
        with self._lock:
            return self._handshakes

    def reset_counters(self) -> None:
        """Clear request counts, the forbidden and received logs, the handshake count and the rate budgets."""
        with self._lock:
            self._requests.clear()
            self._forbidden.clear()
            self._received.clear()
            self._handshakes = 0
            self._limiter.reset()

    # ----- event loop plumbing -----

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
        self._stop_event = asyncio.Event()
        self._pace_changed = asyncio.Event()
        try:
            server = await serve(
                self._handle,
                self._host,
                self._port,
                process_request=self._process_request,
                compression=None,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=self._close_timeout,
                max_size=MAX_INCOMING_BYTES,
                logger=_NoFrameLogger(logging.getLogger("orders.simulator.websockets")),
                create_connection=_SimConnection,
            )
        except OSError as exc:
            self._start_error = OSError(exc.errno, f"cannot listen on {self._host}:{self._port}: {exc.strerror}")
            ready.set()
            return
        self._port = server.sockets[0].getsockname()[1]
        self._thread_ident = threading.get_ident()
        pacer = asyncio.create_task(self._pace_loop())
        logger.info("simulator: listening on %s", self.url)
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            pacer.cancel()
            await self._shutdown(server)
            self._thread_ident = None
            logger.info("simulator: stopped")

    async def _shutdown(self, server: Server) -> None:
        # A silent connection never answers a close handshake: cut it instead of waiting for a timeout.
        for session in list(self._sessions):
            if session.ws.silent_forever or self.faults.silent:
                _reset(session.ws.transport)
        server.close()
        try:
            async with asyncio.timeout(self._close_timeout + 3):
                await server.wait_closed()
        except TimeoutError:
            for session in list(self._sessions):
                session.ws.transport.abort()
            async with asyncio.timeout(3):
                await server.wait_closed()

    def _call_on_loop(self, callback: Any, *args: Any) -> None:
        """Run `callback(*args)` on the loop thread (now if already there); dropped when not running."""
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._thread_ident:
            callback(*args)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback, *args)

    def _wake_pacer(self) -> None:
        if self._pace_changed is not None:
            self._pace_changed.set()

    async def _pace_loop(self) -> None:
        """`pace` events per second on a fixed schedule: time spent serving clients (or a busy machine)
        delays an event but does not lower the rate. Events that fell due meanwhile run together, up to a
        second's worth; a longer stall is dropped rather than replayed as a burst."""
        assert self._pace_changed is not None
        loop = asyncio.get_running_loop()
        due_at: float | None = None
        while True:
            self._pace_changed.clear()
            if self._pace <= 0:
                due_at = None
                await self._pace_changed.wait()
                continue
            interval = 1.0 / self._pace
            if due_at is None:
                due_at = loop.time() + interval
            try:
                async with asyncio.timeout(max(0.0, due_at - loop.time())):
                    await self._pace_changed.wait()
                due_at = None  # the pace changed: start a new schedule at the new rate
                continue
            except TimeoutError:
                pass
            late = loop.time() - due_at
            count = min(1 + int(late / interval), max(1, math.ceil(self._pace)))
            with self._lock:
                pushes = self._market.step(count)
            self._publish(pushes)
            due_at += count * interval
            if loop.time() - due_at > 1.0:
                due_at = loop.time() + interval

    def _publish_threadsafe(self, pushes: list[Push]) -> None:
        if pushes:
            self._call_on_loop(self._publish, pushes)

    def _publish(self, pushes: list[Push]) -> None:
        if self.faults.drop_pushes:
            return
        for push in pushes:
            subscribers = self._subscribers.get(push.book_id)
            if not subscribers:
                continue
            frame = orjson.dumps({"order_response": push.order})
            for session in list(subscribers):
                session.enqueue(frame)

    # ----- connections -----

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self._handshakes += 1
        faults = self.faults
        if faults.refuse_handshake:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        if faults.reset_handshake:
            _reset(connection.transport)
            await asyncio.shield(connection.connection_lost_waiter)
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "reset\n")  # never sent
        if faults.silent_handshake:
            assert self._stop_event is not None
            stopping = asyncio.ensure_future(self._stop_event.wait())
            try:
                await asyncio.wait({stopping, connection.connection_lost_waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "Service Unavailable\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert isinstance(ws, _SimConnection)
        with self._lock:
            self._connection_serial += 1
            serial = self._connection_serial
        session = _Session(ws, _query_api_key(ws.request), f"sim-conn-{serial}")
        ws.faults = self.faults
        with self._lock:
            self._sessions.add(session)
        tasks: list[asyncio.Task[None]] = []
        try:
            if self.faults.silent:
                ws.silent_forever = True
                if ws.keepalive_task is not None:
                    ws.keepalive_task.cancel()
                await ws.wait_closed()
                return
            tasks.append(asyncio.create_task(self._writer(session)))
            tasks.append(asyncio.create_task(self._auth_watchdog(session, self.faults.auth_deadline)))
            if self.faults.max_lifetime > 0:
                tasks.append(asyncio.create_task(self._lifetime(session, self.faults.max_lifetime)))
            async for raw in ws:
                if self.faults.silent:
                    continue  # F4 switched on mid-connection: process nothing while it lasts
                if not session.closing:
                    await self._on_message(session, raw)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            if session.book_id is not None:
                self._subscribers.get(session.book_id, set()).discard(session)
            with self._lock:
                self._sessions.discard(session)

    async def _writer(self, session: _Session) -> None:
        ws = session.ws
        try:
            while True:
                item = await session.queue.get()
                if isinstance(item, bytes):
                    await ws.send(item, text=True)
                elif item[0] == "close":
                    await ws.close(item[1], item[2])
                    return
                elif item[0] == "partial":
                    await self._send_partial_then_reset(ws, item[1])
                    return
        except ConnectionClosed:
            return

    async def _send_partial_then_reset(self, ws: ServerConnection, payload: bytes) -> None:
        """F2: write the first half of the encoded frame straight to the transport, then reset the TCP."""
        header = frames.text_frame_header(len(payload))
        frame = header + payload
        ws.transport.write(frame[: max(len(frame) // 2, len(header) + 1)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        # Let the bytes reach the socket first: abort() discards whatever is still buffered.
        while ws.transport.get_write_buffer_size() and loop.time() < deadline:
            await asyncio.sleep(0.005)
        _reset(ws.transport)

    async def _auth_watchdog(self, session: _Session, deadline: float) -> None:
        await asyncio.sleep(deadline)
        if not session.authenticated and not session.closing:
            logger.info("simulator: %s closed: no auth within %g s", session.connection_id, deadline)
            session.close_after_queue(CLOSE_POLICY, "authentication timeout")

    async def _lifetime(self, session: _Session, seconds: float) -> None:
        await asyncio.sleep(seconds)
        session.close_after_queue(CLOSE_GOING_AWAY, "connection lifetime exceeded")

    # ----- messages -----

    def _error(self, code: str, message: str | None, incoming: Any = None, **extra: Any) -> bytes:
        echo: Any = frames.incoming_echo(incoming)
        if echo is not None and self.faults.incoming_message_as_string:
            echo = json.dumps(echo)
        return frames.error_frame(self.faults.error_shape, code, message, echo, **extra)

    def _note(self, session: _Session, msg_type: str, public_key: str | None = None) -> None:
        if public_key is None:
            public_key = session.account.public_key if session.account is not None else session.url_api_key
        with self._lock:
            self._requests[msg_type] += 1
            self._received.append((public_key, msg_type))

    def _record_forbidden(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._forbidden.append(entry)

    async def _on_message(self, session: _Session, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            self._note(session, "<binary>")
            self._record_forbidden({"binary_frame_bytes": len(raw)})
            session.enqueue(self._error("InvalidJSONFormat", "binary frames are not accepted; send JSON text"))
            return
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            self._note(session, "<invalid-json>")
            self._record_forbidden({"invalid_json": raw[:RAW_RECORD_CHARS]})
            session.enqueue(self._error("InvalidJSONFormat", "the message is not valid JSON"))
            return
        msg_type = message.get("type") if isinstance(message, dict) else None
        if not isinstance(msg_type, str):
            self._note(session, "<no-type>")
            self._record_forbidden(frames.scrub(message) if isinstance(message, dict) else {"invalid": message})
            incoming = message if isinstance(message, dict) else None
            session.enqueue(
                self._error("InvalidJSONFormat", "a message must be an object with a string type", incoming)
            )
            return

        if msg_type == "auth":
            self._on_auth(session, message)
            return
        self._note(session, msg_type)
        if msg_type not in ALLOWED_TYPES:
            self._record_forbidden(frames.scrub(message))
        if not session.authenticated:
            session.enqueue(self._error("PermissionDenied", "authenticate first", message))
            return
        assert session.account is not None
        faults = self.faults
        with self._lock:
            retry_after = self._limiter.check(
                session.account.user_id,
                self.weights.get(msg_type, DEFAULT_WEIGHT),
                faults.rate_limit_weight,
                faults.rate_limit_window,
            )
        if retry_after is not None:
            retry_after = faults.rate_limit_retry_after or retry_after
            text = f"Rate limit exceeded, retry after {retry_after} s"
            session.enqueue(self._error("RateLimited", text, message, retry_after=retry_after))
            return
        if msg_type == "get_user_orders":
            await self._on_get_user_orders(session, message)
        elif msg_type in ("subscribe", "unsubscribe"):
            self._on_subscribe(session, message)
        elif msg_type in TRADING_TYPES:
            text = f"{msg_type} refused: this simulator never executes trading messages"
            session.enqueue(self._error("PermissionDenied", text, message))
        else:
            session.enqueue(self._error("InvalidParameter", f"unknown message type {msg_type!r}", message))

    def _on_auth(self, session: _Session, message: dict[str, Any]) -> None:
        params = message.get("params")
        hmac_block = params.get("hmac") if isinstance(params, dict) else None
        claimed = hmac_block.get("public_key") if isinstance(hmac_block, dict) else None
        claimed = claimed if isinstance(claimed, str) else session.url_api_key
        self._note(session, "auth", claimed if session.account is None else session.account.public_key)
        if session.authenticated:
            session.enqueue(self._error("AlreadyAuthenticated", "this connection is already authenticated", message))
            return
        faults = self.faults
        try:
            with self._lock:
                outcome = authenticate(
                    params,
                    find_account=self._live_account,
                    nonces=self._nonces,
                    now=time.time(),
                    url_api_key=session.url_api_key,
                    reject_all=faults.reject_auth,
                )
        except AuthFailed as exc:
            logger.info("simulator: %s auth refused (key %s): %s", session.connection_id, claimed, exc)
            if faults.auth_failure_style == "err":
                session.enqueue(self._error("PermissionDenied", str(exc), message))
            elif faults.auth_failure_style == "authenticated_false":
                session.enqueue(orjson.dumps({"authenticated": False}))
            session.close_after_queue(CLOSE_POLICY, "authentication failed")
            return
        session.book_id = outcome.book_id
        session.account = outcome.account  # last: other threads read "authenticated" from it
        logger.debug("simulator: %s authenticated as %s", session.connection_id, outcome.account.public_key)
        session.enqueue(frames.auth_success_frame(faults.auth_success_shape))
        if faults.close_after_auth:
            session.close_after_queue(CLOSE_GOING_AWAY, "closed right after the login")

    def _live_account(self, public_key: str) -> SimAccount | None:
        if public_key in self._revoked:
            return None
        return self._accounts_by_key.get(public_key)

    def _send_unrelated_frames(self, session: _Session) -> None:
        assert session.account is not None
        assert session.book_id is not None
        with self._lock:
            stale = self._market.stale_order(session.book_id)
        session.envelopes_sent += 1
        for frame in frames.unrelated_frames(
            session.account.user_id, session.connection_id, session.envelopes_sent, stale
        ):
            session.enqueue(frame)

    def _on_subscribe(self, session: _Session, message: dict[str, Any]) -> None:
        assert session.book_id is not None
        params = message.get("params")
        channels = params.get("channels") if isinstance(params, dict) else None
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            text = "params.channels must be a non-empty list of channel names"
            session.enqueue(self._error("InvalidJSONFormat", text, message))
            return
        unknown = sorted({c for c in channels if c not in CHANNELS})
        if unknown:
            session.enqueue(self._error("InvalidParameter", f"unknown channel(s): {', '.join(unknown)}", message))
            return
        if self.faults.unrelated_frames:
            self._send_unrelated_frames(session)
        subscribing = message["type"] == "subscribe"
        for channel in channels:
            if subscribing:
                session.channels.add(channel)
            else:
                session.channels.discard(channel)
            if channel == "order_responses":
                subscribers = self._subscribers.setdefault(session.book_id, set())
                if subscribing:
                    subscribers.add(session)
                else:
                    subscribers.discard(session)
            session.enqueue(orjson.dumps({"subscribed" if subscribing else "unsubscribed": channel}))

    async def _on_get_user_orders(self, session: _Session, message: dict[str, Any]) -> None:
        assert session.book_id is not None
        params = message.get("params")
        params = {} if params is None else params
        if not isinstance(params, dict):
            session.enqueue(self._error("InvalidJSONFormat", "params must be an object", message))
            return
        numbers = {}
        for name, default in (("limit", PAGE_CAP), ("offset", 0)):
            value = params.get(name)
            if value is None:
                value = default
            elif isinstance(value, bool) or not isinstance(value, int):
                session.enqueue(self._error("InvalidJSONFormat", f"params.{name} must be an integer", message))
                return
            elif value < 0:
                session.enqueue(self._error("InvalidParameter", f"params.{name} must be 0 or more", message))
                return
            numbers[name] = value
        symbol = params.get("symbol")
        if symbol is not None and not isinstance(symbol, str):
            session.enqueue(self._error("InvalidJSONFormat", "params.symbol must be a string", message))
            return

        faults = self.faults
        delay = faults.reply_delay + self._page_latency
        if delay > 0:
            await asyncio.sleep(delay)
        if session.closing:
            return
        if faults.read_error_code:
            text = f"{faults.read_error_code}: act on this account in the web app before reading it"
            session.enqueue(self._error(faults.read_error_code, text, message))
            return
        limit = min(numbers["limit"], faults.page_cap, PAGE_CAP)
        offset = numbers["offset"]
        if faults.unrelated_frames:
            self._send_unrelated_frames(session)
        with self._lock:
            book = self._market.books[session.book_id]
            if faults.oversized_reply_bytes > 0 and not (faults.malformed_json or faults.wrong_schema):
                selected = book.select(limit, offset, symbol, self._page_order)
                reply = frames.padded_reply(page_reply("current", *selected), faults.oversized_reply_bytes)
            else:
                reply = book.page_bytes(faults.response_shape, limit, offset, symbol, self._page_order)
        if faults.drop_mid_reply:
            session.enqueue(("partial", reply))
            session.closing = True
            return
        if faults.malformed_json:
            reply = frames.MALFORMED_REPLY
        elif faults.wrong_schema:
            reply = frames.WRONG_SCHEMA_REPLY
        if faults.orders_array != "present":
            reply = frames.without_orders_array(reply, null=faults.orders_array == "null")
        session.enqueue(reply)
        if faults.duplicate_replies:
            session.enqueue(reply)
        if faults.page_mutation > 0:
            with self._lock:
                pushes = self._market.churn(session.book_id, faults.page_mutation)
            self._publish(pushes)


def _check_page_order(value: str) -> str:
    if value not in PAGE_ORDERS:
        raise ValueError(f"page_order must be one of {', '.join(PAGE_ORDERS)}")
    return value


def _query_api_key(request: Request | None) -> str | None:
    if request is None:
        return None
    values = parse_qs(urlsplit(request.path).query).get("api_key")
    return values[0] if values else None
