"""Soak under faults: the whole stack through each upstream fault F1-F12 of design.md §5, with the pass bar.

``python -m bench.soak [--seconds-per-fault 600] [--faults F1,F2,...] [--accounts 3] [--sockets-per-account 5]``

The stack: the simulator in this process (pace > 0, so books keep moving while a fault is on), a real
Daphne process with its own SQLite database (3 team accounts pointing at the simulator, one viewer per
account), and ``accounts x sockets-per-account`` browser sockets (session cookie + Origin) that keep the
page's tables: snapshot parts reassembled, diffs in seq order, ``resync`` on a gap, reconnect with jitter.

For each fault in turn: switch it on (pace on) for ``--seconds-per-fault`` — and, for faults that make
upstream fail, until every page has shown the failure — then heal it and freeze the books (pace 0), and
check the pass bar:

- **no unhandled exception**: no ``Traceback``/``ERROR``/``CRITICAL`` line in Daphne's log, no ERROR log
  record or unhandled task exception in this process, no error frame sent to a page, no browser socket
  closed (except by the F10 restart);
- **stale shown**: for faults that make upstream fail, every page shows ``stale`` (``error`` for F6, a
  rejected key) within 2 reconcile intervals of the fault starting;
- **converged**: after healing, every socket's tables equal the simulator's books (by id and every field,
  through the feed's own row conversion) within one interval plus a stated grace (the upstream timeout and
  backoff cap that may be running when the fault ends, plus 1 s to measure), per fault;
- **bounded**: Daphne's RSS and thread count (``/proc/<pid>/status``) stay within a margin of the
  warmed-up process, with no growth from fault to fault;
- **upstream budget**: ``get_user_orders`` requests per account within the feed's rate budget
  (``QFEXDASH_RATE_BUDGET_SHARE`` of QFEX's 12 000 weight / 60 s, 5 per page, plus the burst), and the
  fault's own bound (F1 reconnect storm, F6 auth attempts, F7 requests refused by the exchange).

Timing criteria (stale within 2 intervals, converged within the limit) can be made informational with
``--lenient-timing`` (the CI smoke does): the condition must still be met, within a generous deadline.
Exit status 1 when any fault fails.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness.daphne import Daphne
from bench.harness.proc import ProcSample, raise_open_files_limit
from bench.harness.site import TeamSite, reenter_keys, team_site
from bench.stack import ROUTINE_CLOSE_CODES, PageSocket, expected_tables, shows
from orders.live.feed import FeedConfig
from orders.simulator import SimAccount, Simulator

logger = logging.getLogger("bench.soak")

ALL_FAULTS = ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12")
EXCHANGE_WEIGHT_PER_SECOND = 12_000 / 60
PAGE_WEIGHT = 5.0
MIB = 1024
DRIFT_MIN_SECONDS = 60.0


@dataclass
class SoakConfig:
    seconds_per_fault: float = 600.0
    faults: tuple[str, ...] = ALL_FAULTS
    accounts: int = 3
    sockets_per_account: int = 5
    orders_per_account: int = 60
    pace: float = 2.0  # simulator activity events per second, over all books, while a fault is on
    interval: float = 2.0  # QFEXDASH_RECONCILE_SECONDS
    timeout: float = 1.0  # QFEX_TIMEOUT_SECONDS
    backoff_base: float = 0.2
    backoff_cap: float = 2.0
    coalesce: float = 0.5
    budget_share: float = 0.10
    channel_capacity: int = 10  # small, so a page that falls behind loses group messages (F9)
    restart_every: float = 30.0  # F10: one Daphne restart per this many seconds of the fault (at least one)
    rss_margin_mib: float = 64.0  # bounded: never more than this above the warmed-up process
    rss_growth_mib: float = 16.0  # no trend: end of a fault at most this above the end of the first one
    thread_margin: int = 8
    drift_mib: float = 8.0  # no drift: RSS growth over the last 3/4 of a fault of 60 s or more
    strict_timing: bool = True
    deadline: float = 60.0  # longest wait for any condition (convergence, stale shown, an effect)
    workdir: Path | None = None
    progress: Callable[[str], None] | None = None

    @property
    def grace(self) -> float:
        """Allowed beyond one interval for convergence: an upstream call that was timing out and a backoff
        that was running when the fault ended, plus 1 s of measurement (polled every 0.1 s)."""
        return self.timeout + self.backoff_cap + 1.0

    def server_env(self) -> dict[str, str]:
        return {
            "QFEXDASH_RECONCILE_SECONDS": f"{self.interval:g}",
            "QFEX_TIMEOUT_SECONDS": f"{self.timeout:g}",
            "QFEXDASH_BACKOFF_BASE_SECONDS": f"{self.backoff_base:g}",
            "QFEXDASH_BACKOFF_CAP_SECONDS": f"{self.backoff_cap:g}",
            "QFEXDASH_REFRESH_COALESCE_SECONDS": f"{self.coalesce:g}",
            "QFEXDASH_RATE_BUDGET_SHARE": f"{self.budget_share:g}",
            "CHANNEL_LAYER_CAPACITY": str(self.channel_capacity),
            "LOG_LEVEL": "WARNING",
        }

    def budget_pages(self, seconds: float, processes: int = 1) -> float:
        """Most get_user_orders pages the feed's budget allows one key in ``seconds`` (one burst per process)."""
        config = FeedConfig(rate_budget_share=self.budget_share)
        return (processes * config.budget_burst + config.weight_per_second * seconds) / PAGE_WEIGHT


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    timing: bool = False  # a wall-clock criterion (informational when timing is lenient)
    fault_specific: bool = False  # printed under the table whatever its outcome


