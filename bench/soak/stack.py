"""The whole stack a soak runs against, the bookkeeping the faults and the checks share, and what a fault is.

:class:`Stack` starts the simulator in this process, a team site (:func:`bench.harness.site.team_site`)
served by :class:`~bench.harness.daphne.Daphne`, and ``accounts x sockets-per-account`` browser sockets
(:class:`bench.harness.pages.PageSocket`) that keep the page's tables. While it runs it samples Daphne's memory
once a second and catches ERROR records and unhandled asyncio exceptions of this process. Everything runs
on one event loop; blocking steps (simulator restarts, Daphne, ``manage.py``) go to threads.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.daphne import Daphne
from bench.harness.pages import AccountView, PageSocket, expected_tables, shows
from bench.harness.proc import ProcSample, raise_open_files_limit
from bench.harness.site import TeamSite, team_site
from bench.soak.config import SoakConfig
from bench.soak.results import Check
from orders.simulator import SimAccount, Simulator

POLL_SECONDS = 0.1  # how often a condition on the pages' tables is looked at
SAMPLE_SECONDS = 1.0  # how often Daphne's memory and threads are read


class ErrorCapture(logging.Handler):
    """ERROR and CRITICAL records (and unhandled asyncio exceptions) of this process, for the pass bar."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.note(f"{record.levelname} {record.name}: {record.getMessage()}")

    def note(self, text: str) -> None:
        self.records.append(text)


def soak_accounts(config: SoakConfig) -> list[SimAccount]:
    """The simulated accounts of one run: fresh keys (simulator-only), ``orders_per_account`` orders each."""
    token = secrets.token_hex(4)
    return [
        SimAccount(
            public_key=f"qfex_pub_soak_{i + 1}_{token}",
            secret=f"qfex_secret_soak_{i + 1}_{secrets.token_hex(12)}",
            orders=config.orders_per_account,
            twaps=3,
        )
        for i in range(config.accounts)
    ]


@dataclass
class FaultSpec:
    """One fault of the soak: how to switch it on and heal it, and what proves it acted."""

    name: str
    title: str
    apply: Callable[[Stack], Awaitable[None]]
    heal: Callable[[Stack], Awaitable[None]]
    # "stale"/"error": the state pages must show while it is on (upstream fails); None: it must not fail.
    shows: str | None = None
    # A condition that proves the fault acted (waited for, with the deadline, after the fault's time).
    effect: Callable[[Stack], bool] | None = None
    effect_text: str = ""
    extra_allowance: float = 0.0  # added to the convergence limit, with the reason in `allowance_text`
    allowance_text: str = ""
    checks: Callable[[Stack], list[Check]] | None = None


