"""Shared helpers for whole-stack runs (soak, load): a real Daphne process, its own database, browser sockets.

Nothing here imports Django: the site is prepared by ``manage.py`` subprocesses with the same environment
Daphne gets, so the benchmark process shares no database connection or setting with the server. Starting,
stopping and preparing Daphne is :mod:`bench.site`'s, shared with the tests.

- :func:`prepare_site` — a fresh SQLite database (``migrate``), a team with exchange accounts pointing at a
  simulator, viewer users with logged-in sessions.
- :class:`DaphneServer` — Daphne serving a listening socket this process owns (``--fd``), so a restart
  keeps the address and a browser reconnecting meanwhile simply waits in the listen queue.
- :class:`PageTables` / :class:`PageSocket` — what the page script does (``static/js/live/protocol.js``):
  snapshot parts reassembled per seq, diffs applied in seq order, ``resync`` on a gap or a status that
  announces an unseen seq, reconnects with capped exponential backoff and full jitter.
- :func:`expected_tables` — the rows a page should show for a simulator book (the same conversion the
  feed applies), to compare tables by id and by every field.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import random
import re
import resource
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bench.site import base_env, loopback_listener, manage, migrate, run_setup, sqlite_url, start_daphne, stop_daphne
from orders.live.rows import order_rows, twap_rows, without_placement
from orders.qfex.records import parse_order, parse_twap
from orders.simulator import SimAccount, Simulator

# Variables of the caller's environment that must not leak into the server under test.
_DROPPED_ENV_PREFIXES = ("QFEX", "DATABASE", "REDIS", "CHANNEL_LAYER", "DEBUG", "LOG_LEVEL", "DJANGO_", "TEST_")
_PROBLEM_LINE = re.compile(r"Traceback \(most recent call last\)|\s(ERROR|CRITICAL)\s")

# Close codes after which the page stops retrying (signed out, access refused, no such account).
FATAL_CLOSE_CODES = frozenset({4001, 4003, 4004})
# Close codes a healthy socket may see when the server goes away (restart) or the network drops.
ROUTINE_CLOSE_CODES = frozenset({1000, 1001, 1006, 1012})

_SETUP_SCRIPT = """
import json, os
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from orders.accounts import exchange_accounts, teams
from orders.models import Membership
spec = json.loads(os.environ["BENCH_SITE_SPEC"])
users = get_user_model()
admin = users.objects.create_user("bench_admin", password=None, is_staff=True, is_superuser=True)
team = teams.team_create(actor=admin, name="Bench team")
accounts = []
for item in spec["accounts"]:
    account = exchange_accounts.account_create(
        actor=admin, label=item["label"], public_key=item["public_key"], secret=item["secret"],
        owner_team=team, endpoint="custom", custom_url=spec["url"],
    )
    accounts.append({"pk": account.pk, "label": account.label, "public_key": account.public_key})
sessions = []
for index in range(spec["users"]):
    user = users.objects.create_user(f"bench_viewer_{index + 1}", password=None)
    teams.membership_add(actor=admin, team=team, user=user, role=Membership.Role.VIEWER)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    sessions.append(session.session_key)
print("BENCH_SITE " + json.dumps({"accounts": accounts, "sessions": sessions}))
"""

# An admin re-enters an account's key (same secret, fresh ciphertext): how a person clears a rejected key.
_REENTER_KEY_SCRIPT = """
import json, os
from django.contrib.auth import get_user_model
from orders.accounts import exchange_accounts
from orders.models import ExchangeAccount
admin = get_user_model().objects.get(username="bench_admin")
for item in json.loads(os.environ["BENCH_REENTER"]):
    account = ExchangeAccount.objects.get(pk=item["pk"])
    exchange_accounts.account_set_secret(actor=admin, account=account, secret=item["secret"])
print("BENCH_REENTERED")
"""


@dataclass(frozen=True)
class SiteAccount:
    pk: int
    label: str
    public_key: str


@dataclass
class Site:
    """A prepared database plus the environment every process of the site runs with."""

    workdir: Path
    env: dict[str, str]
    accounts: list[SiteAccount]
    sessions: list[str]
    secrets: dict[str, str] = field(repr=False)  # public key → simulator-only secret


def bench_encryption_key() -> str:
    """A fresh 32-byte key in URL-safe base64, for this run's database only."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def site_env(workdir: Path, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: the caller's minus anything that could point it elsewhere, plus a
    private SQLite file, state folder and encryption key, the in-memory channel layer and loopback only."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
    env = base_env(
        inherited,
        database_url=sqlite_url(workdir),
        state_dir=workdir / "state",
        encryption_keys=bench_encryption_key(),
        secret_key="bench-only-secret-key-" + base64.urlsafe_b64encode(os.urandom(24)).decode(),
        log_level="WARNING",
        # Never the real exchange, whatever an account says.
        QFEX_TRADE_URL="ws://127.0.0.1:9",
        QFEX_UAT_TRADE_URL="ws://127.0.0.1:9",
    )
    env.update(overrides or {})
    return env


