"""Re-encrypt every stored QFEX secret with the first key in QFEXDASH_ENCRYPTION_KEYS.

Rotation, with every row readable at every step:

1. put the new key first in QFEXDASH_ENCRYPTION_KEYS, keeping the old key after it, and restart;
2. run this command (``--dry-run`` first to see what it would do);
3. once the report shows zero rows for the old key, remove the old key and restart.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from orders.accounts.encryption import EncryptionKeyError
from orders.accounts.rotation import RotationReport, secrets_rotate
from orders.management.terminal import TerminalSafeCommand


def _counts_line(report: RotationReport, counts: dict[str, int]) -> str:
    parts = []
    for key_id, count in counts.items():
        if key_id == report.primary_key_id:
            role = " (first key, encrypts)"
        elif key_id in report.configured_key_ids:
            role = ""
        else:
            role = " (not configured)"
        parts.append(f"key {key_id}{role}: {count} row{'s' if count != 1 else ''}")
    return "; ".join(parts) or "no keys"


class Command(TerminalSafeCommand):
    help = "Re-encrypt every stored QFEX secret with the first key of QFEXDASH_ENCRYPTION_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; change nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = secrets_rotate(dry_run=options["dry_run"])
        except EncryptionKeyError as exc:
            raise CommandError(str(exc)) from None

        self.stdout.write(f"Stored secrets: {report.total}")
        self.stdout.write(f"Before: {_counts_line(report, report.before)}")
        if not report.ok:
            ids = ", ".join(str(row.account_id) for row in report.unreadable)
            raise CommandError(
                f"{len(report.unreadable)} stored secret(s) cannot be decrypted with the configured keys "
                f"(account ids {ids}); nothing was changed. Put back the key that encrypted them (after the "
                "new first key), or re-enter those secrets, then run this again."
            )
        if report.dry_run:
            self.stdout.write(f"After (projected): {_counts_line(report, report.after)}")
            self.stdout.write(f"Dry run: {report.re_encrypted} row(s) would be re-encrypted; nothing was changed.")
            return
        self.stdout.write(f"After: {_counts_line(report, report.after)}")
        self.stdout.write(f"Re-encrypted {report.re_encrypted} row(s) with key {report.primary_key_id}.")
        unused = [key_id for key_id in report.configured_key_ids[1:] if report.after.get(key_id, 0) == 0]
        if unused:
            self.stdout.write(
                f"No row uses key(s) {', '.join(unused)} any more; they can be removed from QFEXDASH_ENCRYPTION_KEYS."
            )
