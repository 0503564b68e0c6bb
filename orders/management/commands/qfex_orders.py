"""Print an account's open orders and active TWAPs, read live from QFEX.

Either a key pair given here (public key as an option, the secret only from the environment
variable ``QFEX_SECRET_KEY``) or an account stored in qfexdash (``--account LABEL``). Read-only:
the client can only send auth, subscribe, unsubscribe and get_user_orders. Exchange strings are printed
without their control characters (S39, :mod:`orders.management.terminal`); JSON keeps them, escaped.
"""

from __future__ import annotations

import argparse
import os
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import CommandError

from orders.management.terminal import TerminalSafeCommand, json_for_terminal, printable
from orders.qfex import Credentials, OrdersSnapshot, QfexError, QfexSession, dumps, fetch_open_orders

SECRET_ENV = "QFEX_SECRET_KEY"  # noqa: S105 - the name of the variable, not a secret

ORDER_COLUMNS = (
    ("symbol", "SYMBOL"),
    ("side", "SIDE"),
    ("type", "TYPE"),
    ("time_in_force", "TIF"),
    ("price", "PRICE"),
    ("quantity", "QTY"),
    ("quantity_remaining", "REMAINING"),
    ("status", "STATUS"),
    ("client_order_id", "CLIENT ID"),
    ("order_id", "ORDER ID"),
)
TWAP_COLUMNS = (
    ("symbol", "SYMBOL"),
    ("side", "SIDE"),
    ("filled_quantity", "FILLED"),
    ("total_quantity", "TOTAL"),
    ("average_fill_price", "AVG PRICE"),
    ("total_num_orders", "SLICES"),
    ("order_interval_secs", "INTERVAL S"),
    ("status", "STATUS"),
    ("client_twap_id", "CLIENT ID"),
    ("twap_id", "TWAP ID"),
)


def _trade_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise argparse.ArgumentTypeError("must be a ws:// or wss:// URL, e.g. wss://trade.qfex.io")
    return value


class Command(TerminalSafeCommand):
    help = "Print an account's open orders and active TWAPs from QFEX (read-only)."
    requires_system_checks: list[str] = []  # usable with --url alone, before any account is stored

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--public-key", help=f"QFEX API public key; the secret is read from ${SECRET_ENV}.")
        source.add_argument("--account", metavar="LABEL", help="An account stored in qfexdash (label or id).")
        parser.add_argument(
            "--url", type=_trade_url, help="Trade WebSocket URL (default: QFEX_TRADE_URL) when using --public-key."
        )
        parser.add_argument("--account-id", metavar="SUB", help="Subaccount UUID to view (with --public-key).")
        parser.add_argument("--symbol", help="Only this symbol, e.g. AAPL-USD.")
        parser.add_argument("--format", choices=("table", "json"), default="table")
        parser.add_argument(
            "--timeout", type=float, default=None, help="Seconds per network step (default: QFEX_TIMEOUT_SECONDS)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        timeout = options["timeout"] if options["timeout"] is not None else settings.QFEX_TIMEOUT_SECONDS
        if timeout <= 0:
            raise CommandError("--timeout must be a positive number of seconds.")
        url, credentials, account_id = self._connection(options)
        # A stored account's key goes only where the endpoint policy allows (S22); --url with a secret from
        # the operator's own environment is the operator's choice.
        from orders.accounts.endpoints import endpoint_policy

        policy = endpoint_policy() if options["account"] else None
        try:
            with QfexSession(
                url, credentials, account_id=account_id, timeout=timeout, endpoint_policy=policy
            ) as session:
                snapshot = fetch_open_orders(session, symbol=options["symbol"])
        except QfexError as exc:
            raise CommandError(exc.user_message) from None
        if options["format"] == "json":
            self._write_json(snapshot)
        else:
            self._write_table(snapshot)

    def _connection(self, options: dict[str, Any]) -> tuple[str, Credentials, str | None]:
        if options["account"]:
            if options["url"] or options["account_id"]:
                raise CommandError("--url and --account-id come from the stored account; leave them out.")
            return self._stored_account(options["account"])
        secret = os.environ.get(SECRET_ENV, "").strip()
        if not secret:
            raise CommandError(
                f"Set the API secret in the environment variable {SECRET_ENV} (never on the command line)."
            )
        url = options["url"] or settings.QFEX_TRADE_URL
        return url, Credentials(options["public_key"], secret), options["account_id"] or None

    @staticmethod
    def _stored_account(label: str) -> tuple[str, Credentials, str | None]:
        from orders.accounts.encryption import EncryptionKeyError, SecretUnreadable
        from orders.accounts.exchange_accounts import account_credentials
        from orders.management.account_lookup import find_account

        account = find_account(label, None)
        if not account.enabled:
            raise CommandError(f"Account {account.label!r} is disabled.")
        try:
            credentials = account_credentials(account)
        except SecretUnreadable as exc:
            raise CommandError(f"Account {account.label!r}: {exc.user_message}") from None
        except EncryptionKeyError as exc:
            raise CommandError(str(exc)) from None
        return account.trade_url(), credentials, account.subaccount_id or None

    def _write_json(self, snapshot: OrdersSnapshot) -> None:
        payload = {"orders": [o.to_json() for o in snapshot.orders], "twaps": [t.to_json() for t in snapshot.twaps]}
        self.stdout.write(json_for_terminal(dumps(payload).decode()))

    def _write_table(self, snapshot: OrdersSnapshot) -> None:
        self.stdout.write(f"{len(snapshot.orders)} open orders")
        if snapshot.orders:
            self._table([o.raw for o in snapshot.orders], ORDER_COLUMNS)
        self.stdout.write(f"\n{len(snapshot.twaps)} active TWAPs")
        if snapshot.twaps:
            self._table([t.raw for t in snapshot.twaps], TWAP_COLUMNS)

    def _table(self, rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> None:
        cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
        widths = [max([len(title)] + [len(line[i]) for line in cells]) for i, (_, title) in enumerate(columns)]
        self.stdout.write("  ".join(title.ljust(widths[i]) for i, (_, title) in enumerate(columns)).rstrip())
        for line in cells:
            self.stdout.write("  ".join(value.ljust(widths[i]) for i, value in enumerate(line)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return str(value)
    # Exchange strings are free text: one line per row, and nothing that could steer the terminal (S39).
    return printable(" ".join(str(value).split())) or "-"
