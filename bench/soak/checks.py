"""The soak's pass bar, checked after each fault and once at the end of the run (the module
:mod:`bench.soak` says what each criterion means). Each function reads the :class:`~bench.soak.stack.Stack`
and the fault's ``phase`` notes and returns :class:`~bench.soak.results.Check` items; the figures of the
report's table are noted in ``stack.phase`` on the way."""

from __future__ import annotations

import statistics
import time
from collections import Counter

from bench.harness.pages import ROUTINE_CLOSE_CODES, PageSocket, shows
from bench.harness.proc import ProcSample
from bench.soak.config import DRIFT_MIN_SECONDS, EXCHANGE_WEIGHT_PER_SECOND, MIB, PAGE_WEIGHT
from bench.soak.results import Check
from bench.soak.results import seconds_text as _s
from bench.soak.stack import Stack

# --- stale shown, and convergence after healing ------------------------------------------------------


def all_showed(stack: Stack, state: str) -> bool:
    """Every page has shown ``state`` since the fault started."""
    return all(
        view is not None and view.first_state_since(stack.t0, frozenset({state})) is not None
        for _, view in stack.views()
    )


def stale_checks(stack: Stack, state: str) -> list[Check]:
    """Every page showed ``state`` ("stale", or "error" for a rejected key), within 2 reconcile intervals."""
    cfg = stack.config
    firsts = [
        None if view is None else view.first_state_since(stack.t0, frozenset({state})) for _, view in stack.views()
    ]
    missing = sum(1 for t in firsts if t is None)
    delays = [t - stack.t0 for t in firsts if t is not None]
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
    stack.phase["stale_after"] = worst
    return checks


async def convergence_checks(stack: Stack, extra_allowance: float, allowance_text: str) -> tuple[bool, list[Check]]:
    """Wait until every page's tables equal the (frozen) books; whether they did, and the two checks:
    equal (and still equal at the end), and within one interval plus the grace (plus ``extra_allowance``)."""
    cfg = stack.config
    first_match: dict[PageSocket, float] = {}

    def all_matched() -> bool:
        now = time.monotonic()
        truth = stack.truth()
        for sock, view in stack.views():
            if sock not in first_match and shows(view, *truth[stack.socket_account[sock]]):
                first_match[sock] = now
        return len(first_match) == len(stack.sockets)

    took = await stack.wait_for(all_matched, cfg.deadline + extra_allowance)
    # Confirm at the end: every page still shows the (frozen) truth.
    still = took is not None and stack.all_converged()
    limit = cfg.interval + cfg.grace + extra_allowance
    delays = sorted(t - stack.heal_at for t in first_match.values())
    worst = delays[-1] if delays else None
    note = f" incl. {allowance_text}" if allowance_text else ""
    checks = [
        Check(
            "tables equal the books",
            still,
            f"{len(first_match)}/{len(stack.sockets)} pages equal the simulator's books"
            + ("" if still or took is None else " (then diverged)"),
        ),
        Check(
            "converged within the limit",
            took is not None and worst is not None and worst <= limit,
            f"slowest page {_s(worst)}, median {_s(statistics.median(delays) if delays else None)}"
            f" (limit {limit:g} s = interval {cfg.interval:g} + grace {cfg.grace:g}{note})",
            timing=True,
        ),
    ]
    stack.phase["converged_after"] = worst
    stack.phase["converge_limit"] = limit
    return took is not None, checks


# --- upstream, logs and sockets ------------------------------------------------------------------------


def budget_check(stack: Stack, seconds: float, processes: int) -> Check:
    """get_user_orders per account within the feed's rate budget (one burst per Daphne process that ran)."""
    counts = stack.requests()
    worst = max((counts.get(a.public_key, 0) for a in stack.site.accounts), default=0)
    bound = stack.config.budget_pages(seconds, processes) + 2
    share = worst * PAGE_WEIGHT / (EXCHANGE_WEIGHT_PER_SECOND * seconds) if seconds > 0 else 0.0
    stack.phase["requests"] = worst
    stack.phase["requests_bound"] = bound
    return Check(
        "upstream within budget",
        worst <= bound,
        f"max {worst} get_user_orders per account in {seconds:.0f} s ({share:.1%} of QFEX's budget; bound {bound:.0f})",
    )


