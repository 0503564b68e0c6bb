"""`Simulator`: the simulated exchange as tests, benchmarks and the demo drive it.

It puts the parts together — the state (`state.py`), the server loop (`server.py`), which hands each message
to the dispatcher and its handlers (`dispatch.py`, `handlers.py`) — and offers the control API: start and
stop, the knobs, revoking keys and reading what was received here; changing and reading the books in its
base class `BookControls` (`book_control.py`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Self

from websockets.asyncio.server import ServerConnection

from .accounts import DEMO_ACCOUNTS, SimAccount, check_unique
from .book_control import BookControls
from .connection import CLOSE_POLICY
from .events import DEFAULT_SIZE, OrderEvent
from .faults import Faults
from .server import SimServer, check_address
from .state import ExchangeState


class Simulator(BookControls):
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
        check_address(host, port)
        self._state = ExchangeState(
            accounts,
            seed=seed,
            epoch=time.time() if epoch is None else epoch,
            pace=pace,
            page_latency=page_latency,
            page_order=page_order,
            faults=faults,
            weights=weights,
            event_log_size=event_log_size,
        )
        self._server = SimServer(
            self._state,
            self._handle,
            host=host,
            port=port,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Simulator {self.url if self.running else ''} {state}, {len(self._state.accounts_by_key)} accounts>"

    async def _handle(self, ws: ServerConnection) -> None:
        """Serve one connection. The hook a subclass wraps to watch a connection (bench's TimedSimulator)."""
        await self._server.serve_connection(ws)

    # ----- life cycle -----

    def start(self) -> Self:
        """Start serving in a background daemon thread; returns once the listener accepts connections."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Close every connection and the listener and join the thread. Safe to call twice."""
        self._server.stop()

    def restart(self) -> None:
        """Stop (every client sees its connection end) and listen again on the same port with the same books."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        if not self._server.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def accounts(self) -> tuple[SimAccount, ...]:
        return tuple(self._state.accounts_by_key.values())

    # ----- knobs -----

    @property
    def faults(self) -> Faults:
        """The fault switches, read each time they matter (`sim.faults.reply_delay = 2.0` from any thread)."""
        return self._state.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._state.faults = value

    @property
    def weights(self) -> dict[str, float]:
        """Rate-limit weight per message type (QFEX's by default); change entries to change the costs."""
        return self._state.weights

    @weights.setter
    def weights(self, value: dict[str, float]) -> None:
        self._state.weights = value

    @property
    def pace(self) -> float:
        """Activity events per second performed by a background task (0 = only explicit `step()` calls)."""
        return self._state.pace

    @pace.setter
    def pace(self, value: float) -> None:
        self._state.pace = value
        self._server.call_on_loop(self._server.pacer.wake)

    @property
    def page_latency(self) -> float:
        """Extra seconds before every get_user_orders reply (on top of `faults.reply_delay`)."""
        return self._state.page_latency

    @page_latency.setter
    def page_latency(self, value: float) -> None:
        self._state.page_latency = value

    @property
    def page_order(self) -> str:
        """How get_user_orders lists a book: "insertion" (default; a modified order keeps its place) or
        "updated" (latest update first, so a filled or modified order jumps to offset 0). Settable at run time."""
        return self._state.page_order

    @page_order.setter
    def page_order(self, value: str) -> None:
        self._state.page_order = value

    # ----- keys -----

    def revoke(self, public_key: str) -> None:
        """Refuse the key from now on and close the sessions already authenticated with it."""
        if public_key not in self._state.accounts_by_key:
            raise KeyError(f"unknown public key {public_key!r}")
        with self._state.lock:
            self._state.revoked.add(public_key)
        self._server.close_sessions(public_key, CLOSE_POLICY, "API key revoked")

    def unrevoke(self, public_key: str) -> None:
        with self._state.lock:
            self._state.revoked.discard(public_key)

    # ----- observability -----

    def request_count(self, msg_type: str) -> int:
        """How many messages of this `type` were received, over all connections (refused ones included)."""
        return self._state.traffic.request_count(msg_type)

    def order_events(self, since_ns: int = 0, account_key: str | None = None) -> list[OrderEvent]:
        """The order_response pushes produced at or after `since_ns` (`time.monotonic_ns()`), of one book
        (user id, subaccount id or public key) or all, oldest first, each with the moment it was produced
        (see `orders/simulator/events.py`). Kept for the last `event_log_size` pushes."""
        book_id = None if account_key is None else self._state.book_id(account_key)
        return self._state.event_log.since(since_ns, book_id)

    @property
    def forbidden_received(self) -> list[dict[str, object]]:
        """Every message received outside the read-only allow-list (trading, unknown, invalid JSON, binary),
        as received but with credential-like fields redacted. A copy."""
        return self._state.traffic.forbidden()

    @property
    def received_log(self) -> list[tuple[str | None, str]]:
        """(public key or None, message type) of every message received, oldest first. A copy."""
        return self._state.traffic.received()

    @property
    def connection_count(self) -> int:
        """WebSocket connections currently open (handshake completed, not yet closed)."""
        with self._state.lock:
            return len(self._server.sessions)

    def authenticated_connections(self, account_key: str | None = None) -> int:
        """Open connections that authenticated (onto this account's book when `account_key` is given)."""
        book_id = None if account_key is None else self._state.book_id(account_key)
        with self._state.lock:
            return sum(
                1 for s in self._server.sessions if s.authenticated and (book_id is None or s.book_id == book_id)
            )

    @property
    def handshake_count(self) -> int:
        """HTTP upgrade requests received (refused and reset ones included), e.g. to spot reconnect storms."""
        return self._state.traffic.handshakes

    def reset_counters(self) -> None:
        """Clear request counts, the forbidden and received logs, the handshake count and the rate budgets."""
        self._state.reset_counters()
