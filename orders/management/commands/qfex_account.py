"""Add, edit, list and verify stored QFEX exchange accounts from the command line.

The secret is read from the environment variable ``QFEX_SECRET_KEY`` or typed at a prompt that does
not echo; it is never accepted as a command-line argument (those end up in shell history and in
``ps`` output).

``add`` checks the key with QFEX before storing it: a key QFEX rejects is not stored. When QFEX cannot
be reached the account is stored as "not verified" (the feed checks it when it connects). ``edit``
changing the public key, endpoint or subaccount needs the secret again (S21): the stored secret is bound
to where it may be sent. The command is the operator's (shell access): it may enter a custom URL, within
``QFEXDASH_CUSTOM_ENDPOINTS`` like everyone else.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from orders.accounts import rules
from orders.accounts.display import account_key_status
from orders.accounts.encryption import EncryptionKeyError
from orders.accounts.exchange_accounts import account_create, account_update, destination_changes
from orders.accounts.verify import REJECTED, KeyCheck, account_record_check, account_verify, key_check
from orders.management.account_lookup import find_account
from orders.management.terminal import TerminalSafeCommand, json_for_terminal, printable
from orders.models import ExchangeAccount, Team

SECRET_ENV_VAR = "QFEX_SECRET_KEY"  # noqa: S105  (the variable's name, not its value)


def _one_line(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        messages = [message for messages in error.message_dict.values() for message in messages]
    else:
        messages = error.messages
    return " ".join(messages)


def _endpoint_choice(value: str) -> tuple[str, str]:
    """``prod``/``uat`` or a ws(s):// URL → (endpoint, custom_url)."""
    lowered = value.strip().lower()
    if lowered in ("prod", "production"):
        return ExchangeAccount.Endpoint.PRODUCTION, ""
    if lowered == "uat":
        return ExchangeAccount.Endpoint.UAT, ""
    if urlsplit(value.strip()).scheme in ("ws", "wss"):
        return ExchangeAccount.Endpoint.CUSTOM, value.strip()
    raise CommandError(f"--endpoint must be prod, uat or a ws:// or wss:// URL, not {value!r}.")


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _read_secret() -> str:
    secret = os.environ.get(SECRET_ENV_VAR, "").strip()
    if secret:
        return secret
    if not _stdin_is_terminal():
        raise CommandError(
            f"No secret key given: set {SECRET_ENV_VAR} in the environment, or run this in a terminal to be "
            "prompted. The secret is never accepted as a command-line argument."
        )
    secret = getpass.getpass("QFEX secret key (input is hidden): ").strip()
    if not secret:
        raise CommandError("No secret key entered.")
    return secret


