"""The live page's side of the protocol: browser sockets that keep a page's tables, as the page script
does (``static/js/live/protocol.js``).

- :func:`apply_diff` — a diff's upserts and removals applied to a page's tables, for every reader here
  and the benchmarks' viewers;
- :class:`PageTables` / :class:`PageSocket` — for the soak and the load run (asyncio): snapshot parts
  reassembled per seq, diffs applied in seq order, ``resync`` on a gap or a status that announces an
  unseen seq, reconnects with capped exponential backoff and full jitter;
- :class:`Page` — one account's messages on a blocking socket, for the services tests;
- :func:`expected_tables` / :func:`shows` — the rows a page should show for a simulator book (the same
  conversion the feed applies), to compare tables by id and by every field.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import websocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.harness.site import SiteAccount
from orders.live.rows import order_rows, twap_rows, without_placement
from orders.qfex.records import parse_order, parse_twap
from orders.simulator import Simulator

# Close codes after which the page stops retrying (signed out, access refused, no such account).
FATAL_CLOSE_CODES = frozenset({4001, 4003, 4004})
# Close codes a healthy socket may see when the server goes away (restart) or the network drops.
ROUTINE_CLOSE_CODES = frozenset({1000, 1001, 1006, 1012})

# --- the page's view of the live protocol --------------------------------------------------------


def apply_diff(message: dict[str, Any], orders: dict[str, Any], twaps: dict[str, Any]) -> None:
    """A diff's upserted rows replace or join the tables (rows by id); its removed ids leave them."""
    for name, rows in (("orders", orders), ("twaps", twaps)):
        for row in message["upsert"][name]:
            rows[row["id"]] = row
        for row_id in message["remove"][name]:
            rows.pop(row_id, None)


RESYNC_REPEAT_SECONDS = 5.0  # as the page: an unanswered resync may be asked again after this long


@dataclass
class AccountView:
    """One account's tables on one page."""

    seq: int | None = None
    orders: dict[str, Any] = field(default_factory=dict)
    twaps: dict[str, Any] = field(default_factory=dict)
    state: str = ""
    resync_asked_at: float | None = None
    pending: dict[str, Any] | None = None  # snapshot parts being collected
    snapshots: int = 0
    diffs: int = 0
    gaps: int = 0
    # (monotonic time, state) at every change of state.
    transitions: list[tuple[float, str]] = field(default_factory=list)

    def set_state(self, state: str, now: float) -> None:
        if state != self.state:
            self.state = state
            self.transitions.append((now, state))
            if len(self.transitions) > 10_000:
                del self.transitions[:5_000]

    def first_state_since(self, since: float, states: frozenset[str]) -> float | None:
        """When the view first showed one of ``states`` at or after ``since`` (already showing it counts)."""
        before = [s for t, s in self.transitions if t < since]
        if before and before[-1] in states:
            return since
        return next((t for t, s in self.transitions if t >= since and s in states), None)

    def states_since(self, since: float) -> set[str]:
        before = [s for t, s in self.transitions if t < since]
        return {s for t, s in self.transitions if t >= since} | ({before[-1]} if before else set())


