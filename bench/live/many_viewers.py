"""P3: N viewers of one account on one Daphne — the upstream pages must not grow with N — and the time
from the reply that carried a change until every one of the N viewers has it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.harness.proc import require_open_files
from bench.live.viewers import (
    SPACING,
    Changer,
    Viewer,
    close_viewers,
    one_update,
    open_viewers,
    showing,
    sleep_until,
    until,
)
from bench.live.world import Site, live_site, sim_account
from bench.stats import goal_p95_ms, summary_ms
from orders.simulator import SimAccount


@dataclass
class ViewerRun:
    viewers: int
    join_requests: int  # get_user_orders pages while the viewers joined a cold feed
    window_requests: int  # pages during the fixed window of changes
    window_seconds: float
    changes: int
    all_updated: list[float]  # reply → last viewer, seconds
    gaps: int


def p3(samples: int, viewer_counts: Sequence[int] = (1, 10, 50, 200)) -> list[str]:
    """Upstream requests per N viewers (must not grow with N), and reply → all N viewers updated."""
    accounts = {n: sim_account(f"p3_{n}", 1000) for n in viewer_counts}
    changes = max(3, samples // 2)
    require_open_files(2 * max(viewer_counts) + 256)
    with live_site(list(accounts.values())) as site:
        runs = asyncio.run(_p3(site, accounts, changes))
    return p3_table(
        "P3 one account (1000 orders), N viewers on one Daphne: upstream get_user_orders pages and "
        "reply → every viewer updated",
        runs,
        changes,
    )


def p3_table(title: str, runs: Sequence[ViewerRun], changes: int) -> list[str]:
    """The P3 report: pages per N viewers (joins and window), reply → last viewer, and the verdicts."""
    lines = [title, f"   {'N':>5}  {'pages: joins':>12}  {'pages: window':>13}  all N updated (reply → last viewer)"]
    for run in runs:
        lines.append(
            f"   {run.viewers:>5}  {run.join_requests:>12}  {run.window_requests:>13}  {summary_ms(run.all_updated)}"
            + (f"  ({run.gaps} seq gaps!)" if run.gaps else "")
        )
    windows = {run.window_requests for run in runs}
    joins = {run.join_requests for run in runs}
    same = len(windows) == 1 and len(joins) == 1
    window = runs[0].window_seconds
    lines.append(
        f"   window: {window:.1f} s with {changes} one-order changes, {SPACING:g} s apart; each N joins a cold feed."
        f" Pages independent of N: {'yes' if same else 'NO'}"
        f" (joins {sorted(joins)}, window {sorted(windows)})"
    )
    fifty = next((run for run in runs if run.viewers == 50), None)
    if fifty is not None:
        lines.append(f"   50 viewers all updated: {goal_p95_ms(fifty.all_updated, 0.075)}")
    return lines


async def changes_window(
    site: Site, key: str, viewers: Sequence[Viewer], change: Changer, changes: int, joined: int
) -> ViewerRun:
    """``changes`` one-order changes, SPACING apart: reply → last viewer for each, and the pages QFEX
    answered over the whole window (which must not depend on how many viewers there are)."""
    latencies = []
    start = time.monotonic_ns()
    for n in range(changes):
        await sleep_until(start + int((n + 1) * SPACING * 1e9))
        latencies.append((await one_update(site, key, viewers, change)).reply_to_last)
    end = start + int((changes + 1) * SPACING * 1e9)
    await sleep_until(end)
    window = len(site.sim.answers(key, start, end))
    gaps = sum(v.gaps for v in viewers)
    return ViewerRun(len(viewers), joined, window, (end - start) / 1e9, changes, latencies, gaps)


async def _p3(site: Site, accounts: dict[int, SimAccount], changes: int) -> list[ViewerRun]:
    runs = []
    for count, account in accounts.items():
        key = account.public_key
        before = len(site.sim.answers(key))
        viewers = await open_viewers(site, key, count)
        try:
            await until(viewers, showing(site, key), f"{count} viewers showing the book")
            joined = len(site.sim.answers(key)) - before
            runs.append(await changes_window(site, key, viewers, Changer(site.sim, key), changes, joined))
        finally:
            await close_viewers(viewers)
    return runs
