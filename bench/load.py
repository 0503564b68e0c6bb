"""Load: 1 000 concurrent authenticated sockets on one Daphne process while updates keep flowing (P4).

``python -m bench.load [--sockets 1000] [--users 20] [--paces 0.25,0.5,1,2] [--updates 15]``

The stack (all on 127.0.0.1): the simulator in this process, one account whose book keeps changing, a
real Daphne process with its own SQLite database and the project's default feed settings (reconcile 5 s,
coalescing 0.5 s, in-memory channel layer), and ``--sockets`` browser sockets (asyncio ``websockets``
clients, session cookie + Origin, spread over ``--users`` logged-in viewers) that each keep the page's
tables. Every socket watches the same account, so every update goes to all of them.

Measured against design.md's P4 (≥ 1000 sockets, ≤ 64 KiB RSS each, one small update reaches all in
≤ 0.5 s):

- every socket connected and received its snapshot; after each phase (book frozen) every socket's table
  equals the simulator's book, by id and every field;
- Daphne's RSS per socket: RSS after the flowing phases minus RSS with one warm-up socket, divided by
  the number of sockets (``/proc/<pid>/status``);
- updates flowing at each ``--paces`` rate (book events per second; each event is a small change, one or
  two rows): for each diff, from its ``as_of`` (when the feed started that fetch, Daphne's wall clock) to
  the moment the first and the *last* socket received it (this process's wall clock, same machine), over
  ``--updates`` diffs per rate; Daphne's CPU share (``/proc/<pid>/stat``) at each rate;
- no errors: no failed handshake, no socket closed, no error frame, no ERROR/Traceback in Daphne's log.

The P4 verdict on reach time uses the slowest rate (updates seconds apart: "one small update"); the
faster rates show how much update traffic one process carries for 1000 viewers of one account. The
clients share the machine's cores with Daphne; their CPU share is printed too. Open-file limits are
raised to fit (Daphne inherits this process's limit). Exit status 1 when a goal or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness.daphne import Daphne
from bench.harness.pages import PageSocket, expected_tables, shows
from bench.harness.proc import cpu_seconds, raise_open_files_limit
from bench.harness.site import SiteAccount, team_site
from bench.stats import p95
from orders.simulator import SimAccount, Simulator

GOAL_RSS_KIB = 64.0
GOAL_REACH_SECONDS = 0.5


@dataclass
class LoadConfig:
    sockets: int = 1000
    users: int = 20
    orders: int = 200
    paces: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # book events per second, one phase each
    updates: int = 15  # diffs measured per phase
    concurrency: int = 100  # handshakes in flight at once
    deadline: float = 300.0  # longest any wait may take
    workdir: Path | None = None


@dataclass
class Phase:
    pace: float
    seconds: float = 0.0
    reach_all: list[float] = field(default_factory=list)  # as_of → last socket
    reach_first: list[float] = field(default_factory=list)  # as_of → first socket
    spread: list[float] = field(default_factory=list)  # first socket → last socket
    partial: int = 0  # diffs that did not reach every socket
    daphne_cpu: float = 0.0  # share of one core
    client_cpu: float = 0.0  # this process: clients + simulator
    converged: int = 0


@dataclass
class LoadReport:
    config: LoadConfig
    connected: int = 0
    connect_seconds: float = 0.0
    snapshots: int = 0
    rss_before_kib: int = 0
    rss_idle_kib: int = 0
    rss_after_kib: int = 0
    threads: int = 0
    idle_cpu: float = 0.0
    phases: list[Phase] = field(default_factory=list)
    gaps: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    layer_fanout: list[float] = field(default_factory=list)  # the project's layer (settings.CHANNEL_LAYERS)
    stock_layer_fanout: list[float] = field(default_factory=list)  # Channels' own InMemoryChannelLayer
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_average_end: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def per_socket_kib(self) -> float:
        return (max(self.rss_after_kib, self.rss_idle_kib) - self.rss_before_kib) / max(1, self.config.sockets)

    @property
    def goals(self) -> dict[str, bool]:
        n = self.config.sockets
        first = self.phases[0] if self.phases else None
        return {
            f"{n} sockets connected, each with its snapshot": self.connected == n and self.snapshots == n,
            f"RSS per socket ≤ {GOAL_RSS_KIB:g} KiB": self.per_socket_kib <= GOAL_RSS_KIB,
            f"one small update reaches all in ≤ {GOAL_REACH_SECONDS * 1000:.0f} ms (p95, slowest rate)": (
                first is not None and bool(first.reach_all) and p95(first.reach_all) <= GOAL_REACH_SECONDS
            ),
            "every table equals the book after every phase": bool(self.phases)
            and all(p.converged == n for p in self.phases),
            "no errors": not self.errors,
        }

    @property
    def ok(self) -> bool:
        return all(self.goals.values())


class _Arrivals:
    """Receive times of each diff seq over every socket, while recording."""

    def __init__(self) -> None:
        self.recording = False
        self.times: dict[int, list[float]] = defaultdict(list)
        self.as_of: dict[int, float] = {}

    def restart(self) -> None:
        self.times.clear()
        self.as_of.clear()
        self.recording = True

    def __call__(self, _sock: PageSocket, message: dict[str, Any], wall: float) -> None:
        if self.recording and message.get("type") == "diff":
            seq = message["seq"]
            self.times[seq].append(wall)
            self.as_of.setdefault(seq, message["as_of"])


async def layer_fanout(channels: int, repeats: int = 7, *, stock: bool = False) -> list[float]:
    """An in-memory channel layer alone (no server, no sockets): seconds from one ``group_send`` to
    ``channels`` waiting receivers until every one of them has received it. The project's layer
    (``qfexdash.channel_layers``), or with ``stock`` Channels' own, which sweeps on every receive."""
    from channels.layers import InMemoryChannelLayer

    from qfexdash.channel_layers import SweepingInMemoryChannelLayer

    layer = InMemoryChannelLayer(capacity=200) if stock else SweepingInMemoryChannelLayer(capacity=200)
    names = [await layer.new_channel() for _ in range(channels)]
    for name in names:
        await layer.group_add("fanout", name)
    received = 0
    everyone = asyncio.Event()

    async def receiver(name: str) -> None:
        nonlocal received
        while True:
            await layer.receive(name)
            received += 1
            if received == channels:
                everyone.set()

    receivers = [asyncio.ensure_future(receiver(name)) for name in names]
    samples = []
    try:
        await asyncio.sleep(0.1)  # every receiver is waiting
        for _ in range(repeats):
            received = 0
            everyone.clear()
            start = time.perf_counter()
            await layer.group_send("fanout", {"type": "feed.message", "text": "x" * 300})
            await asyncio.wait_for(everyone.wait(), 60)
            samples.append(time.perf_counter() - start)
    finally:
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
    return samples