class PageTables:
    """The page script's bookkeeping (SeqTracker + SnapshotAssembler of ``static/js/live/protocol.js``)."""

    def __init__(self) -> None:
        self.accounts: dict[int, AccountView] = {}

    def view(self, account: int) -> AccountView:
        view = self.accounts.get(account)
        if view is None:
            view = self.accounts[account] = AccountView()
        return view

    def reset(self) -> None:
        """A new connection: forget seqs and pending parts; keep the rows on screen until the new snapshot."""
        for view in self.accounts.values():
            view.seq = None
            view.resync_asked_at = None
            view.pending = None

    def apply(self, message: dict[str, Any], now: float) -> int | None:
        """Apply one server message; returns an account to send ``resync`` for, or None."""
        kind = message.get("type")
        account = message.get("account")
        if not isinstance(account, int):
            return None
        view = self.view(account)
        if kind == "snapshot":
            whole, resync = self._assemble(view, message)
            if whole is not None:
                view.seq = whole["seq"]
                view.resync_asked_at = None
                view.orders = {row["id"]: row for row in whole["orders"]}
                view.twaps = {row["id"]: row for row in whole["twaps"]}
                view.snapshots += 1
                view.set_state(whole["status"]["state"], now)
            return account if resync and self._ask(view, now) else None
        if kind == "diff":
            seq = message.get("seq")
            if view.seq is None or view.resync_asked_at is not None:
                return account if self._ask(view, now) else None
            if not isinstance(seq, int) or seq <= view.seq:
                return None  # a duplicate or an old frame: already applied
            if seq != view.seq + 1:
                view.gaps += 1
                return account if self._ask(view, now) else None
            view.seq = seq
            view.diffs += 1
            apply_diff(message, view.orders, view.twaps)
            return None
        if kind == "status":
            view.set_state(message["state"], now)
            seq = message.get("seq")
            if view.seq is not None and isinstance(seq, int) and seq > view.seq:
                view.gaps += 1  # a heartbeat announces a diff this page never got
                return account if self._ask(view, now) else None
        return None

    @staticmethod
    def _ask(view: AccountView, now: float) -> bool:
        if view.resync_asked_at is not None and now - view.resync_asked_at < RESYNC_REPEAT_SECONDS:
            return False
        view.resync_asked_at = now
        return True

    @staticmethod
    def _assemble(view: AccountView, message: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
        part, parts = message.get("part", 1), message.get("parts", 1)
        valid = isinstance(part, int) and isinstance(parts, int) and 1 <= part <= parts
        if valid and part == 1:
            view.pending = None
            if parts == 1:
                return message, False
            view.pending = {"seq": message["seq"], "parts": parts, "next": 2, "first": message}
            view.pending["orders"] = list(message["orders"])
            view.pending["twaps"] = list(message["twaps"])
            return None, False
        pending = view.pending
        if (
            not valid
            or pending is None
            or (pending["seq"], pending["parts"], pending["next"])
            != (
                message["seq"],
                parts,
                part,
            )
        ):
            view.pending = None
            return None, True
        pending["orders"].extend(message["orders"])
        pending["twaps"].extend(message["twaps"])
        pending["next"] += 1
        if part < parts:
            return None, False
        view.pending = None
        return {**pending["first"], "orders": pending["orders"], "twaps": pending["twaps"]}, False


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full jitter: uniformly random between 0 and min(cap, base * 2^attempt) (as the page does)."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 30)))


class PageSocket:
    """One browser tab's socket: keeps the page's tables, reconnects like the page, can stop reading.

    ``run()`` is a task that lives until :meth:`stop`; ``on_message(socket, message, wall_time)`` (optional)
    sees every message after it is applied.
    """

    def __init__(
        self,
        url: str,
        origin: str,
        session_key: str,
        *,
        name: str = "",
        backoff_base: float = 0.5,
        backoff_cap: float = 5.0,
        open_timeout: float = 20.0,
        max_queue: int = 16,
        on_message: Callable[[PageSocket, dict[str, Any], float], None] | None = None,
    ) -> None:
        self.url = url
        self.origin = origin
        self.session_key = session_key
        self.name = name or url
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.open_timeout = open_timeout
        self.max_queue = max_queue
        self.on_message = on_message
        self.tables = PageTables()
        self.connections = 0
        self.failed_connects = 0
        self.resyncs_sent = 0
        self.close_codes: Counter[int] = Counter()
        self.connected_at: float | None = None  # monotonic time of the current connection's open
        self.fatal_close: int | None = None
        self.server_errors: list[dict[str, Any]] = []
        self.connect_errors: Counter[str] = Counter()
        self.open = asyncio.Event()
        self._reading = asyncio.Event()
        self._reading.set()
        self._stopping = False
        self._ws: ClientConnection | None = None

    # --- control ---------------------------------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading: after ``max_queue`` frames the client stops reading TCP and the server's sends back up."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    async def stop(self) -> None:
        self._stopping = True
        self._reading.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    # --- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                ws = await connect(
                    self.url,
                    origin=self.origin,  # type: ignore[arg-type]
                    additional_headers={"Cookie": f"sessionid={self.session_key}"},
                    proxy=None,  # loopback only, whatever the environment says
                    compression=None,
                    open_timeout=self.open_timeout,
                    ping_interval=None,  # browsers answer pings, they do not send them
                    close_timeout=2,
                    max_size=16 * 1024 * 1024,
                    max_queue=self.max_queue,
                    user_agent_header=None,
                )
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self.failed_connects += 1
                label = f"HTTP {exc.response.status_code}" if isinstance(exc, InvalidStatus) else type(exc).__name__
                self.connect_errors[label] += 1
                await self._sleep(backoff_delay(attempt, self.backoff_base, self.backoff_cap))
                attempt += 1
                continue
            self._ws = ws
            self.connections += 1
            self.connected_at = time.monotonic()
            self.tables.reset()
            self.open.set()
            attempt = 0
            code = await self._read(ws)
            self.open.clear()
            self._ws = None
            self.close_codes[code] += 1
            if code in FATAL_CLOSE_CODES:
                self.fatal_close = code
                return  # the page stops here too: a person has to act
            if not self._stopping:
                await self._sleep(backoff_delay(attempt, self.backoff_base, self.backoff_cap))
                attempt += 1

    async def _read(self, ws: ClientConnection) -> int:
        try:
            while True:
                if not self._reading.is_set():
                    await self._reading.wait()
                raw = await ws.recv()
                now = time.monotonic()
                message = orjson.loads(raw)
                if message.get("type") == "error":
                    self.server_errors.append(message)
                account = self.tables.apply(message, now)
                if account is not None:
                    self.resyncs_sent += 1
                    await ws.send('{"type":"resync"}')
                if self.on_message is not None:
                    self.on_message(self, message, time.time())
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else 1006

    async def _sleep(self, seconds: float) -> None:
        if not self._stopping:
            await asyncio.sleep(seconds)