@dataclass
class FaultResult:
    fault: str
    title: str
    applied_seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    strict_timing: bool = True

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if self.strict_timing or not c.timing)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and (self.strict_timing or not c.timing)]


@dataclass
class SoakReport:
    config: SoakConfig
    results: list[FaultResult]
    overall: list[Check]
    started: float
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and all(c.ok for c in self.overall)


@dataclass
class FaultSpec:
    name: str
    title: str
    apply: Callable[[Soak], Awaitable[None]]
    heal: Callable[[Soak], Awaitable[None]]
    # "stale"/"error": the state pages must show while it is on (upstream fails); None: it must not fail.
    shows: str | None = None
    # A condition that proves the fault acted (waited for, with the deadline, after the fault's time).
    effect: Callable[[Soak], bool] | None = None
    effect_text: str = ""
    extra_allowance: float = 0.0  # added to the convergence limit, with the reason in `allowance_text`
    allowance_text: str = ""
    checks: Callable[[Soak], list[Check]] | None = None


class Soak:
    """One soak run: builds the stack, walks the faults in order, and checks each against the pass bar.

    Fault specs drive it through the helpers below; everything runs on one event loop (blocking steps —
    simulator restarts, Daphne restarts, ``manage.py`` — go to threads).
    """

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.sim: Simulator
        self.site: TeamSite
        self.daphne: Daphne
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
        self.capture = _ErrorCapture()

    # --- helpers used by the fault specs ---------------------------------------------------------

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

    def views(self, account_pk: int | None = None) -> list[tuple[PageSocket, Any]]:
        result = []
        for sock in self.sockets:
            pk = self.socket_account[sock]
            if account_pk is None or pk == account_pk:
                result.append((sock, sock.tables.accounts.get(pk)))
        return result

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
        """Seconds until ``condition()`` held (polled every 0.1 s), None after ``timeout``."""
        start = time.monotonic()
        while True:
            if condition():
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                return None
            await asyncio.sleep(0.1)

    # --- the run ---------------------------------------------------------------------------------

    async def run(self) -> SoakReport:
        cfg = self.config
        started_wall, started = time.time(), time.monotonic()
        raise_open_files_limit(4096)
        token = secrets.token_hex(4)
        accounts = [
            SimAccount(
                public_key=f"qfex_pub_soak_{i + 1}_{token}",
                secret=f"qfex_secret_soak_{i + 1}_{secrets.token_hex(12)}",  # simulator-only
                orders=cfg.orders_per_account,
                twaps=3,
            )
            for i in range(cfg.accounts)
        ]
        workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="qfexdash-soak-"))
        results: list[FaultResult] = []
        overall: list[Check] = []
        capture = self.capture
        logging.getLogger().addHandler(capture)
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: capture.note(str(context.get("message"))))
        self.sim = Simulator(accounts, seed=17, pace=0.0).start()
        try:
            self.say(f"preparing the site in {workdir}")
            self.site = await asyncio.to_thread(
                team_site, workdir, self.sim.url, accounts, viewers=cfg.accounts, settings=cfg.server_env()
            )
            self.daphne = Daphne(self.site.env, workdir / "daphne.log", patience=cfg.deadline)
            await asyncio.to_thread(self.daphne.start)
            self._open_sockets()
            sampler = asyncio.ensure_future(self._sample_forever())
            warm = await self.wait_for(self._all_converged, cfg.deadline)
            overall.append(Check("warm-up", warm is not None, f"all pages show the books after {_s(warm)}"))
            if warm is not None:
                self._note_baseline()
                for name in cfg.faults:
                    result = await self._run_fault(FAULTS[name])
                    results.append(result)
                    self.say(_result_line(result))
            overall.extend(self._overall_checks())
            sampler.cancel()
            try:
                await sampler
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # the memory checks above then saw too few samples
                overall.append(Check("memory sampler ran to the end", False, f"it stopped: {exc!r}"))
        finally:
            await self.stop_background()
            for sock in self.sockets:
                await sock.stop()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            if hasattr(self, "daphne"):
                await asyncio.to_thread(self.daphne.close)
            await asyncio.to_thread(self.sim.stop)
            logging.getLogger().removeHandler(capture)
            loop.set_exception_handler(None)
        report = SoakReport(cfg, results, overall, started_wall, time.monotonic() - started)
        return report

    def _open_sockets(self) -> None:
        cfg = self.config
        for index, account in enumerate(self.site.accounts):
            session = self.site.sessions[index % len(self.site.sessions)]
            for n in range(cfg.sockets_per_account):
                sock = PageSocket(
                    self.daphne.ws_url(f"/ws/accounts/{account.pk}/"),
                    self.daphne.origin,
                    session,
                    name=f"account {account.pk} tab {n + 1}",
                )
                self.sockets.append(sock)
                self.socket_account[sock] = account.pk
                self.tasks.append(asyncio.ensure_future(sock.run()))

    def _truth(self) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
        return {account.pk: expected_tables(self.sim, account) for account in self.site.accounts}

    def _all_converged(self) -> bool:
        truth = self._truth()
        return all(shows(view, *truth[self.socket_account[sock]]) for sock, view in self.views())

    async def _sample_forever(self) -> None:
        while True:
            pid = self.daphne.pid
            sample = self.daphne.sample()
            if pid is not None and sample is not None:
                self.samples.append((time.monotonic(), self.current, pid, sample))
            await asyncio.sleep(1.0)

    def _note_baseline(self) -> None:
        pid, sample = self.daphne.pid, self.daphne.sample()
        if pid is not None and sample is not None:
            self.baseline.setdefault(pid, sample)

    # --- one fault -------------------------------------------------------------------------------

    async def _run_fault(self, spec: FaultSpec) -> FaultResult:
        cfg = self.config
        result = FaultResult(spec.name, spec.title, strict_timing=cfg.strict_timing)
        self.current = spec.name
        self.phase = {}
        self.sim.pace = cfg.pace
        self.sim.reset_counters()
        log_offset = self.daphne.log_size()
        capture_start = len(self.capture.records)
        closes_before = {sock: Counter(sock.close_codes) for sock in self.sockets}
        errors_before = {sock: len(sock.server_errors) for sock in self.sockets}
        starts_before = self.daphne.starts
        self.t0 = time.monotonic()
        self.say(f"{spec.name}: {spec.title} — on for {cfg.seconds_per_fault:g} s")
        await spec.apply(self)
        await asyncio.sleep(cfg.seconds_per_fault)  # the fault's configured duration (pace on)
        if spec.effect is not None:
            took = await self.wait_for(lambda: spec.effect(self), cfg.deadline)
            result.checks.append(Check("fault acted", took is not None, spec.effect_text))
        if spec.shows is not None:
            await self.wait_for(lambda: self._all_showed(spec.shows), cfg.deadline)
        result.applied_seconds = self.elapsed()
        self.phase["requests_at_heal"] = self.requests()
        self.phase["auth_at_heal"] = self.requests("auth")
        self.phase["handshakes_at_heal"] = self.sim.handshake_count
        self.heal_at = time.monotonic()
        await self.stop_background()
        await spec.heal(self)
        self.sim.pace = 0.0  # freeze the books: the truth to converge to
        converged = await self._measure_convergence(spec, result)
        phase_seconds = self.elapsed()

        # Stale shown within 2 intervals of the fault starting.
        if spec.shows is not None:
            result.checks.extend(self._stale_checks(spec.shows))
        # Upstream requests within the budget (one burst per Daphne process that ran in the phase).
        processes = 1 + self.daphne.starts - starts_before
        result.checks.append(self._budget_check(phase_seconds, processes))
        if spec.checks is not None:
            for check in spec.checks(self):
                check.fault_specific = True
                result.checks.append(check)
        # Nothing unhandled anywhere; no page lost its socket (except to the F10 restart) or got an error frame.
        problems = self.daphne.problems_since(log_offset) + self.capture.records[capture_start:]
        result.checks.append(
            Check("no unhandled exception", not problems, "; ".join(problems[:3]) or "logs clean (Daphne, soak)")
        )
        unexpected = Counter[int]()
        for sock in self.sockets:
            for code, count in (sock.close_codes - closes_before[sock]).items():
                if spec.name != "F10" or code not in ROUTINE_CLOSE_CODES:
                    unexpected[code] += count
        frames = [e for sock in self.sockets for e in sock.server_errors[errors_before[sock] :]]
        result.checks.append(
            Check(
                "browser sockets undisturbed",
                not unexpected and not frames and all(s.fatal_close is None for s in self.sockets),
                f"unexpected closes {dict(unexpected)}, error frames {[f.get('code') for f in frames][:5]}"
                if unexpected or frames
                else "no unexpected close or error frame",
            )
        )
        result.checks.extend(self._memory_checks(spec.name))
        if converged:
            self._note_baseline()  # a restarted Daphne (F10) gets its warmed-up baseline here
        stale_seen = sum(
            1 for _, view in self.views() if view is not None and view.states_since(self.t0) & {"stale", "error"}
        )
        phase = self.phase
        result.figures = {
            "stale": _s(phase.get("stale_after")) if spec.shows else f"n/a ({stale_seen} pages did)",
            "converged": f"{_s(phase.get('converged_after'))} (≤ {phase.get('converge_limit', 0):g} s)",
            "requests": f"{phase.get('requests', 0)} (≤ {phase.get('requests_bound', 0):.0f})",
            "rss": f"{phase.get('rss_end', 0) / MIB:.0f} MiB ({phase.get('rss_peak', 0) / MIB:.0f})",
            "drift": "—" if "drift" not in phase else f"{phase['drift']:+.1f} MiB",
            "threads": str(phase.get("threads", "—")),
        }
        return result

    def _all_showed(self, state: str) -> bool:
        return all(
            view is not None and view.first_state_since(self.t0, frozenset({state})) is not None
            for _, view in self.views()
        )

    def _stale_checks(self, state: str) -> list[Check]:
        cfg = self.config
        firsts = [
            None if view is None else view.first_state_since(self.t0, frozenset({state})) for _, view in self.views()
        ]
        missing = sum(1 for t in firsts if t is None)
        delays = [t - self.t0 for t in firsts if t is not None]
        worst = max(delays) if delays else None
        limit = 2 * cfg.interval
        checks = [Check(f"{state} shown", missing == 0, f"{len(delays)}/{len(firsts)} pages showed {state}")]
        checks.append(
            Check(
                f"{state} within 2 intervals",
                worst is not None and missing == 0 and worst <= limit,
                f"slowest page {_s(worst)} (limit {limit:g} s)",
                timing=True,
            )
        )
        self.phase["stale_after"] = worst
        return checks

    async def _measure_convergence(self, spec: FaultSpec, result: FaultResult) -> bool:
        cfg = self.config
        first_match: dict[PageSocket, float] = {}

        def all_matched() -> bool:
            now = time.monotonic()
            truth = self._truth()
            for sock, view in self.views():
                if sock not in first_match and shows(view, *truth[self.socket_account[sock]]):
                    first_match[sock] = now
            return len(first_match) == len(self.sockets)

        took = await self.wait_for(all_matched, cfg.deadline + spec.extra_allowance)
        # Confirm at the end: every page still shows the (frozen) truth.
        still = took is not None and self._all_converged()
        limit = cfg.interval + cfg.grace + spec.extra_allowance
        delays = sorted(t - self.heal_at for t in first_match.values())
        worst = delays[-1] if delays else None
        result.checks.append(
            Check(
                "tables equal the books",
                still,
                f"{len(first_match)}/{len(self.sockets)} pages equal the simulator's books"
                + ("" if still or took is None else " (then diverged)"),
            )
        )
        note = f" incl. {spec.allowance_text}" if spec.allowance_text else ""
        result.checks.append(
            Check(
                "converged within the limit",
                took is not None and worst is not None and worst <= limit,
                f"slowest page {_s(worst)}, median {_s(statistics.median(delays) if delays else None)}"
                f" (limit {limit:g} s = interval {cfg.interval:g} + grace {cfg.grace:g}{note})",
                timing=True,
            )
        )
        self.phase["converged_after"] = worst
        self.phase["converge_limit"] = limit
        return took is not None

    def _budget_check(self, seconds: float, processes: int) -> Check:
        counts = self.requests()
        worst = max((counts.get(a.public_key, 0) for a in self.site.accounts), default=0)
        bound = self.config.budget_pages(seconds, processes) + 2
        share = worst * PAGE_WEIGHT / (EXCHANGE_WEIGHT_PER_SECOND * seconds) if seconds > 0 else 0.0
        self.phase["requests"] = worst
        self.phase["requests_bound"] = bound
        return Check(
            "upstream within budget",
            worst <= bound,
            f"max {worst} get_user_orders per account in {seconds:.0f} s"
            f" ({share:.1%} of QFEX's budget; bound {bound:.0f})",
        )

    def _memory_checks(self, fault: str) -> list[Check]:
        cfg = self.config
        pid, end = self.daphne.pid, self.daphne.sample()
        if pid is None or end is None:
            return [Check("memory and threads bounded", False, "Daphne is not running")]
        base = self.baseline.get(pid)
        during = [s for t, f, p, s in self.samples if f == fault and p == pid]
        peak_rss = max([s.rss_kib for s in during] + [end.rss_kib])
        peak_threads = max([s.threads for s in during] + [end.threads])
        self.fault_end_samples.append((fault, pid, end))
        self.phase["rss_end"] = end.rss_kib
        self.phase["rss_peak"] = peak_rss
        self.phase["threads"] = peak_threads
        if base is None:  # a new process (F10): its baseline is taken once it converged
            return [Check("memory and threads bounded", True, f"new process: RSS {end.rss_kib / MIB:.1f} MiB")]
        rss_limit = base.rss_kib + cfg.rss_margin_mib * MIB
        thread_limit = base.threads + cfg.thread_margin
        checks = [
            Check(
                "memory and threads bounded",
                peak_rss <= rss_limit and peak_threads <= thread_limit,
                f"RSS peak {peak_rss / MIB:.1f} MiB (limit {rss_limit / MIB:.1f}), threads peak {peak_threads}"
                f" (limit {thread_limit})",
            )
        ]
        # Drift while the fault is on: from a quarter of the way in (after the fault's first allocations)
        # to the heal. Checked when the fault ran long enough for a trend to show.
        on = [(t, s) for t, f, p, s in self.samples if f == fault and p == pid and self.t0 <= t <= self.heal_at]
        span = self.heal_at - self.t0
        if span >= DRIFT_MIN_SECONDS and len(on) < span / 4:
            # The sampler takes one a second: far fewer means it stopped, and the checks above saw too little.
            checks.append(Check("no memory drift while on", False, f"only {len(on)} memory samples in {span:.0f} s"))
        elif len(on) >= 2:
            start = next((s for t, s in on if t >= self.t0 + span / 4), on[0][1])
            drift = (on[-1][1].rss_kib - start.rss_kib) / MIB
            self.phase["drift"] = drift
            if span >= DRIFT_MIN_SECONDS:
                checks.append(
                    Check(
                        "no memory drift while on",
                        drift <= cfg.drift_mib,
                        f"RSS {drift:+.1f} MiB over the last 3/4 of the fault (margin {cfg.drift_mib:g})",
                    )
                )
        return checks

    def _overall_checks(self) -> list[Check]:
        cfg = self.config
        checks = []
        # No growth trend: per Daphne process, add up the growth from the end of one fault to the end of the
        # next. F9's burst (thousands of orders for a moment) raises the allocator's high-water mark once by
        # design; that step is reported and bounded by its own peak check, not counted as a trend.
        growth_rss, growth_threads, f9_step = 0.0, 0, 0.0
        previous: dict[int, ProcSample] = {}
        for fault, pid, sample in self.fault_end_samples:
            before = previous.get(pid)
            previous[pid] = sample
            if before is None:
                continue
            step = (sample.rss_kib - before.rss_kib) / MIB
            if fault == "F9":
                f9_step = step
                continue
            growth_rss += max(0.0, step)
            growth_threads += max(0, sample.threads - before.threads)
        checks.append(
            Check(
                "no memory/thread trend across faults",
                growth_rss <= cfg.rss_growth_mib and growth_threads <= cfg.thread_margin,
                f"RSS grew {growth_rss:+.1f} MiB in all from fault to fault (margin {cfg.rss_growth_mib:g};"
                f" F9's burst step {f9_step:+.1f} MiB not counted), threads {growth_threads:+d}"
                f" (margin {cfg.thread_margin})",
            )
        )
        # Design §3: a secret never appears in a log (Daphne's whole log, every restart included).
        log_text = self.daphne.log_text()
        leaked = sum(1 for secret in self.site.secrets.values() if secret in log_text)
        checks.append(
            Check(
                "no secret in Daphne's log",
                leaked == 0,
                f"{leaked} of {len(self.site.secrets)} secrets found" if leaked else "none of the secrets found",
            )
        )
        crashed = [t for t in self.tasks if t.done() and not t.cancelled() and t.exception() is not None]
        checks.append(
            Check("browser tasks alive", not crashed, f"{len(crashed)} socket tasks crashed" if crashed else "alive")
        )
        return checks


