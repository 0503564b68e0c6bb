"""``python -m bench.soak``: the command line of the soak (what it runs: :mod:`bench.soak`)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import bench.soak
from bench.soak import ALL_FAULTS, FAULTS, SoakConfig, format_report, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=bench.soak.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