class Stack:
    """The simulator, the site, Daphne and the browser sockets of one soak run, and what the fault that is
    on has noted so far (``phase``, cleared for each fault; ``t0`` when it started, ``heal_at`` when it ended)."""

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.sim: Simulator
        self.site: TeamSite
        self.daphne: Daphne | None = None
        self.sockets: list[PageSocket] = []
        self.socket_account: dict[PageSocket, int] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.samples: list[tuple[float, str, int, ProcSample]] = []  # (time, fault, pid, sample)
        self.current = "warm-up"
        self.t0 = 0.0
        self.heal_at = 0.0
        self.phase: dict[str, Any] = {}
        self.background: list[asyncio.Task[None]] = []
        self.baseline: dict[int, ProcSample] = {}  # Daphne pid → warmed-up sample
        self.fault_end_samples: list[tuple[str, int, ProcSample]] = []
        self.capture = ErrorCapture()
        self._sampler: asyncio.Task[None] | None = None

    @property
    def server(self) -> Daphne:
        assert self.daphne is not None, "the stack has not started"
        return self.daphne

    # --- start and stop --------------------------------------------------------------------------

    async def start(self) -> None:
        """Everything up: simulator, site, Daphne, the sockets (opening) and the memory sampler."""
        cfg = self.config
        raise_open_files_limit(4096)
        logging.getLogger().addHandler(self.capture)
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: self.capture.note(str(context.get("message")))
        )
        accounts = soak_accounts(cfg)
        self.sim = Simulator(accounts, seed=17, pace=0.0).start()
        folder = cfg.workdir or Path(tempfile.mkdtemp(prefix="qfexdash-soak-"))
        self.say(f"preparing the site in {folder}")
        self.site = await asyncio.to_thread(
            team_site, folder, self.sim.url, accounts, viewers=cfg.accounts, settings=cfg.server_env()
        )
        self.daphne = Daphne(self.site.env, folder / "daphne.log", patience=cfg.deadline)
        await asyncio.to_thread(self.daphne.start)
        self._open_sockets()
        self._sampler = asyncio.ensure_future(self._sample_forever())

    async def stop_sampler(self) -> Exception | None:
        """Stop the memory sampler; the error that stopped it earlier, if one did."""
        sampler, self._sampler = self._sampler, None
        if sampler is None:
            return None
        sampler.cancel()
        try:
            await sampler
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            return exc
        return None

    async def close(self) -> None:
        """Everything down, whatever state the run ended in."""
        try:
            await self.stop_sampler()
            await self.stop_background()
            for sock in self.sockets:
                await sock.stop()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if self.daphne is not None:
                await asyncio.to_thread(self.daphne.close)
            if hasattr(self, "sim"):
                await asyncio.to_thread(self.sim.stop)
        finally:
            logging.getLogger().removeHandler(self.capture)
            asyncio.get_running_loop().set_exception_handler(None)

    def _open_sockets(self) -> None:
        cfg = self.config
        for index, account in enumerate(self.site.accounts):
            session = self.site.sessions[index % len(self.site.sessions)]
            for n in range(cfg.sockets_per_account):
                sock = PageSocket(
                    self.server.ws_url(f"/ws/accounts/{account.pk}/"),
                    self.server.origin,
                    session,
                    name=f"account {account.pk} tab {n + 1}",
                )
                self.sockets.append(sock)
                self.socket_account[sock] = account.pk
                self.tasks.append(asyncio.ensure_future(sock.run()))

    async def _sample_forever(self) -> None:
        while True:
            pid = self.server.pid
            sample = self.server.sample()
            if pid is not None and sample is not None:
                self.samples.append((time.monotonic(), self.current, pid, sample))
            await asyncio.sleep(SAMPLE_SECONDS)

    def note_baseline(self) -> None:
        """The warmed-up memory of the Daphne process now running (kept once per process)."""
        pid, sample = self.server.pid, self.server.sample()
        if pid is not None and sample is not None:
            self.baseline.setdefault(pid, sample)

    # --- what the faults and the checks use --------------------------------------------------------

    def say(self, text: str) -> None:
        if self.config.progress is not None:
            self.config.progress(text)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def mark_start(self) -> None:
        """The fault proper starts now (after a preparation step such as a simulator restart)."""
        self.t0 = time.monotonic()
        self.sim.reset_counters()

    def all_live(self) -> bool:
        return all(view is not None and view.state == "live" for _, view in self.views())

    def requests(self, msg_type: str = "get_user_orders") -> Counter[str]:
        """Messages of ``msg_type`` received per public key since the phase began."""
        return Counter(key for key, kind in self.sim.received_log if kind == msg_type and key is not None)

    def views(self, account_pk: int | None = None) -> list[tuple[PageSocket, AccountView | None]]:
        result = []
        for sock in self.sockets:
            pk = self.socket_account[sock]
            if account_pk is None or pk == account_pk:
                result.append((sock, sock.tables.accounts.get(pk)))
        return result

    def sockets_by_account(self) -> dict[int, list[PageSocket]]:
        grouped: dict[int, list[PageSocket]] = {}
        for sock in self.sockets:
            grouped.setdefault(self.socket_account[sock], []).append(sock)
        return grouped

    def truth(self) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
        """Each account's tables as the simulator's books say they should be shown."""
        return {account.pk: expected_tables(self.sim, account) for account in self.site.accounts}

    def all_converged(self) -> bool:
        truth = self.truth()
        return all(shows(view, *truth[self.socket_account[sock]]) for sock, view in self.views())

    def background_task(self, coro: Awaitable[None]) -> None:
        self.background.append(asyncio.ensure_future(coro))

    async def stop_background(self) -> None:
        tasks, self.background = self.background, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # a fault step that failed is a failure of the run, not a crash
                self.capture.note(f"soak step failed: {type(exc).__name__}: {exc}")

    async def wait_for(self, condition: Callable[[], bool], timeout: float) -> float | None:
        """Seconds until ``condition()`` held (looked at every 0.1 s), None after ``timeout``."""
        start = time.monotonic()
        while True:
            if condition():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                return None
            await asyncio.sleep(POLL_SECONDS)