class _ErrorCapture(logging.Handler):
    """ERROR and CRITICAL records (and unhandled asyncio exceptions) of this process, for the pass bar."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.note(f"{record.levelname} {record.name}: {record.getMessage()}")

    def note(self, text: str) -> None:
        self.records.append(text)


# --- the faults ------------------------------------------------------------------------------------


async def _set(soak: Soak, **values: Any) -> None:
    for name, value in values.items():
        setattr(soak.sim.faults, name, value)


async def _restart_sim(soak: Soak) -> None:
    """Every upstream session ends and reconnects (under the fault just switched on)."""
    await asyncio.to_thread(soak.sim.restart)


async def _later(soak: Soak, delay: float, **values: Any) -> None:
    await asyncio.sleep(delay)
    await _set(soak, **values)


def _split(soak: Soak, parts: int) -> float:
    return soak.config.seconds_per_fault / parts


async def _f1_apply(soak: Soak) -> None:
    await _set(soak, refuse_handshake=True)
    await _restart_sim(soak)
    soak.background_task(_later(soak, _split(soak, 2), refuse_handshake=False, reset_handshake=True))


async def _f1_heal(soak: Soak) -> None:
    await _set(soak, refuse_handshake=False, reset_handshake=False)


def _f1_checks(soak: Soak) -> list[Check]:
    # A reconnect storm would show as many handshakes; full-jitter backoff capped at `cap` averages cap/2.
    cfg = soak.config
    seconds = soak.heal_at - soak.t0
    bound = cfg.accounts * (2 * seconds / (cfg.backoff_cap / 2) + 10)
    handshakes = soak.phase["handshakes_at_heal"]
    return [Check("reconnects back off", handshakes <= bound, f"{handshakes} handshakes (bound {bound:.0f})")]


async def _f2_apply(soak: Soak) -> None:
    await _set(soak, drop_mid_reply=True)


async def _f2_heal(soak: Soak) -> None:
    await _set(soak, drop_mid_reply=False)


async def _f3_apply(soak: Soak) -> None:
    await _set(soak, reply_delay=soak.config.timeout + 1.0)


async def _f3_heal(soak: Soak) -> None:
    await _set(soak, reply_delay=0.0)


async def _f4_apply(soak: Soak) -> None:
    await _set(soak, silent=True)


async def _f4_heal(soak: Soak) -> None:
    await _set(soak, silent=False)


# Just over the protocol client's 16 MiB message cap: refused before the payload is read.
OVERSIZED_REPLY_BYTES = 16 * 1024 * 1024 + 1024


async def _f5_apply(soak: Soak) -> None:
    await _set(soak, malformed_json=True)
    third = _split(soak, 3)
    soak.background_task(_later(soak, third, malformed_json=False, wrong_schema=True))
    soak.background_task(_later(soak, 2 * third, wrong_schema=False, oversized_reply_bytes=OVERSIZED_REPLY_BYTES))


async def _f5_heal(soak: Soak) -> None:
    await _set(soak, malformed_json=False, wrong_schema=False, oversized_reply_bytes=0)


async def _f6_apply(soak: Soak) -> None:
    await _set(soak, reject_auth=True)
    await _restart_sim(soak)


async def _f6_heal(soak: Soak) -> None:
    # A rejected key is fatal: the feed waits for a person. The person re-enters the key.
    await _set(soak, reject_auth=False)
    await asyncio.to_thread(reenter_keys, soak.site, soak.site.accounts)


def _f6_checks(soak: Soak) -> list[Check]:
    attempts = soak.phase["auth_at_heal"]
    worst = max((attempts.get(a.public_key, 0) for a in soak.site.accounts), default=0)
    # One reconnect after the restart; then nothing until QFEXDASH_AUTH_RETRY_SECONDS (300 s) or a new key.
    bound = 2 + math.ceil((soak.heal_at - soak.t0) / 300.0)
    return [Check("rejected key not hammered", worst <= bound, f"max {worst} auth attempts per key (bound {bound})")]


# A bucket smaller than one get_user_orders page (weight 5): every page is refused with retry_after = the
# window, so a client that ignores the hint shows up at once as many refused requests.
F7_WEIGHT = 4.99
F7_WINDOW = 5.0


async def _f7_apply(soak: Soak) -> None:
    await _set(soak, rate_limit_weight=F7_WEIGHT, rate_limit_window=F7_WINDOW)


async def _f7_heal(soak: Soak) -> None:
    await _set(soak, rate_limit_weight=12_000.0, rate_limit_window=60.0)


def _f7_checks(soak: Soak) -> list[Check]:
    # Every request is refused with retry_after = F7_WINDOW: honouring it means one request per window
    # (plus the one that met the limit first, and one in flight at each end).
    seconds = soak.heal_at - soak.t0
    bound = seconds / F7_WINDOW + 3
    counts = soak.phase["requests_at_heal"]
    worst = max((counts.get(a.public_key, 0) for a in soak.site.accounts), default=0)
    return [
        Check(
            "RateLimited honoured",
            worst <= bound,
            f"max {worst} refused requests per account in {seconds:.0f} s with retry_after {F7_WINDOW:g} s"
            f" (bound {bound:.0f})",
        )
    ]


async def _f8_apply(soak: Soak) -> None:
    await _set(soak, duplicate_replies=True, unrelated_frames=True)


async def _f8_heal(soak: Soak) -> None:
    await _set(soak, duplicate_replies=False, unrelated_frames=False)


def _fetched_a_few_times(soak: Soak) -> bool:
    counts = soak.requests()
    return all(counts.get(a.public_key, 0) >= 4 for a in soak.site.accounts)


F9_STALL_SECONDS = 8.0  # below Daphne's 20 s ping interval + 30 s ping timeout: the socket stays up
F9_READ_SECONDS = 2.0
F9_PACE_FACTOR = 5.0
# A burst bigger than channel capacity x rows per message: the change goes out as more consecutive diffs
# than a page's channel holds, and the snapshot of the big book goes out in several parts.
F9_BURST_ORDERS = 5600


async def _f9_apply(soak: Soak) -> None:
    slow = [socks[0] for socks in _sockets_by_account(soak).values()]
    soak.phase["slow"] = slow
    soak.phase["slow_gaps"] = {s: _gaps(s) for s in slow}
    soak.phase["slow_resyncs"] = {s: s.resyncs_sent for s in slow}
    soak.phase["gaps_before"] = sum(_gaps(s) for s in soak.sockets)
    soak.phase["stalls"] = 0
    soak.phase["diffs_at_start"] = _diffs_seen(soak)
    soak.phase["burst_done"] = False
    soak.sim.pace = soak.config.pace * F9_PACE_FACTOR
    soak.background_task(_stall_cycles(soak, slow))
    soak.background_task(_burst(soak))


async def _burst(soak: Soak) -> None:
    """Add F9_BURST_ORDERS orders to the first account; once a page shows them, remove them again."""
    account = soak.site.accounts[0]
    added = await asyncio.to_thread(soak.sim.add_orders, account.public_key, F9_BURST_ORDERS)
    watcher = _sockets_by_account(soak)[account.pk][-1]

    def shown() -> bool:
        view = watcher.tables.accounts.get(account.pk)
        return view is not None and all(order["order_id"] in view.orders for order in added[-10:])

    soak.phase["burst_shown"] = await soak.wait_for(shown, soak.config.deadline)

    def remove_all() -> None:
        for order in added:
            soak.sim.remove_order(account.public_key, order["order_id"])

    await asyncio.to_thread(remove_all)
    soak.phase["burst_done"] = True


async def _stall_cycles(soak: Soak, slow: list[PageSocket]) -> None:
    try:
        while True:
            for sock in slow:
                sock.pause_reading()
            await asyncio.sleep(F9_STALL_SECONDS)
            for sock in slow:
                sock.resume_reading()
            soak.phase["stalls"] += 1
            await asyncio.sleep(F9_READ_SECONDS)
    finally:
        for sock in slow:
            sock.resume_reading()


async def _f9_heal(soak: Soak) -> None:
    for sock in soak.phase["slow"]:
        sock.resume_reading()


def _f9_effect(soak: Soak) -> bool:
    # At least one whole stall, while every account published diffs.
    start = soak.phase["diffs_at_start"]
    now = _diffs_seen(soak)
    stalled = soak.phase["stalls"] >= 1 and all(now[pk] - start.get(pk, 0) >= 3 for pk in now)
    return stalled and soak.phase["burst_done"]


def _f9_checks(soak: Soak) -> list[Check]:
    slow = soak.phase["slow"]
    gaps = sum(_gaps(s) - soak.phase["slow_gaps"][s] for s in slow)
    resyncs = sum(s.resyncs_sent - soak.phase["slow_resyncs"][s] for s in slow)
    every = [s for socks in _sockets_by_account(soak).values() for s in socks]
    all_gaps = sum(_gaps(s) for s in every) - soak.phase["gaps_before"]
    soak.phase["f9"] = (
        f"{soak.phase['stalls']} stalls of the slow pages ({gaps} gaps, {resyncs} resyncs);"
        f" burst of {F9_BURST_ORDERS} orders shown after {_s(soak.phase.get('burst_shown'))};"
        f" gaps seen by all pages: {all_gaps}"
    )
    # Convergence of the slow pages is part of "tables equal the books"; this records what they went through.
    return [Check("slow pages recovered", True, soak.phase["f9"])]


def _sockets_by_account(soak: Soak) -> dict[int, list[PageSocket]]:
    grouped: dict[int, list[PageSocket]] = {}
    for sock in soak.sockets:
        grouped.setdefault(soak.socket_account[sock], []).append(sock)
    return grouped


def _gaps(sock: PageSocket) -> int:
    return sum(view.gaps for view in sock.tables.accounts.values())


def _diffs_seen(soak: Soak) -> dict[int, int]:
    """Diffs applied by the last (never slowed) page of each account."""
    return {pk: _view_diffs(socks[-1], pk) for pk, socks in _sockets_by_account(soak).items()}


def _view_diffs(sock: PageSocket, pk: int) -> int:
    view = sock.tables.accounts.get(pk)
    return 0 if view is None else view.diffs


F10_DOWN_SECONDS = 2.0


async def _f10_apply(soak: Soak) -> None:
    soak.phase["restarts"] = []
    soak.background_task(_restart_cycles(soak))


async def _restart_cycles(soak: Soak) -> None:
    cfg = soak.config
    cycles = max(1, int(cfg.seconds_per_fault // cfg.restart_every))
    for cycle in range(cycles):
        started = time.monotonic()
        before = {sock: (sock.connections, _snapshots(soak, sock), _seq(soak, sock)) for sock in soak.sockets}
        await asyncio.to_thread(soak.daphne.stop)
        await asyncio.sleep(F10_DOWN_SECONDS)  # the server is down this long
        await asyncio.to_thread(soak.daphne.start)

        def reconnected(before: dict[PageSocket, tuple[int, int, int]] = before) -> bool:
            return all(
                sock.connections > b[0] and _snapshots(soak, sock) > b[1] and _seq(soak, sock) > b[2]
                for sock, b in before.items()
            )

        # Seconds from Daphne answering again to every page holding a snapshot of the new process.
        soak.phase["restarts"].append(await soak.wait_for(reconnected, cfg.deadline))
        if cycle + 1 < cycles:
            await asyncio.sleep(max(0.0, cfg.restart_every - (time.monotonic() - started)))
    soak.phase["restarts_done"] = True


def _snapshots(soak: Soak, sock: PageSocket) -> int:
    view = sock.tables.accounts.get(soak.socket_account[sock])
    return 0 if view is None else view.snapshots


def _seq(soak: Soak, sock: PageSocket) -> int:
    view = sock.tables.accounts.get(soak.socket_account[sock])
    return -1 if view is None or view.seq is None else view.seq


async def _f10_heal(soak: Soak) -> None:
    # The restart cycles finish before healing (the effect waits for them); if they could not, make sure
    # the server is up again.
    process = soak.daphne.process
    if process is None or process.poll() is not None:
        await asyncio.to_thread(soak.daphne.start)


def _f10_effect(soak: Soak) -> bool:
    return bool(soak.phase.get("restarts_done"))


def _f10_checks(soak: Soak) -> list[Check]:
    times = soak.phase["restarts"]
    failed = sum(1 for t in times if t is None)
    ok = [t for t in times if t is not None]
    slowest = _s(max(ok) if ok else None)
    soak.phase["f10"] = f"{len(times)} restarts; all pages back with a full snapshot within {slowest} of each"
    return [
        Check(
            "pages reconnect and get a snapshot",
            bool(times) and failed == 0,
            soak.phase["f10"] + (f"; {failed} restarts not recovered" if failed else ""),
        )
    ]


F11_LIFETIME = 3.0


async def _f11_apply(soak: Soak) -> None:
    # Sessions only get a lifetime when they open: restart the simulator so every session reopens, let the
    # pages settle (the restart itself is a short outage), and start the clock then.
    await _set(soak, max_lifetime=F11_LIFETIME)
    await _restart_sim(soak)
    keys = [account.public_key for account in soak.site.accounts]

    def settled() -> bool:
        # New sessions (with a lifetime) are open on the restarted simulator, and the pages are live again.
        return all(soak.sim.authenticated_connections(key) >= 1 for key in keys) and soak.all_live()

    await soak.wait_for(settled, soak.config.deadline)
    soak.mark_start()


async def _f11_heal(soak: Soak) -> None:
    await _set(soak, max_lifetime=0.0)


def _f11_effect(soak: Soak) -> bool:
    # At least two sessions per account ended at the max lifetime and were replaced.
    return soak.sim.handshake_count >= 2 * soak.config.accounts


def _f11_checks(soak: Soak) -> list[Check]:
    # QFEX ending a healthy session is routine: the feed reconnects without alarming anyone.
    alarmed = sum(1 for _, view in soak.views() if view is not None and view.states_since(soak.t0) & {"stale", "error"})
    handshakes = soak.phase["handshakes_at_heal"]
    return [
        Check(
            "lifetime ends are transparent",
            alarmed == 0,
            f"{handshakes} upstream sessions opened; {alarmed} pages showed stale/error",
        )
    ]


F12_PAGE_CAP = 25  # several pages per fetch, so orders move between pages
F12_CHURN = 2


async def _f12_apply(soak: Soak) -> None:
    await _set(soak, page_cap=F12_PAGE_CAP, page_mutation=F12_CHURN)


async def _f12_heal(soak: Soak) -> None:
    await _set(soak, page_mutation=0, page_cap=1000)


def _f12_effect(soak: Soak) -> bool:
    counts = soak.requests()
    return all(counts.get(a.public_key, 0) >= 12 for a in soak.site.accounts)


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(
            "F1",
            "handshakes refused (HTTP 503), then reset",
            _f1_apply,
            _f1_heal,
            shows="stale",
            checks=_f1_checks,
        ),
        FaultSpec("F2", "connection dropped mid-reply", _f2_apply, _f2_heal, shows="stale"),
        FaultSpec("F3", "replies slower than the timeout", _f3_apply, _f3_heal, shows="stale"),
        FaultSpec("F4", "socket open but silent", _f4_apply, _f4_heal, shows="stale"),
        FaultSpec("F5", "malformed JSON, wrong schema, oversized frame", _f5_apply, _f5_heal, shows="stale"),
        FaultSpec(
            "F6",
            "auth rejected (healed by re-entering the key)",
            _f6_apply,
            _f6_heal,
            shows="error",
            checks=_f6_checks,
        ),
        FaultSpec(
            "F7",
            f"RateLimited (every page refused, retry_after {F7_WINDOW:g} s)",
            _f7_apply,
            _f7_heal,
            shows="stale",
            checks=_f7_checks,
            extra_allowance=F7_WINDOW,
            allowance_text=f"the last retry_after (≤ {F7_WINDOW:g} s)",
        ),
        FaultSpec(
            "F8",
            "duplicate replies and unrelated frames",
            _f8_apply,
            _f8_heal,
            effect=_fetched_a_few_times,
            effect_text="at least 4 fetches per account under the fault",
        ),
        FaultSpec(
            "F9",
            "slow browser (stops reading; channel capacity 10)",
            _f9_apply,
            _f9_heal,
            effect=_f9_effect,
            effect_text="a stall of the slow pages while every account published ≥ 3 diffs; the burst came and went",
            checks=_f9_checks,
        ),
        FaultSpec(
            "F10",
            "server restart (Daphne, same socket)",
            _f10_apply,
            _f10_heal,
            effect=_f10_effect,
            effect_text="the restart cycles ran",
            checks=_f10_checks,
        ),
        FaultSpec(
            "F11",
            f"upstream closes at a {F11_LIFETIME:g} s max lifetime",
            _f11_apply,
            _f11_heal,
            effect=_f11_effect,
            effect_text="sessions reconnected after reaching the max lifetime",
            checks=_f11_checks,
        ),
        FaultSpec(
            "F12",
            f"orders added/removed while paging ({F12_CHURN} per page, {F12_PAGE_CAP}-order pages)",
            _f12_apply,
            _f12_heal,
            effect=_f12_effect,
            effect_text="at least 12 pages per account under the fault",
        ),
    )
}


# --- output ----------------------------------------------------------------------------------------


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f} s"


def _result_line(result: FaultResult) -> str:
    verdict = "PASS" if result.ok else "FAIL"
    failures = "; ".join(f"{c.name}: {c.detail}" for c in result.failures())
    return f"{result.fault}: {verdict}" + (f" — {failures}" if failures else "")


def format_report(report: SoakReport) -> list[str]:
    cfg = report.config
    lines = [
        f"# Soak under faults — {len(report.results)} faults × {cfg.seconds_per_fault:g} s,"
        f" {cfg.accounts} accounts × {cfg.sockets_per_account} sockets, pace {cfg.pace:g}/s,"
        f" interval {cfg.interval:g} s, timeout {cfg.timeout:g} s, backoff {cfg.backoff_base:g}–{cfg.backoff_cap:g} s,"
        f" channel capacity {cfg.channel_capacity}; {report.seconds / 60:.1f} min in all"
        + ("" if cfg.strict_timing else " (timing criteria informational)"),
        "",
        "| fault | what | on for | stale/error shown after | converged after | get_user_orders/account"
        " | Daphne RSS end (peak) | RSS drift while on | threads | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        figures = r.figures
        lines.append(
            f"| {r.fault} | {r.title} | {r.applied_seconds:.0f} s | {figures['stale']} | {figures['converged']}"
            f" | {figures['requests']} | {figures['rss']} | {figures['drift']} | {figures['threads']}"
            f" | {'PASS' if r.ok else 'FAIL'} |"
        )
    lines.append("")
    for r in report.results:
        for check in r.checks:
            if check.fault_specific or not check.ok:
                mark = "ok" if check.ok else ("FAIL" if (cfg.strict_timing or not check.timing) else "late (info)")
                lines.append(f"- {r.fault} {check.name}: {mark} — {check.detail}")
    for check in report.overall:
        lines.append(f"- overall {check.name}: {'ok' if check.ok else 'FAIL'} — {check.detail}")
    lines.append("")
    lines.append("RESULT: " + ("PASS" if report.ok else "FAIL"))
    return lines


def run(config: SoakConfig) -> SoakReport:
    """Run the soak (blocking) and return its report."""
    return asyncio.run(Soak(config).run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds-per-fault", type=float, default=600.0)
    parser.add_argument("--faults", default=",".join(ALL_FAULTS), help="comma-separated, e.g. F1,F9")
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--sockets-per-account", type=int, default=5)
    parser.add_argument("--interval", type=float, default=2.0, help="QFEXDASH_RECONCILE_SECONDS (default 2)")
    parser.add_argument("--timeout", type=float, default=1.0, help="QFEX_TIMEOUT_SECONDS (default 1)")
    parser.add_argument("--pace", type=float, default=2.0, help="simulator events per second while a fault is on")
    parser.add_argument("--lenient-timing", action="store_true", help="report timing criteria without failing")
    parser.add_argument("--workdir", type=Path, default=None, help="where the database and Daphne's log go")
    args = parser.parse_args(argv)
    faults = tuple(name.strip().upper() for name in args.faults.split(",") if name.strip())
    unknown = [name for name in faults if name not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(unknown)}; choose from {', '.join(ALL_FAULTS)}")
    if args.accounts < 1 or args.sockets_per_account < 1 or args.seconds_per_fault <= 0:
        parser.error("--accounts, --sockets-per-account and --seconds-per-fault must be positive")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = SoakConfig(
        seconds_per_fault=args.seconds_per_fault,
        faults=faults,
        accounts=args.accounts,
        sockets_per_account=args.sockets_per_account,
        interval=args.interval,
        timeout=args.timeout,
        pace=args.pace,
        strict_timing=not args.lenient_timing,
        workdir=args.workdir,
        progress=lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True),
    )
    report = run(config)
    print()
    for line in format_report(report):
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
