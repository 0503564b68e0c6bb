"""Run the QFEX exchange simulator on loopback until SIGINT/SIGTERM (the demo's stand-in for QFEX)."""

from __future__ import annotations

import argparse
import json
import math
import signal
import threading
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from orders.management.terminal import TerminalSafeCommand
from orders.simulator import DEMO_ACCOUNTS, Faults, SimAccount, Simulator, accounts_from_json
from orders.simulator.book import PAGE_ORDERS


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 65535, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 65535, not {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number, 0 or more, not {text!r}")
    return value


def _fault(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"must look like NAME=VALUE (e.g. reply_delay=2.5), not {text!r}")
    return name.strip(), value


class Command(TerminalSafeCommand):
    help = (
        "Run the QFEX trade WebSocket simulator on 127.0.0.1 until interrupted. It serves HMAC auth, "
        "get_user_orders and order_responses pushes over live, deterministic books, and never executes a "
        f"trading message. Faults: {', '.join(Faults.names())}."
    )
    requires_system_checks: list[str] = []  # needs no database or app checks; starts fast for tests and demos

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=_port, default=8765, help="port on 127.0.0.1 (0 picks a free one)")
        parser.add_argument("--seed", type=_seed, default=7, help="seed of the deterministic books and activity")
        parser.add_argument("--accounts", metavar="FILE", help="JSON list of accounts (default: the demo accounts)")
        parser.add_argument("--pace", type=_non_negative, default=1.0, help="activity events per second (0 = none)")
        parser.add_argument(
            "--page-latency", type=_non_negative, default=0.0, help="seconds added before each get_user_orders reply"
        )
        parser.add_argument(
            "--page-order",
            choices=PAGE_ORDERS,
            default="insertion",
            help="how get_user_orders lists a book: insertion order (default) or latest update first",
        )
        parser.add_argument(
            "--fault",
            type=_fault,
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="switch a fault on, e.g. --fault reply_delay=2.5 --fault silent=true (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        simulator = build_simulator(options)
        try:
            simulator.start()
        except OSError as exc:
            raise CommandError(str(exc)) from None
        stop = threading.Event()
        restore = _install_signal_handlers(stop)
        try:
            self._announce(simulator, options)
            stop.wait()
        finally:
            _restore_signal_handlers(restore)
            simulator.stop()
            self.stdout.write("QFEX simulator stopped.")

    def _announce(self, simulator: Simulator, options: dict[str, Any]) -> None:
        self.stdout.write(f"QFEX simulator listening on {simulator.url}")
        for account in simulator.accounts:
            subaccounts = ", ".join(account.subaccounts) or "none"
            self.stdout.write(
                f"  account {account.public_key}: user_id {account.user_id}, subaccounts {subaccounts}, "
                f"{account.orders} orders, {account.twaps} TWAPs"
            )
        if options.get("accounts"):
            self.stdout.write(f"Secrets: as given in {options['accounts']} (never printed).")
        else:
            self.stdout.write(
                "Secrets: the fixed, simulator-only demo secrets in orders/simulator/accounts.py (DEMO_ACCOUNTS)."
            )
        switched = [f"{name}={getattr(simulator.faults, name)}" for name, _ in options.get("fault", [])]
        if switched:
            self.stdout.write(f"Faults: {', '.join(switched)}")
        if simulator.page_order != "insertion":
            self.stdout.write(f"Pages list orders by: {simulator.page_order} (latest update first)")
        self.stdout.write("Press Ctrl+C to stop.")
        self.stdout.flush()


def build_simulator(options: dict[str, Any]) -> Simulator:
    """The simulator the options describe; CommandError (one line, no secret) for anything invalid."""
    accounts = _load_accounts(options["accounts"]) if options.get("accounts") else list(DEMO_ACCOUNTS)
    faults = Faults()
    for name, value in options.get("fault", []):
        try:
            faults.set_from_text(name, value)
        except ValueError as exc:
            raise CommandError(f"--fault {name}: {exc}") from None
    try:
        return Simulator(
            accounts,
            seed=options.get("seed", 7),
            pace=options.get("pace", 1.0),
            page_latency=options.get("page_latency", 0.0),
            page_order=options.get("page_order", "insertion"),
            port=options.get("port", 8765),
            faults=faults,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _load_accounts(path: str) -> list[SimAccount]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read the accounts file {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"the accounts file {path} is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    try:
        return accounts_from_json(data)
    except ValueError as exc:
        raise CommandError(f"{path}: {exc}") from None


def _install_signal_handlers(stop: threading.Event) -> dict[int, Any]:
    """Stop on SIGINT/SIGTERM. Signals can only be hooked from the main thread; run from another thread, the
    command serves until the process ends."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda *_: stop.set())
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)