def prepare_site(
    workdir: Path,
    sim: Simulator,
    accounts: Sequence[SimAccount],
    *,
    users: int = 1,
    env_overrides: Mapping[str, str] | None = None,
) -> Site:
    """Migrate a new SQLite database in ``workdir`` and add a team owning ``accounts`` (pointing at ``sim``)
    and ``users`` viewers of that team, each with a logged-in session."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = site_env(workdir, env_overrides)
    migrate(env, timeout=180)
    spec = {
        "url": sim.url,
        "users": users,
        "accounts": [
            {"label": f"Bench {i + 1}", "public_key": a.public_key, "secret": a.secret} for i, a in enumerate(accounts)
        ],
    }
    data = run_setup({**env, "BENCH_SITE_SPEC": json.dumps(spec)}, _SETUP_SCRIPT, timeout=180, prefix="BENCH_SITE ")
    return Site(
        workdir=workdir,
        env=env,
        accounts=[SiteAccount(**item) for item in data["accounts"]],
        sessions=data["sessions"],
        secrets={a.public_key: a.secret for a in accounts},
    )


def reenter_keys(site: Site, accounts: Sequence[SiteAccount]) -> None:
    """Have an admin re-enter each account's key (the same secret, newly encrypted), through the services."""
    items = [{"pk": a.pk, "secret": site.secrets[a.public_key]} for a in accounts]
    manage({**site.env, "BENCH_REENTER": json.dumps(items)}, "shell", "-c", _REENTER_KEY_SCRIPT, timeout=120)


def raise_nofile_limit(wanted: int) -> int:
    """Raise this process's open-file soft limit to ``wanted`` (capped by the hard limit); the new limit.
    Children started afterwards (Daphne) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


@dataclass(frozen=True)
class ProcSample:
    rss_kib: int
    threads: int


def proc_sample(pid: int) -> ProcSample | None:
    """Resident memory and thread count of a process, from /proc; None when it is gone or exiting.

    A process that has exited but is not yet reaped (a zombie, e.g. Daphne between SIGTERM and ``wait``)
    still has a status file, without ``VmRSS``.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if "VmRSS" not in values or "Threads" not in values:
        return None
    return ProcSample(int(values["VmRSS"].split()[0]), int(values["Threads"]))


class DaphneServer:
    """``daphne --fd`` on a loopback socket owned here; start/stop/restart keep the address."""

    def __init__(
        self,
        site: Site,
        *,
        backlog: int = 1024,
        log_name: str = "daphne.log",
        application: str = "qfexdash.asgi:application",
    ) -> None:
        self.site = site
        self.application = application
        self.listener = loopback_listener(backlog, reuse_address=True)
        self.port: int = self.listener.getsockname()[1]
        self.log_path = site.workdir / log_name
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start Daphne and wait until it answers HTTP."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("Daphne is already running")
        self.process = start_daphne(self.site.env, self.listener, self.log_path, application=self.application)
        self.starts += 1
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Daphne exited with {self.process.returncode}; see {self.log_path}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/login/", headers={"Host": "127.0.0.1"})
                if conn.getresponse().status < 500:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"Daphne did not answer within {timeout:g} s; see {self.log_path}")
            time.sleep(0.1)  # polling a process that is starting up; nothing to wait on

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``. The listening socket stays open."""
        stop_daphne(self.process, timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self.listener.close()

    def sample(self) -> ProcSample | None:
        pid = self.pid
        return None if pid is None else proc_sample(pid)

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def problems_since(self, offset: int) -> list[str]:
        """Lines from byte ``offset`` on that show an unhandled exception or an ERROR/CRITICAL log record."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return []
        return [line.strip() for line in text.splitlines() if _PROBLEM_LINE.search(line)]


# --- the page's view of the live protocol --------------------------------------------------------

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
            for name, rows in (("orders", view.orders), ("twaps", view.twaps)):
                for row in message["upsert"][name]:
                    rows[row["id"]] = row
                for row_id in message["remove"][name]:
                    rows.pop(row_id, None)
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
