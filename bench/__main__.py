"""Run the benchmarks and print design.md's P-figures: ``python -m bench [--only P1,P6] [--samples N]``.

P1 and P6 time the protocol client against the simulator (``bench/upstream.py``); P2-P5 and P8 run
qfexdash in a real Daphne subprocess with browser sockets (``bench/live/``); P7 drives the live page in
headless Chromium (``bench/browser.py``); P3-redis and P4-redis repeat P3 and P4 on two Daphne processes
with PostgreSQL and the Redis channel layer (``bench/live/cluster.py``); P9 and P10 time an exchange event
to the diff on the page (``bench/live/event_latency.py``). Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

import django


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="Comma-separated figures to run, e.g. P1,P6 (default: all).")
    parser.add_argument("--samples", type=int, default=40, help="Samples per measurement (default 40).")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qfexdash.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # per-connection INFO lines would drown the figures
    django.setup()
    from bench import browser, upstream
    from bench.live import cluster, diff_bytes, event_latency, idle_sockets, many_viewers, rate_budget, reply_latency

    figures: dict[str, Callable[[int], list[str]]] = {
        "P1": upstream.p1,
        "P2": reply_latency.p2,
        "P3": many_viewers.p3,
        "P4": idle_sockets.p4,
        "P5": diff_bytes.p5,
        "P6": lambda n: upstream.p6(max(5, n // 4)),
        "P7": browser.p7,
        "P8": rate_budget.p8,
        # Exchange event → diff on the page (bench/live/event_latency.py); P9 also prints P8 during its large run.
        # --samples N: 5 * N events per measurement (200 by default).
        "P9": lambda n: event_latency.p9(5 * n),
        "P10": lambda n: event_latency.p10(5 * n),
        # Two Daphne processes on PostgreSQL and Redis (bench/live/cluster.py); skipped without those services.
        "P3-redis": cluster.p3,
        "P4-redis": cluster.p4,
    }
    names = {name.upper(): name for name in figures}
    chosen = [names.get(name.strip().upper(), name.strip()) for name in args.only.split(",") if name.strip()]
    chosen = chosen or list(figures)
    unknown = [name for name in chosen if name not in figures]
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(unknown)}; choose from {', '.join(figures)}")
    print(
        f"# qfexdash benchmarks {time.strftime('%Y-%m-%d')} — Python {platform.python_version()},"
        f" {os.cpu_count()} CPUs, {platform.machine()}, --samples {args.samples}"
    )
    for name in chosen:
        started = time.monotonic()
        for line in figures[name](args.samples):
            print(line, flush=True)
        print(f"   ({name} took {time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
