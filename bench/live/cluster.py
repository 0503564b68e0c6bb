"""P3 and P4 with two Daphne processes on PostgreSQL and the Redis channel layer (``P3-redis``, ``P4-redis``).

The site is the scale-out setup of docs/deployment.md: a throwaway PostgreSQL database on this machine's
server, Redis under a key prefix of its own, two Daphne processes with ``REDIS_URL`` set and otherwise the
project's default settings (reconcile 5 s, coalescing 0.5 s, lease 6 s), built by
:class:`bench.harness.cluster.ClusterSite`. The simulator runs in this process and notes when each
``get_user_orders`` answer left it (:class:`bench.live.world.TimedSimulator`); viewers are the same
asyncio browser sockets as the other live figures (:mod:`bench.live.viewers`), spread evenly over the two
processes. Only one process owns the account's upstream session; viewers on the other process get the
owner's diffs straight from the channel layer.

Needs PostgreSQL and Redis (``QFEXDASH_TEST_POSTGRES_URL``, ``QFEXDASH_TEST_REDIS_URL``; defaults
127.0.0.1); without them each figure prints why it was skipped.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness.cluster import ClusterSite, services_problem
from bench.harness.proc import require_open_files
from bench.live.many_viewers import ViewerRun, changes_window, p3_table
from bench.live.viewers import SPACING, Changer, Update, Viewer, close_viewers, one_update, open_viewers, showing, until
from bench.live.world import TimedSimulator, sim_account
from bench.stats import summary_ms, verdict
from orders.simulator import SimAccount

PROCESSES = 2
# The project's defaults (ClusterSite's are tuned for quick tests), quiet logs.
DEFAULT_SETTINGS = {
    "QFEXDASH_RECONCILE_SECONDS": "5",
    "QFEXDASH_LEASE_SECONDS": "6",
    "QFEX_TIMEOUT_SECONDS": "10",
    "QFEXDASH_BACKOFF_BASE_SECONDS": "1",
    "QFEXDASH_BACKOFF_CAP_SECONDS": "30",
    "QFEXDASH_WS_RATE": "20",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class ProcessSite:
    """One Daphne process of the cluster, as :mod:`bench.live.viewers` expects a site."""

    sim: TimedSimulator
    session: str
    accounts: dict[str, int]
    port: int

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, key: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/accounts/{self.accounts[key]}/"

    def book_size(self, key: str) -> tuple[int, int]:
        return len(self.sim.open_orders(key)), len(self.sim.active_twaps(key))


@contextmanager
def cluster_site(accounts: Sequence[SimAccount]) -> Iterator[tuple[ClusterSite, list[ProcessSite]]]:
    with (
        TimedSimulator(list(accounts), seed=21) as sim,
        tempfile.TemporaryDirectory(prefix="qfexdash-bench-cluster-") as folder,
    ):
        keys = [(a.public_key, a.secret) for a in accounts]
        site = ClusterSite(Path(folder), sim.url, keys, processes=PROCESSES, settings=DEFAULT_SETTINGS)
        with site:
            ids = dict(zip((a.public_key for a in accounts), site.accounts, strict=True))
            views = [ProcessSite(sim, site.session, ids, node.port) for node in site.nodes]
            try:
                yield site, views
            except Exception as exc:
                exc.add_note(f"Daphne logs:\n{site.logs()[-4000:]}")
                raise


async def open_spread(views: Sequence[ProcessSite], key: str, count: int) -> list[Viewer]:
    """``count`` viewers of ``key``, alternating between the processes (the first on process 0)."""
    shares = [count // len(views) + (1 if n < count % len(views) else 0) for n in range(len(views))]
    opened: list[Viewer] = []
    try:
        for view, share in zip(views, shares, strict=True):
            if share:
                opened += await open_viewers(view, key, share)  # type: ignore[arg-type]
    except BaseException:
        await close_viewers(opened)
        raise
    return opened


async def settle_viewers(views: Sequence[ProcessSite], key: str, viewers: Sequence[Viewer], change: Changer) -> None:
    """Two changes every viewer must show (by diff or snapshot) before anything is timed.

    A viewer that joined a follower process before that process had the owner's rows got an empty
    snapshot and then a full one; the timed changes must each reach every viewer as one diff.
    """
    for _ in range(2):
        await asyncio.sleep(SPACING)
        change()
        await until(viewers, showing(views[0], key), "every viewer showing the change")  # type: ignore[arg-type]


def _skipped(figure: str) -> list[str] | None:
    problem = services_problem()
    if problem is None:
        return None
    return [f"{figure} skipped: needs PostgreSQL and Redis; not reachable: {problem}"]


# --- P3 on Redis ----------------------------------------------------------------------------------


def p3(samples: int, viewer_counts: Sequence[int] = (1, 10, 50, 200)) -> list[str]:
    """Upstream pages per N viewers spread over two processes, and reply → all N viewers updated."""
    skipped = _skipped("P3-redis")
    if skipped:
        return skipped
    accounts = {n: sim_account(f"p3r_{n}", 1000) for n in viewer_counts}
    changes = max(3, samples // 2)
    require_open_files(2 * max(viewer_counts) + 512)
    with cluster_site(list(accounts.values())) as (_site, views):
        runs = asyncio.run(_p3(views, accounts, changes))
    return p3_table(
        f"P3-redis one account (1000 orders), N viewers spread over {PROCESSES} Daphne processes (PostgreSQL,"
        " Redis channel layer): upstream get_user_orders pages and reply → every viewer updated",
        runs,
        changes,
    )


async def _p3(views: Sequence[ProcessSite], accounts: dict[int, SimAccount], changes: int) -> list[ViewerRun]:
    runs = []
    site = views[0]
    for count, account in accounts.items():
        key = account.public_key
        before = len(site.sim.answers(key))
        viewers = await open_spread(views, key, count)
        try:
            await until(viewers, showing(site, key), f"{count} viewers showing the book")  # type: ignore[arg-type]
            joined = len(site.sim.answers(key)) - before
            change = Changer(site.sim, key)
            await settle_viewers(views, key, viewers, change)
            runs.append(await changes_window(site, key, viewers, change, changes, joined))  # type: ignore[arg-type]
        finally:
            await close_viewers(viewers)
    return runs


# --- P4 on Redis ----------------------------------------------------------------------------------


def p4(samples: int, sockets: int = 1000, settle: float = 2.5) -> list[str]:
    """RSS per idle socket on each process, and one small update fanned out to all sockets of both."""
    skipped = _skipped("P4-redis")
    if skipped:
        return skipped
    account = sim_account("p4r", 20, twaps=1)
    key = account.public_key
    require_open_files(2 * sockets + 512)
    with cluster_site([account]) as (site, views):
        opened, seconds, before, after, updates, cpu = asyncio.run(
            _p4(site, views, key, sockets, max(3, samples // 8), settle)
        )
    per_socket = [(after[n] - before[n]) / (sockets / PROCESSES) for n in range(PROCESSES)]
    reply_to_all = [u.reply_to_last for u in updates]
    rss = ", ".join(
        f"process {n}: {before[n] / 1024:.1f} → {after[n] / 1024:.1f} MiB ({per_socket[n]:.1f} KiB per socket)"
        for n in range(PROCESSES)
    )
    return [
        f"P4-redis {sockets} idle authenticated sockets spread over {PROCESSES} Daphne processes (Redis channel"
        " layer; one account with 20 orders, fed by one of them)",
        f"   opened {opened}/{sockets}, each with its snapshot, in {seconds:.1f} s; RSS {rss}"
        f" — goal ≤ 64 KiB → {verdict(opened >= sockets and max(per_socket) <= 64)}",
        f"   one small update (one order) → all {sockets} sockets on both processes: reply → last socket"
        f" {summary_ms(reply_to_all)} — goal ≤ 500 ms → {verdict(max(reply_to_all) <= 0.5)}",
        f"   for context: reply → first socket {summary_ms([u.reply_to_first for u in updates])};"
        f" change at the exchange → last socket {summary_ms([u.change_to_last for u in updates])};"
        f" this benchmark process (all {sockets} receivers) used {statistics.median(cpu) * 1000:.0f} ms CPU"
        " per update (median)",
    ]


async def _p4(
    site: ClusterSite, views: Sequence[ProcessSite], key: str, sockets: int, count: int, settle: float
) -> tuple[int, float, list[int], list[int], list[Update], list[float]]:
    first = await open_viewers(views[0], key, 1)  # type: ignore[arg-type]
    others = await open_viewers(views[1], key, 1)  # type: ignore[arg-type]
    crowd: list[Viewer] = []
    try:
        await until([*first, *others], showing(views[0], key), "a viewer on each process showing the book")  # type: ignore[arg-type]
        await asyncio.sleep(settle)  # idle: access re-checks ran, pools are warm
        before = [site.nodes[n].rss_kib() for n in range(PROCESSES)]
        started = time.monotonic()
        crowd = await open_spread(views, key, sockets)
        await until(crowd, lambda v: v.snapshots >= 1 and v.state == "live", "every socket's snapshot")
        seconds = time.monotonic() - started
        await asyncio.sleep(settle)
        after = [site.nodes[n].rss_kib() for n in range(PROCESSES)]
        everyone = [*first, *others, *crowd]
        change = Changer(views[0].sim, key)
        await settle_viewers(views, key, everyone, change)
        updates = []
        cpu = []
        for _ in range(count):
            await asyncio.sleep(SPACING)
            started_cpu = time.process_time()
            updates.append(await one_update(views[0], key, everyone, change))  # type: ignore[arg-type]
            cpu.append(time.process_time() - started_cpu)
        opened = sum(1 for v in crowd if not v.closed)
        return opened, seconds, before, after, updates, cpu
    finally:
        await close_viewers([*first, *others, *crowd])
