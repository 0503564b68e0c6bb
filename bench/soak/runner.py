"""One soak run: the stack up, a warm-up, each fault in turn against the pass bar, the stack down.

For each fault :class:`Soak` switches it on (books moving) for ``seconds_per_fault`` — and, for faults
that make upstream fail, until every page has shown the failure — then heals it, freezes the books and
runs the checks of :mod:`bench.soak.checks`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from bench.soak.checks import (
    all_showed,
    budget_check,
    convergence_checks,
    memory_checks,
    overall_checks,
    sockets_check,
    stale_checks,
    unhandled_check,
)
from bench.soak.config import SoakConfig
from bench.soak.report import result_line, table_figures
from bench.soak.results import Check, FaultResult, SoakReport, seconds_text
from bench.soak.stack import FaultSpec, Stack
from bench.soak.stack_faults import STACK_FAULTS
from bench.soak.upstream_faults import UPSTREAM_FAULTS

FAULTS: dict[str, FaultSpec] = {spec.name: spec for spec in (*UPSTREAM_FAULTS, *STACK_FAULTS)}


class Soak:
    """Runs the faults of ``config`` in order on one :class:`~bench.soak.stack.Stack`."""

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.stack = Stack(config)

    async def run(self) -> SoakReport:
        cfg, stack = self.config, self.stack
        started_wall, started = time.time(), time.monotonic()
        results: list[FaultResult] = []
        overall: list[Check] = []
        try:
            await stack.start()
            warm = await stack.wait_for(stack.all_converged, cfg.deadline)
            overall.append(Check("warm-up", warm is not None, f"all pages show the books after {seconds_text(warm)}"))
            if warm is not None:
                stack.note_baseline()
                for name in cfg.faults:
                    result = await self.run_fault(FAULTS[name])
                    results.append(result)
                    stack.say(result_line(result))
            overall.extend(overall_checks(stack))
            stopped = await stack.stop_sampler()
            if stopped is not None:  # the memory checks above then saw too few samples
                overall.append(Check("memory sampler ran to the end", False, f"it stopped: {stopped!r}"))
        finally:
            await stack.close()
        return SoakReport(cfg, results, overall, started_wall, time.monotonic() - started)

    async def run_fault(self, spec: FaultSpec) -> FaultResult:
        cfg, stack = self.config, self.stack
        result = FaultResult(spec.name, spec.title, strict_timing=cfg.strict_timing)
        stack.current = spec.name
        stack.phase = {}
        stack.sim.pace = cfg.pace
        stack.sim.reset_counters()
        log_offset = stack.server.log_size()
        capture_start = len(stack.capture.records)
        closes_before = {sock: Counter(sock.close_codes) for sock in stack.sockets}
        errors_before = {sock: len(sock.server_errors) for sock in stack.sockets}
        starts_before = stack.server.starts
        stack.t0 = time.monotonic()
        stack.say(f"{spec.name}: {spec.title} — on for {cfg.seconds_per_fault:g} s")
        await spec.apply(stack)
        await asyncio.sleep(cfg.seconds_per_fault)  # the fault's configured duration (pace on)
        if spec.effect is not None:
            effect = spec.effect
            took = await stack.wait_for(lambda: effect(stack), cfg.deadline)
            result.checks.append(Check("fault acted", took is not None, spec.effect_text))
        if spec.shows is not None:
            state = spec.shows
            await stack.wait_for(lambda: all_showed(stack, state), cfg.deadline)
        result.applied_seconds = stack.elapsed()
        stack.phase["requests_at_heal"] = stack.requests()
        stack.phase["auth_at_heal"] = stack.requests("auth")
        stack.phase["handshakes_at_heal"] = stack.sim.handshake_count
        stack.heal_at = time.monotonic()
        await stack.stop_background()
        await spec.heal(stack)
        stack.sim.pace = 0.0  # freeze the books: the truth to converge to
        converged, convergence = await convergence_checks(stack, spec.extra_allowance, spec.allowance_text)
        result.checks.extend(convergence)
        phase_seconds = stack.elapsed()

        if spec.shows is not None:
            result.checks.extend(stale_checks(stack, spec.shows))
        # One burst of the budget per Daphne process that ran in the phase.
        processes = 1 + stack.server.starts - starts_before
        result.checks.append(budget_check(stack, phase_seconds, processes))
        if spec.checks is not None:
            for check in spec.checks(stack):
                check.fault_specific = True
                result.checks.append(check)
        result.checks.append(unhandled_check(stack, log_offset, capture_start))
        result.checks.append(sockets_check(stack, spec.name, closes_before, errors_before))
        result.checks.extend(memory_checks(stack, spec.name))
        if converged:
            stack.note_baseline()  # a restarted Daphne (F10) gets its warmed-up baseline here
        stale_seen = sum(
            1 for _, view in stack.views() if view is not None and view.states_since(stack.t0) & {"stale", "error"}
        )
        result.figures = table_figures(stack.phase, spec.shows is not None, stale_seen)
        return result