def unhandled_check(stack: Stack, log_offset: int, capture_start: int) -> Check:
    """No Traceback/ERROR/CRITICAL line in Daphne's log since ``log_offset``, nor in this process."""
    problems = stack.server.problems_since(log_offset) + stack.capture.records[capture_start:]
    return Check("no unhandled exception", not problems, "; ".join(problems[:3]) or "logs clean (Daphne, soak)")


def sockets_check(
    stack: Stack, fault: str, closes_before: dict[PageSocket, Counter[int]], errors_before: dict[PageSocket, int]
) -> Check:
    """No page lost its socket (except to the F10 restart) or got an error frame since the fault began."""
    unexpected = Counter[int]()
    for sock in stack.sockets:
        for code, count in (sock.close_codes - closes_before[sock]).items():
            if fault != "F10" or code not in ROUTINE_CLOSE_CODES:
                unexpected[code] += count
    frames = [e for sock in stack.sockets for e in sock.server_errors[errors_before[sock] :]]
    return Check(
        "browser sockets undisturbed",
        not unexpected and not frames and all(s.fatal_close is None for s in stack.sockets),
        f"unexpected closes {dict(unexpected)}, error frames {[f.get('code') for f in frames][:5]}"
        if unexpected or frames
        else "no unexpected close or error frame",
    )


# --- memory and threads ----------------------------------------------------------------------------------


def memory_checks(stack: Stack, fault: str) -> list[Check]:
    """Daphne's RSS and threads within a margin of its warmed-up sample; no drift while a long fault is on."""
    cfg = stack.config
    pid, end = stack.server.pid, stack.server.sample()
    if pid is None or end is None:
        return [Check("memory and threads bounded", False, "Daphne is not running")]
    base = stack.baseline.get(pid)
    during = [s for t, f, p, s in stack.samples if f == fault and p == pid]
    peak_rss = max([s.rss_kib for s in during] + [end.rss_kib])
    peak_threads = max([s.threads for s in during] + [end.threads])
    stack.fault_end_samples.append((fault, pid, end))
    stack.phase["rss_end"] = end.rss_kib
    stack.phase["rss_peak"] = peak_rss
    stack.phase["threads"] = peak_threads
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
    on = [(t, s) for t, f, p, s in stack.samples if f == fault and p == pid and stack.t0 <= t <= stack.heal_at]
    span = stack.heal_at - stack.t0
    if span >= DRIFT_MIN_SECONDS and len(on) < span / 4:
        # The sampler takes one a second: far fewer means it stopped, and the checks above saw too little.
        checks.append(Check("no memory drift while on", False, f"only {len(on)} memory samples in {span:.0f} s"))
    elif len(on) >= 2:
        start = next((s for t, s in on if t >= stack.t0 + span / 4), on[0][1])
        drift = (on[-1][1].rss_kib - start.rss_kib) / MIB
        stack.phase["drift"] = drift
        if span >= DRIFT_MIN_SECONDS:
            checks.append(
                Check(
                    "no memory drift while on",
                    drift <= cfg.drift_mib,
                    f"RSS {drift:+.1f} MiB over the last 3/4 of the fault (margin {cfg.drift_mib:g})",
                )
            )
    return checks


# --- the whole run -------------------------------------------------------------------------------------


def overall_checks(stack: Stack) -> list[Check]:
    """After the last fault: no memory or thread trend across faults, no secret in Daphne's log, every
    browser task alive."""
    cfg = stack.config
    checks = []
    # No growth trend: per Daphne process, add up the growth from the end of one fault to the end of the
    # next. F9's burst (thousands of orders for a moment) raises the allocator's high-water mark once by
    # design; that step is reported and bounded by its own peak check, not counted as a trend.
    growth_rss, growth_threads, f9_step = 0.0, 0, 0.0
    previous: dict[int, ProcSample] = {}
    for fault, pid, sample in stack.fault_end_samples:
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
    log_text = stack.server.log_text()
    leaked = sum(1 for secret in stack.site.secrets.values() if secret in log_text)
    checks.append(
        Check(
            "no secret in Daphne's log",
            leaked == 0,
            f"{leaked} of {len(stack.site.secrets)} secrets found" if leaked else "none of the secrets found",
        )
    )
    crashed = [t for t in stack.tasks if t.done() and not t.cancelled() and t.exception() is not None]
    checks.append(
        Check("browser tasks alive", not crashed, f"{len(crashed)} socket tasks crashed" if crashed else "alive")
    )
    return checks
