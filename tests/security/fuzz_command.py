"""The browser-protocol fuzzer as a command (:mod:`tests.security.fuzz_browser` is the fuzzer)::

    .venv/bin/python -m tests.security.fuzz_command --frames 20000 --seed 1            # against a Daphne it starts
    .venv/bin/python -m tests.security.fuzz_command --url ws://127.0.0.1:8000 --session … --account 7

Kept apart from the fuzzer so the fuzzer and the Daphne site it can start do not import each other.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from tests.security.daphne_site import fuzz_against_daphne
from tests.security.fuzz_browser import FuzzReport, Target, run_fuzz
from tests.security.fuzz_transport import websocket_connector


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.security.fuzz_command",
        description="Fuzz the live WebSocket protocol. With no --url: starts a simulator and Daphne with two "
        "users, fuzzes one user's sockets while the other user's socket is watched.",
    )
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=int, default=1_000_000,
                        help="QFEXDASH_WS_RATE for the Daphne started here (default: high, so frames reach the "
                        "parser; 20 is the production default and exercises the limiter)")  # fmt: skip
    parser.add_argument("--check-every", type=int, default=500)
    parser.add_argument("--no-oversize", action="store_true", help="send no frame over --max-frame-bytes")
    parser.add_argument("--url", help="a running server, e.g. ws://127.0.0.1:8000 (skips starting one)")
    parser.add_argument("--origin", help="the Origin header (default: the URL's http(s) origin)")
    parser.add_argument("--session", help="with --url: the fuzzed user's sessionid cookie")
    parser.add_argument("--account", type=int, action="append", default=[],
                        help="with --url: an account the fuzzed user may see (repeat)")  # fmt: skip
    parser.add_argument("--foreign", type=int, action="append", default=[],
                        help="with --url: another user's account id to name in frames (repeat)")  # fmt: skip
    parser.add_argument("--forbid", action="append", default=[],
                        help="with --url: text no frame may contain, e.g. another account's label")  # fmt: skip
    parser.add_argument("--rate-limit", type=int, default=20, help="with --url: the server's QFEXDASH_WS_RATE")
    parser.add_argument("--max-frame-bytes", type=int, default=4096)
    return parser.parse_args(argv)


async def _fuzz_external(args: argparse.Namespace) -> FuzzReport:
    if not args.session or not args.account:
        raise SystemExit("--url needs --session and at least one --account")
    origin = args.origin or args.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rstrip("/")
    paths: dict[str, int | None] = {f"/ws/accounts/{account}/": account for account in args.account}
    paths["/ws/accounts/all/"] = None
    target = Target(
        connect=websocket_connector(args.url, args.session, origin=origin),
        paths=paths,
        visible=frozenset(args.account),
        foreign=args.foreign,
        forbidden=lambda: tuple(args.forbid),
    )
    limit = args.rate_limit if args.rate_limit < args.frames else None
    return await run_fuzz(target, frames=args.frames, seed=args.seed, rate_limit=limit,
                          max_frame_bytes=args.max_frame_bytes, check_every=args.check_every,
                          oversize=not args.no_oversize)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    if args.url:
        report = asyncio.run(_fuzz_external(args))
        print(report.summary())
        return 0 if report.ok else 1
    report, server_problems = fuzz_against_daphne(
        frames=args.frames, seed=args.seed, rate=args.rate, check_every=args.check_every, oversize=not args.no_oversize
    )
    print(report.summary())
    for problem in server_problems:
        print(f"SERVER LOG: {problem}")
    return 0 if report.ok and not server_problems else 1


if __name__ == "__main__":
    sys.exit(main())