class Command(TerminalSafeCommand):
    help = "Add, list or verify the QFEX exchange accounts qfexdash stores."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{add,list,verify}")

        add = actions.add_parser("add", help=f"Store an account; the secret comes from ${SECRET_ENV_VAR} or a prompt.")
        add.add_argument("--label", required=True, help="A name for the account (unique per owner).")
        owner = add.add_mutually_exclusive_group(required=True)
        owner.add_argument("--owner", metavar="USERNAME", help="The user who owns this personal account.")
        owner.add_argument("--team", metavar="NAME", help="The team that owns this account.")
        add.add_argument("--public-key", required=True, help="The QFEX API public key.")
        add.add_argument(
            "--endpoint", default="prod", help="prod (default), uat, or a ws:// / wss:// URL such as the simulator's."
        )
        add.add_argument("--account-id", default="", metavar="SUB", help="Optional QFEX subaccount UUID.")
        add.add_argument("--disabled", action="store_true", help="Store the account disabled.")

        add.add_argument(
            "--no-verify", action="store_true", help="Store without checking the key with QFEX first (offline setup)."
        )

        edit = actions.add_parser(
            "edit",
            help="Change an account. A new public key, endpoint or subaccount needs the secret again "
            f"(from ${SECRET_ENV_VAR} or a prompt).",
        )
        edit.add_argument("label", nargs="?", help="The account's label (or its numeric id).")
        edit.add_argument("--id", type=int, dest="account_pk", help="The account's id, when labels repeat.")
        edit.add_argument("--new-label", dest="new_label", help="A new name.")
        edit.add_argument("--public-key", dest="public_key", help="A new QFEX API public key.")
        edit.add_argument("--endpoint", help="prod, uat, or a ws:// / wss:// URL.")
        edit.add_argument("--account-id", dest="subaccount_id", metavar="SUB", help="Subaccount UUID ('' for none).")
        edit.add_argument("--new-secret", action="store_true", help="Replace the secret (read as for add).")

        listing = actions.add_parser("list", help="List stored accounts (never the secret).")
        listing.add_argument("--format", choices=("table", "json"), default="table")

        verify = actions.add_parser("verify", help="Authenticate against the account's endpoint.")
        verify.add_argument("label", nargs="?", help="The account's label (or its numeric id).")
        verify.add_argument("--id", type=int, dest="account_pk", help="The account's id, when labels repeat.")
        verify.add_argument("--timeout", type=float, default=None, help="Seconds to wait for QFEX.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_handle_{options['action']}")(options)
        except EncryptionKeyError as exc:
            raise CommandError(str(exc)) from None

    # --- add ------------------------------------------------------------------------------------------

    def _handle_add(self, options: dict[str, Any]) -> None:
        endpoint, custom_url = _endpoint_choice(options["endpoint"])
        if custom_url:
            try:
                rules.clean_custom_url(custom_url)  # before the secret is read or anything is sent
            except ValidationError as exc:
                raise CommandError(_one_line(exc)) from None
        owner_user = owner_team = None
        if options["owner"]:
            owner_user = get_user_model().objects.filter(username=options["owner"]).first()
            if owner_user is None:
                raise CommandError(f"No user named {options['owner']!r}.")
        else:
            owner_team = Team.objects.filter(name=options["team"]).first()
            if owner_team is None:
                raise CommandError(f"No team named {options['team']!r}.")
        secret = _read_secret()
        try:
            check = None if options.get("no_verify") else self._check_key(options, secret, endpoint, custom_url)
            account = account_create(
                actor=None,
                label=options["label"],
                public_key=options["public_key"],
                secret=secret,
                owner_user=owner_user,
                owner_team=owner_team,
                endpoint=endpoint,
                custom_url=custom_url,
                subaccount_id=options["account_id"],
                enabled=not options["disabled"],
            )
        except ValidationError as exc:
            raise CommandError(_one_line(exc)) from None
        self.stdout.write(
            f"Added account {account.pk} {account.label!r} for {account.owner_display} ({account.trade_url()})."
        )
        if check is None:
            self.stdout.write(f"Check the key with: manage.py qfex_account verify --id {account.pk}")
        else:
            result = account_record_check(actor=None, account=account, check=check)
            self.stdout.write(result.message if result.ok else f"Stored as not verified: {result.message}")

    @staticmethod
    def _check_key(options: dict[str, Any], secret: str, endpoint: str, custom_url: str) -> KeyCheck:
        """Sign in once with the key as given; a key QFEX rejects is not stored."""
        check = key_check(
            public_key=options["public_key"],
            secret=secret,
            endpoint=endpoint,
            custom_url=custom_url,
            subaccount_id=options["account_id"],
        )
        if check.outcome == REJECTED:
            raise CommandError(f"QFEX did not accept this key, so nothing was stored: {check.message}")
        return check

    # --- edit -----------------------------------------------------------------------------------------

    def _handle_edit(self, options: dict[str, Any]) -> None:
        account = find_account(options["label"], options["account_pk"])
        changes: dict[str, Any] = {}
        if options["new_label"] is not None:
            changes["label"] = options["new_label"]
        if options["public_key"] is not None:
            changes["public_key"] = options["public_key"]
        if options["endpoint"] is not None:
            changes["endpoint"], changes["custom_url"] = _endpoint_choice(options["endpoint"])
        if options["subaccount_id"] is not None:
            changes["subaccount_id"] = options["subaccount_id"]
        moved = destination_changes(account, changes)
        secret = _read_secret() if moved or options["new_secret"] else None
        try:
            account = account_update(actor=None, account=account, secret=secret, **changes)
        except ValidationError as exc:
            raise CommandError(_one_line(exc)) from None
        self.stdout.write(f"Saved account {account.pk} {account.label!r} ({account.trade_url()}).")
        if moved or secret:
            result = account_verify(actor=None, account=account)
            self.stdout.write(result.message if result.ok else f"Not verified: {result.message}")

    # --- list -----------------------------------------------------------------------------------------

    def _handle_list(self, options: dict[str, Any]) -> None:
        accounts = ExchangeAccount.objects.select_related("owner_user", "owner_team").order_by("pk")
        rows = [self._row(account) for account in accounts]
        if options["format"] == "json":
            self.stdout.write(json_for_terminal(json.dumps(rows, indent=2)))
            return
        if not rows:
            self.stdout.write("No accounts stored.")
            return
        columns = ("id", "label", "owner", "endpoint", "subaccount", "enabled", "status")
        table = [columns] + [tuple(self._cell(row[name]) for name in columns) for row in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())

    @staticmethod
    def _cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return printable(str(value)) or "-"

    @staticmethod
    def _row(account: ExchangeAccount) -> dict[str, Any]:
        state = account_key_status(account)
        return {
            "id": account.pk,
            "label": account.label,
            "owner": account.owner_display,
            "owner_user": account.owner_user.get_username() if account.owner_user is not None else None,
            "owner_team": account.owner_team.name if account.owner_team is not None else None,
            "endpoint": account.trade_url(),
            "subaccount": account.subaccount_id or None,
            "enabled": account.enabled,
            "status": state.code,
            "status_detail": state.detail,
        }

    # --- verify ---------------------------------------------------------------------------------------

    def _handle_verify(self, options: dict[str, Any]) -> None:
        account = find_account(options["label"], options["account_pk"])
        result = account_verify(actor=None, account=account, timeout=options["timeout"])
        if not result.ok:
            raise CommandError(f"Verification of {account.label!r} (id {account.pk}) failed: {result.message}")
        self.stdout.write(f"OK: {account.label!r} (id {account.pk}) — {result.message}")
