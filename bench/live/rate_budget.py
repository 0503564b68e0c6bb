"""P8: the dashboard's share of QFEX's weight budget while pages flood it with ``refresh``: the default
share, the first minute of a cold 10 000-order account, a lowered share, and QFEX answering RateLimited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.live.viewers import Viewer, close_viewers, open_viewers, sleep_until, until
from bench.live.world import PAGE_WEIGHT, QFEX_WEIGHT_PER_SECOND, SUBSCRIBE_WEIGHT, Answer, Site, live_site, sim_account
from bench.stats import verdict


@dataclass
class BudgetRun:
    name: str
    start_ns: int
    seconds: float
    answers: list[Answer]  # get_user_orders answers to the key during the window
    subscribes: int
    stale_frames: int

    @property
    def replies(self) -> int:
        return sum(1 for a in self.answers if not a.refused)

    @property
    def refused(self) -> int:
        return sum(1 for a in self.answers if a.refused)

    @property
    def weight(self) -> float:
        """Weight QFEX charged: pages answered and subscriptions (a refused request costs nothing)."""
        return self.replies * PAGE_WEIGHT + self.subscribes * SUBSCRIBE_WEIGHT

    @property
    def share(self) -> float:
        return self.weight / (self.seconds * QFEX_WEIGHT_PER_SECOND)

    @property
    def fetches(self) -> list[tuple[int, int, bool]]:
        """(start ns, pages answered, refused) per fetch: answers less than 150 ms apart are one fetch."""
        groups: list[list[Any]] = []
        for answer in self.answers:
            if groups and answer.t_ns - groups[-1][1] < 150_000_000:
                groups[-1][1] = answer.t_ns
            else:
                groups.append([answer.t_ns, answer.t_ns, 0, False])
            groups[-1][2] += 0 if answer.refused else 1
            groups[-1][3] = groups[-1][3] or answer.refused
        return [(first, pages, refused) for first, _, pages, refused in groups]

    def sustained_share(self) -> float | None:
        """The share over the window's second half, after any start-up burst is spent: the weight of
        fetches i..j-1 over the time from fetch i's start to fetch j's (no window-edge error)."""
        half = self.start_ns + int(self.seconds / 2 * 1e9)
        late = [fetch for fetch in self.fetches if fetch[0] >= half]
        if len(late) < 2:
            return None
        weight = sum(pages for _, pages, _ in late[:-1]) * PAGE_WEIGHT
        return weight / ((late[-1][0] - late[0][0]) / 1e9 * QFEX_WEIGHT_PER_SECOND)


# Fetch start times jitter by a few ms, so a sustained rate computed from a handful of fetches is
# known to about ±2 % of its value; a budget is judged honoured within that.
RESOLUTION = 1.02


def p8(samples: int, window: float = 20.0, viewers: int = 5, first_minute: float = 60.0) -> list[str]:
    """The dashboard's share of QFEX's weight budget under a refresh flood: default, the first minute
    (``first_minute`` seconds) of a cold 10 000-order account, a lowered share, and QFEX answering
    RateLimited."""
    del samples  # fixed windows, not samples
    main = sim_account("p8", 1000)
    big = sim_account("p8_big", 10_000, twaps=5)
    with live_site([main, big]) as site:
        site.sim.pace = 2.0  # background activity: order pushes trigger fetches too
        default = asyncio.run(_budget_run(site, main.public_key, viewers, window, "default (10 %), 1000 orders"))
        # From before the first viewer joins, over a whole minute: the first minute of a cold feed.
        big_run = asyncio.run(
            _budget_run(site, big.public_key, viewers, first_minute, "default, 10 000 orders, cold", from_cold=True)
        )
        site.restart(QFEXDASH_RATE_BUDGET_SHARE="0.02")
        lowered = asyncio.run(_budget_run(site, main.public_key, viewers, window, "QFEXDASH_RATE_BUDGET_SHARE=0.02"))
        site.restart()
        # QFEX lets this user have 60 weight per 60 s (12 pages a minute), far below the dashboard's own budget.
        site.sim.faults.rate_limit_weight = 60.0
        limited = asyncio.run(_budget_run(site, main.public_key, viewers, window, "QFEX allows 60 weight/min"))
    lines = [
        f"P8 share of QFEX's budget (12 000 weight / 60 s per user; 5 per page): {viewers} viewers each sending"
        f" `refresh` as fast as the socket allows, exchange activity 2 events/s, {window:g} s per run",
        f"   {'run':<33} {'pages':>5} {'refused':>7} {'weight/min':>10} {'share':>6} {'sustained':>9}",
    ]
    for run in (default, big_run, lowered, limited):
        steady = run.sustained_share()
        lines.append(
            f"   {run.name:<33} {run.replies:>5} {run.refused:>7} {run.weight / run.seconds * 60:>10.0f}"
            f" {run.share:>6.1%} {'—' if steady is None else f'{steady:.1%}':>9}"
        )
    sustained = [value for value in (default.sustained_share(), big_run.sustained_share()) if value is not None]
    lowered_steady = lowered.sustained_share()
    lines.append(
        f"   default ≤ 10 %: sustained {verdict(bool(sustained) and max(sustained) <= 0.10 * RESOLUTION)};"
        f" over the first {first_minute:g} s of a cold 10 000-order feed ({big_run.share:.1%})"
        f" {verdict(big_run.share <= 0.10)};"
        f" lowered to 2 %: {verdict(lowered_steady is not None and lowered_steady <= 0.02 * RESOLUTION)}"
    )
    refused_at = next((a.t_ns for a in limited.answers if a.refused), None)
    if refused_at is None:
        lines.append("   on RateLimited: QFEX never refused a request in this run (no back-off to show)")
    else:
        after = [a for a in limited.answers if a.t_ns >= refused_at]
        span = (limited.start_ns + int(limited.seconds * 1e9) - refused_at) / 1e9
        complete = sum(1 for first, _, refused in limited.fetches if first >= refused_at and not refused)
        lines.append(
            f"   on RateLimited: after QFEX's first refusal, {len(after)} requests in {span:.1f} s"
            f" ({len(after) / span:.2f}/s, {sum(a.refused for a in after)} refused, {complete} fetches completed)"
            f" vs {len(default.answers) / default.seconds:.2f}/s without the limit; viewers saw"
            f" {limited.stale_frames} frames in state 'stale'"
        )
    return lines


async def _budget_run(
    site: Site, key: str, count: int, window: float, name: str, *, from_cold: bool = False
) -> BudgetRun:
    """``window`` seconds of refresh flood; counted from when the viewers are live, or with
    ``from_cold`` from before they join an account nobody watched (its first fetch included)."""
    subscribes = site.sim.request_count("subscribe")
    start = time.monotonic_ns()
    viewers = await open_viewers(site, key, count)
    try:
        await until(viewers, lambda v: v.state == "live" and v.snapshots >= 1, "live viewers")
        if not from_cold:
            subscribes = site.sim.request_count("subscribe")
            start = time.monotonic_ns()
        end = start + int(window * 1e9)
        marks = [len(v.frames) for v in viewers]
        await _flood(viewers, end)
        answers = site.sim.answers(key, start, end)
        subscribes = site.sim.request_count("subscribe") - subscribes
        stale = sum(1 for v, m in zip(viewers, marks, strict=True) for f in v.frames[m:] if f.state == "stale")
    finally:
        await close_viewers(viewers)
    return BudgetRun(name, start, window, answers, subscribes, stale)


async def _flood(viewers: Sequence[Viewer], end_ns: int) -> None:
    """Every viewer sends ``refresh`` every 0.55 s (the socket allows 20 frames per 10 s) until ``end_ns``."""
    interval = 0.55

    async def one(viewer: Viewer, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic_ns() < end_ns and not viewer.closed:
            await viewer.send({"type": "refresh"})
            await asyncio.sleep(interval)

    await asyncio.gather(*(one(v, n * interval / len(viewers)) for n, v in enumerate(viewers)))
    await sleep_until(end_ns)