# --- a page on a blocking socket ----------------------------------------------------------------


class Page:
    """What the page script does with one account's messages, on a blocking socket (websocket-client):
    snapshot parts, seq gaps, resync. The services tests read the cluster's sockets with it."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.seq: int | None = None
        self.orders: dict[str, Any] = {}
        self.twaps: dict[str, Any] = {}
        self.state = ""
        self.snapshots = 0
        self.diffs = 0
        self.gaps = 0
        self.messages = 0
        self._pending: list[dict[str, Any]] = []

    def receive(self) -> dict[str, Any]:
        message = json.loads(self.ws.recv())
        self.apply(message)
        return message

    def resync(self) -> None:
        self.seq = None
        self._pending = []
        self.ws.send(json.dumps({"type": "resync"}))

    def apply(self, message: dict[str, Any]) -> None:
        self.messages += 1
        kind = message["type"]
        if kind == "snapshot":
            self._snapshot_part(message)
        elif kind == "diff" and self.seq is not None:
            if message["seq"] <= self.seq:
                return
            if message["seq"] != self.seq + 1:
                self.gaps += 1
                self.resync()
                return
            self.seq = message["seq"]
            self.diffs += 1
            apply_diff(message, self.orders, self.twaps)
        elif kind == "status":
            self.state = message["state"]
            if self.seq is not None and message["seq"] > self.seq:
                self.gaps += 1  # a heartbeat shows a diff went missing
                self.resync()

    def _snapshot_part(self, message: dict[str, Any]) -> None:
        part, parts = message.get("part", 1), message.get("parts", 1)
        if part == 1:
            self._pending = [message]
        elif self._pending and self._pending[0]["seq"] == message["seq"] and len(self._pending) + 1 == part:
            self._pending.append(message)
        else:
            self.gaps += 1
            self.resync()
            return
        if len(self._pending) < parts:
            return
        pieces, self._pending = self._pending, []
        first = pieces[0]
        self.seq = first["seq"]
        self.state = first["status"]["state"]
        self.snapshots += 1
        self.orders = {}
        self.twaps = {row["id"]: row for row in first["twaps"]}
        for piece in pieces:
            for row in piece["orders"]:
                self.orders[row["id"]] = row

    def follow_until(self, condition: Callable[[], bool], patience: float, what: str) -> None:
        deadline = time.monotonic() + patience
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting until {what}")
            self.ws.settimeout(remaining)
            try:
                self.receive()
            except websocket.WebSocketTimeoutException:
                raise AssertionError(f"timed out waiting until {what}") from None


# --- the truth -----------------------------------------------------------------------------------


def expected_tables(sim: Simulator, account: SiteAccount) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows a page should show for ``account``: the simulator's book through the feed's own conversion."""
    orders = order_rows([parse_order(o) for o in sim.open_orders(account.public_key)], account.pk, account.label)
    twaps = twap_rows([parse_twap(t) for t in sim.active_twaps(account.public_key)], account.pk, account.label)
    # Through JSON, as a browser sees them (floats and strings exactly as orjson writes them).
    return orjson.loads(orjson.dumps(orders)), orjson.loads(orjson.dumps(twaps))


def shows(view: AccountView | None, orders: dict[str, Any], twaps: dict[str, Any]) -> bool:
    """Whether a page's view of an account is live, in sequence, and equal to the given tables."""
    return (
        view is not None
        and view.state == "live"
        and view.seq is not None
        and view.resync_asked_at is None
        and without_placement(view.orders) == without_placement(orders)
        and view.twaps == twaps
    )