async def _load(config: LoadConfig) -> LoadReport:
    report = LoadReport(config)
    started = time.monotonic()
    report.load_average = os.getloadavg()
    report.layer_fanout = await layer_fanout(config.sockets)
    report.stock_layer_fanout = await layer_fanout(config.sockets, stock=True)
    raise_open_files_limit(config.sockets * 2 + 1024)
    account = SimAccount(
        public_key=f"qfex_pub_load_{secrets.token_hex(4)}",
        secret=f"qfex_secret_load_{secrets.token_hex(12)}",  # simulator-only
        orders=config.orders,
        twaps=3,
    )
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="qfexdash-load-"))
    arrivals = _Arrivals()
    sockets: list[PageSocket] = []  # the measured sockets
    opened: list[PageSocket] = []  # every socket, the warm-up one included
    tasks: list[asyncio.Task[None]] = []
    with Simulator([account], seed=23, pace=0.0) as sim:
        site = await asyncio.to_thread(team_site, workdir, sim.url, [account], viewers=config.users)
        daphne = Daphne(site.env, workdir / "daphne.log", backlog=min(4096, config.sockets + 64))
        target = site.accounts[0]

        def new_socket(index: int) -> PageSocket:
            sock = PageSocket(
                daphne.ws_url(f"/ws/accounts/{target.pk}/"),
                daphne.origin,
                site.sessions[index % len(site.sessions)],
                name=f"tab {index}",
                on_message=arrivals,
            )
            opened.append(sock)
            tasks.append(asyncio.ensure_future(sock.run()))
            return sock

        try:
            await asyncio.to_thread(daphne.start)
            # One warm-up socket: the app, the feed and the pools are up before the baseline is taken.
            warm = new_socket(-1)
            await _until(lambda: _all_show(sim, target, [warm]), config.deadline, "the warm-up socket")
            await asyncio.sleep(3.0)  # an access re-check round and a reconcile tick before the baseline
            report.rss_before_kib = _rss(daphne)

            connect_start = time.monotonic()
            gate = asyncio.Semaphore(config.concurrency)

            async def open_one(index: int) -> None:
                async with gate:
                    sock = new_socket(index)
                    sockets.append(sock)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sock.open.wait(), config.deadline)

            await asyncio.gather(*(open_one(i) for i in range(config.sockets)))
            await _until(lambda: all(_snapshots(s, target) >= 1 for s in sockets), config.deadline, "snapshots")
            report.connect_seconds = time.monotonic() - connect_start
            report.connected = sum(1 for s in sockets if s.open.is_set())
            report.snapshots = sum(1 for s in sockets if _snapshots(s, target) >= 1)
            idle_start = (cpu_seconds(daphne.pid), time.monotonic())
            await asyncio.sleep(5.0)  # idle: every socket's access is re-checked twice meanwhile
            report.idle_cpu = (cpu_seconds(daphne.pid) - idle_start[0]) / (time.monotonic() - idle_start[1])
            report.rss_idle_kib = _rss(daphne)

            everyone = len(opened)
            for pace in config.paces:
                report.phases.append(await _phase(config, pace, sim, daphne, target, arrivals, everyone, sockets))
            report.rss_after_kib = _rss(daphne)
            sample = daphne.sample()
            report.threads = 0 if sample is None else sample.threads
            report.gaps = sum(v.gaps for s in opened for v in s.tables.accounts.values())
            report.errors.extend(_errors(opened))
            report.errors.extend(daphne.problems_since(0)[:5])
        finally:
            await asyncio.gather(*(s.stop() for s in opened), return_exceptions=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(daphne.close)
    report.seconds = time.monotonic() - started
    report.load_average_end = os.getloadavg()
    return report


async def _phase(
    config: LoadConfig,
    pace: float,
    sim: Simulator,
    daphne: Daphne,
    target: SiteAccount,
    arrivals: _Arrivals,
    everyone: int,
    sockets: list[PageSocket],
) -> Phase:
    """Updates flow at ``pace`` until ``config.updates`` diffs reached every socket; then the book freezes
    and every table must come to equal it (which also drains anything still queued)."""
    phase = Phase(pace)
    arrivals.restart()
    begin = (cpu_seconds(daphne.pid), time.process_time(), time.monotonic())
    sim.pace = pace

    def enough() -> bool:
        complete = sum(1 for times in list(arrivals.times.values()) if len(times) >= everyone)
        return complete >= config.updates

    await _until(enough, config.deadline, f"{config.updates} diffs at every socket", fail=False)
    phase.seconds = time.monotonic() - begin[2]
    phase.daphne_cpu = (cpu_seconds(daphne.pid) - begin[0]) / phase.seconds
    phase.client_cpu = (time.process_time() - begin[1]) / phase.seconds
    sim.pace = 0.0
    await _until(lambda: _all_show(sim, target, sockets), config.deadline, "every table", fail=False)
    arrivals.recording = False
    phase.converged = sum(1 for s in sockets if _all_show(sim, target, [s]))
    for seq, times in sorted(arrivals.times.items()):
        if len(times) < everyone:
            phase.partial += 1
            continue
        phase.reach_all.append(max(times) - arrivals.as_of[seq])
        phase.reach_first.append(min(times) - arrivals.as_of[seq])
        phase.spread.append(max(times) - min(times))
    return phase


def _rss(daphne: Daphne) -> int:
    sample = daphne.sample()
    return 0 if sample is None else sample.rss_kib


def _snapshots(sock: PageSocket, account: SiteAccount) -> int:
    view = sock.tables.accounts.get(account.pk)
    return 0 if view is None else view.snapshots


def _all_show(sim: Simulator, account: SiteAccount, sockets: list[PageSocket]) -> bool:
    orders, twaps = expected_tables(sim, account)
    return all(shows(s.tables.accounts.get(account.pk), orders, twaps) for s in sockets)


def _errors(sockets: list[PageSocket]) -> list[str]:
    errors = []
    failed = sum(s.failed_connects for s in sockets)
    if failed:
        kinds = sum((s.connect_errors for s in sockets), start=Counter())
        errors.append(f"{failed} failed handshakes {dict(kinds)}")
    # Nothing may close a socket while the load runs (they are closed by us only afterwards).
    closes = sum((s.close_codes for s in sockets), start=Counter())
    if closes:
        errors.append(f"sockets closed during the run: {dict(closes)}")
    frames = [e.get("code") for s in sockets for e in s.server_errors]
    if frames:
        errors.append(f"{len(frames)} error frames {sorted(set(map(str, frames)))}")
    return errors


async def _until(condition: Any, timeout: float, what: str, *, fail: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                raise TimeoutError(f"gave up waiting for {what} after {timeout:g} s")
            return False
        await asyncio.sleep(0.1)
    return True


def _ms(values: list[float]) -> str:
    if not values:
        return "no complete sample"
    return f"{statistics.median(values) * 1000:.0f} / {p95(values) * 1000:.0f} ms"


def format_report(report: LoadReport) -> list[str]:
    cfg = report.config
    n = cfg.sockets
    lines = [
        f"# Load — {n} sockets on one Daphne process watching one account ({cfg.orders} orders),"
        f" spread over {cfg.users} viewers' sessions; {report.seconds:.0f} s in all",
        f"   connected {report.connected}/{n}, snapshots {report.snapshots}/{n}, in {report.connect_seconds:.1f} s"
        f" ({cfg.concurrency} handshakes at a time)",
        f"   Daphne RSS: {report.rss_before_kib / 1024:.1f} MiB with 1 socket → {report.rss_idle_kib / 1024:.1f} MiB"
        f" with {n + 1} idle → {report.rss_after_kib / 1024:.1f} MiB after the updates:"
        f" {report.per_socket_kib:.1f} KiB per socket; {report.threads} threads;"
        f" CPU with the sockets idle {report.idle_cpu:.0%} of a core",
        "",
        f"| book events/s | diffs measured | as_of → first socket | as_of → last of {n + 1} sockets | first → last"
        " | diffs that missed a socket | Daphne CPU | clients CPU | tables equal after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report.phases:
        lines.append(
            f"| {p.pace:g} | {len(p.reach_all)} in {p.seconds:.0f} s | {_ms(p.reach_first)} | {_ms(p.reach_all)}"
            f" | {_ms(p.spread)} | {p.partial} | {p.daphne_cpu:.0%} | {p.client_cpu:.0%} | {p.converged}/{n} |"
        )
    lines += [
        "(times: median / p95)",
        "",
        f"   for context, the in-memory channel layer alone, one group_send to {n} waiting channels until all"
        f" received: the project's (sweeps once a second) {_ms(report.layer_fanout)}; Channels' own (sweeps on"
        f" every receive) {_ms(report.stock_layer_fanout)}",
        f"   machine: {os.cpu_count()} CPUs, load average {report.load_average[0]:.1f} at the start,"
        f" {report.load_average_end[0]:.1f} at the end (other work on the machine shows here)",
        f"   seq gaps seen by the pages: {report.gaps}; errors: {'; '.join(report.errors) or 'none'}",
    ]
    for goal, met in report.goals.items():
        lines.append(f"   {goal}: {'met' if met else 'NOT met'}")
    lines.append("RESULT: " + ("PASS" if report.ok else "FAIL"))
    return lines


def run(config: LoadConfig) -> LoadReport:
    return asyncio.run(_load(config))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--users", type=int, default=20, help="logged-in viewers the sockets are spread over")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--paces", default="0.25,0.5,1,2", help="book events per second, one phase each")
    parser.add_argument("--updates", type=int, default=15, help="diffs measured per phase")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        paces = tuple(float(p) for p in args.paces.split(",") if p.strip())
    except ValueError:
        parser.error("--paces must be comma-separated numbers")
    if args.sockets < 1 or args.users < 1 or args.updates < 1 or not paces or min(paces) <= 0:
        parser.error("--sockets, --users, --updates and every pace must be positive")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    config = LoadConfig(
        sockets=args.sockets,
        users=args.users,
        orders=args.orders,
        paces=paces,
        updates=args.updates,
        workdir=args.workdir,
    )
    report = run(config)
    for line in format_report(report):
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
