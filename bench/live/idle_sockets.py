"""P4: Daphne's memory per idle authenticated socket (about 1000 of them), and one small update fanned
out to all of them."""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.harness.proc import require_open_files
from bench.live.viewers import SPACING, Changer, Update, Viewer, close_viewers, one_update, open_viewers, showing, until
from bench.live.world import Site, live_site, sim_account
from bench.stats import summary_ms, verdict


def p4(samples: int, sockets: int = 1000, settle: float = 2.5) -> list[str]:
    """Daphne's RSS per idle authenticated socket, and one small update fanned out to all of them.

    ``settle``: seconds the server is left idle before each RSS reading (more than one access re-check
    interval, so every socket's periodic work has run at least once)."""
    account = sim_account("p4", 20, twaps=1)
    key = account.public_key
    require_open_files(2 * sockets + 256)
    with live_site([account]) as site:
        opened, seconds, before, after, updates, cpu = asyncio.run(
            _p4(site, key, sockets, max(3, samples // 8), settle)
        )
    reply_to_all = [u.reply_to_last for u in updates]
    per_socket = (after - before) / sockets
    lines = [
        f"P4 {sockets} idle authenticated sockets on one Daphne process (one account with 20 orders; all sockets"
        " share one session)",
        f"   opened {opened}/{sockets}, each with its snapshot, in {seconds:.1f} s; Daphne RSS {before / 1024:.1f} MiB"
        f" with 1 socket → {after / 1024:.1f} MiB with {sockets + 1}: {per_socket:.1f} KiB per socket"
        f" — goal ≤ 64 KiB → {verdict(opened >= min(sockets, 1000) and per_socket <= 64)}",
        f"   one small update (one order) → all {sockets} sockets: reply → last socket {summary_ms(reply_to_all)}"
        f" — goal ≤ 500 ms → {verdict(max(reply_to_all) <= 0.5)}",
        f"   for context: reply → first socket {summary_ms([u.reply_to_first for u in updates])};"
        f" change at the exchange → last socket {summary_ms([u.change_to_last for u in updates])}",
        f"   the {sockets} receiving sockets live in this benchmark process, on the same machine: it used"
        f" {statistics.median(cpu) * 1000:.0f} ms of CPU per update (median)",
    ]
    if sockets < 1000:
        lines.append(f"   (only {sockets} sockets: the goal is about 1000)")
    return lines


async def _p4(
    site: Site, key: str, sockets: int, count: int, settle: float
) -> tuple[int, float, int, int, list[Update], list[float]]:
    first = await open_viewers(site, key, 1)
    crowd: list[Viewer] = []
    try:
        await until(first, showing(site, key), "the first viewer showing the book")
        await asyncio.sleep(settle)  # let the server settle: one access re-check round, pools warm
        before = site.rss_kib()
        started = time.monotonic()
        crowd = await open_viewers(site, key, sockets)
        await until(crowd, lambda v: v.snapshots >= 1 and v.state == "live", "every socket's snapshot")
        seconds = time.monotonic() - started
        await asyncio.sleep(settle)  # idle: every socket has had an access re-check since it joined
        after = site.rss_kib()
        everyone = [*first, *crowd]
        change = Changer(site.sim, key)
        updates = []
        cpu = []  # this process's CPU time per update: the receiving side's share of the fan-out
        for _ in range(count):
            await asyncio.sleep(SPACING)
            started = time.process_time()
            updates.append(await one_update(site, key, everyone, change))
            cpu.append(time.process_time() - started)
        opened = sum(1 for v in crowd if not v.closed)
        return opened, seconds, before, after, updates, cpu
    finally:
        await close_viewers([*first, *crowd])
