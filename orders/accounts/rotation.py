"""Key rotation: re-encrypt every stored secret with the first configured key (``rotate_encryption_keys``).

All or nothing: every row is decrypted first, and if one cannot be, nothing changes and the report
names it. The audit trail records the counts per key, never a key or a secret.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import transaction

from orders.accounts.audit import Action, audit_record
from orders.accounts.encryption import (
    DESTINATION_FIELDS,
    Destination,
    SecretUnreadable,
    configured_keys,
    decrypt_secret,
    encrypt_secret,
    token_key_id,
)
from orders.models import ExchangeAccount

UNRECOGNISED = "unrecognised"


@dataclass(frozen=True)
class UnreadableSecret:
    account_id: int
    label: str
    reason: str


@dataclass(frozen=True)
class RotationReport:
    """Outcome of ``secrets_rotate``: rows per key id before and after (after = projected on a dry run)."""

    primary_key_id: str
    configured_key_ids: tuple[str, ...]
    before: dict[str, int]
    after: dict[str, int]
    re_encrypted: int
    dry_run: bool
    unreadable: tuple[UnreadableSecret, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.unreadable

    @property
    def total(self) -> int:
        return sum(self.before.values())


def _count_by_key(tokens: list[str], key_ids: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(token_key_id(token) or UNRECOGNISED for token in tokens)
    # Every configured key is listed, so an operator sees the old key reach zero rows.
    return {**dict.fromkeys(key_ids, 0), **counts}


def secrets_rotate(*, dry_run: bool = False) -> RotationReport:
    """Re-encrypt every stored secret with the first configured key.

    Every row is decrypted first; if any cannot be, nothing is changed and the report lists them. Rows
    are locked while this runs (on databases that support it) so a concurrent write cannot be lost.
    """
    keys = configured_keys()
    primary = keys[0]
    key_ids = tuple(key.key_id for key in keys)
    with transaction.atomic():
        rows = list(
            ExchangeAccount.objects.select_for_update()
            .order_by("pk")
            .values_list("pk", "label", "binding", "secret_ciphertext", *DESTINATION_FIELDS)
        )
        before = _count_by_key([row[3] for row in rows], key_ids)
        unreadable: list[UnreadableSecret] = []
        new_tokens: dict[int, str] = {}
        for pk, label, binding, token, *where in rows:
            destination = Destination.of(SimpleNamespace(**dict(zip(DESTINATION_FIELDS, where, strict=True))))
            try:
                plaintext = decrypt_secret(token, binding, destination)
            except SecretUnreadable as exc:
                unreadable.append(UnreadableSecret(pk, label, exc.reason))
                continue
            if token_key_id(token) != primary.key_id:
                new_tokens[pk] = encrypt_secret(plaintext, binding, destination)
            del plaintext
        if unreadable:
            return RotationReport(primary.key_id, key_ids, before, before, 0, dry_run, tuple(unreadable))
        untouched = [row[3] for row in rows if row[0] not in new_tokens]
        after = _count_by_key(untouched + list(new_tokens.values()), key_ids)
        if not dry_run:
            for pk, token in new_tokens.items():
                ExchangeAccount.objects.filter(pk=pk).update(secret_ciphertext=token)
            audit_record(
                actor=None,
                action=Action.SECRETS_ROTATED,
                target="all stored QFEX secrets",
                detail={
                    "primary_key_id": primary.key_id,
                    "rows_per_key_before": before,
                    "rows_per_key_after": after,
                    "re_encrypted": len(new_tokens),
                },
            )
    return RotationReport(primary.key_id, key_ids, before, after, len(new_tokens), dry_run)
