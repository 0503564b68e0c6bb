"""S10: key rotation keeps every row readable at every step; the old key goes only at zero rows."""

from __future__ import annotations

import base64
import hashlib
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.accounts import display, rotation
from orders.accounts.encryption import Destination, decrypt_secret, token_key_id
from orders.models import AuditEvent, ExchangeAccount
from tests.accounts.conftest import KEY_NEW, KEY_OLD, KEY_OTHER
from tests.personas import KEYS

OLD_ID = hashlib.sha256(base64.urlsafe_b64decode(KEY_OLD)).hexdigest()[:12]
NEW_ID = hashlib.sha256(base64.urlsafe_b64decode(KEY_NEW)).hexdigest()[:12]


def _rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out)
    return out.getvalue()


def _tokens() -> dict[int, str]:
    return dict(ExchangeAccount.objects.values_list("pk", "secret_ciphertext"))


def _all_readable() -> None:
    for account in ExchangeAccount.objects.all():
        assert (
            decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account))
            == KEYS[account.label][1]
        )
        assert display.account_key_status(account).code != "secret_unreadable"


def test_rotation_keeps_every_row_readable_at_every_step(personas, use_keys) -> None:
    _all_readable()  # step 0: old key only

    use_keys(KEY_NEW, KEY_OLD)  # step 1: new key first, old key still listed
    _all_readable()

    before = _tokens()
    dry = _rotate("--dry-run")
    assert _tokens() == before  # a dry run changes nothing
    assert f"Before: key {NEW_ID} (first key, encrypts): 0 rows; key {OLD_ID}: 3 rows" in dry
    assert f"After (projected): key {NEW_ID} (first key, encrypts): 3 rows; key {OLD_ID}: 0 rows" in dry
    assert "Dry run: 3 row(s) would be re-encrypted" in dry
    assert not AuditEvent.objects.filter(action="secrets_rotated").exists()

    report = _rotate()  # step 2: rotate
    assert f"After: key {NEW_ID} (first key, encrypts): 3 rows; key {OLD_ID}: 0 rows" in report
    assert "Re-encrypted 3 row(s)" in report
    assert f"No row uses key(s) {OLD_ID} any more" in report
    after = _tokens()
    assert set(after) == set(before)
    assert all(after[pk] != before[pk] for pk in before)
    assert {token_key_id(token) for token in after.values()} == {NEW_ID}
    _all_readable()

    use_keys(KEY_NEW)  # step 3: the old key is removed
    _all_readable()

    again = _rotate()  # nothing left to do
    assert "Re-encrypted 0 row(s)" in again
    assert _tokens() == after


def test_rotation_writes_one_audit_event_with_counts_only(personas, use_keys) -> None:
    use_keys(KEY_NEW, KEY_OLD)
    _rotate()
    event = AuditEvent.objects.get(action="secrets_rotated")
    assert event.actor is None
    assert event.account is None
    assert event.detail == {
        "primary_key_id": NEW_ID,
        "rows_per_key_before": {NEW_ID: 0, OLD_ID: 3},
        "rows_per_key_after": {NEW_ID: 3, OLD_ID: 0},
        "re_encrypted": 3,
    }


def test_dropping_the_old_key_before_rotating_is_refused_and_changes_nothing(personas, use_keys) -> None:
    use_keys(KEY_NEW)
    before = _tokens()
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("rotate_encryption_keys", stdout=out)
    message = str(caught.value)
    assert "3 stored secret(s) cannot be decrypted" in message
    assert "nothing was changed" in message
    assert "\n" not in message
    assert f"key {OLD_ID} (not configured): 3 rows" in out.getvalue()
    assert _tokens() == before
    assert not AuditEvent.objects.filter(action="secrets_rotated").exists()
    # Putting the old key back (after the new one) makes rotation possible again.
    use_keys(KEY_NEW, KEY_OLD)
    assert "Re-encrypted 3 row(s)" in _rotate()
    use_keys(KEY_NEW)
    _all_readable()


def test_one_unreadable_row_blocks_the_whole_rotation(personas, use_keys) -> None:
    # S11 at the database level: a ciphertext copied from another row.
    ExchangeAccount.objects.filter(pk=personas.team_account.pk).update(
        secret_ciphertext=personas.owner_account.secret_ciphertext
    )
    use_keys(KEY_NEW, KEY_OLD)
    before = _tokens()
    with pytest.raises(CommandError, match=rf"account ids {personas.team_account.pk}\b"):
        _rotate()
    assert _tokens() == before
    report = rotation.secrets_rotate(dry_run=True)
    assert not report.ok
    assert [row.account_id for row in report.unreadable] == [personas.team_account.pk]


def test_rotation_with_no_rows_and_missing_keys(use_keys, db) -> None:
    assert "Stored secrets: 0" in _rotate()
    use_keys()
    with pytest.raises(CommandError, match="QFEXDASH_ENCRYPTION_KEYS is not set"):
        _rotate()


def test_rotation_report_marks_rows_of_unlisted_keys(personas, use_keys) -> None:
    use_keys(KEY_OTHER, KEY_NEW, KEY_OLD)
    report = rotation.secrets_rotate(dry_run=True)
    assert report.ok
    assert report.total == 3
    assert report.re_encrypted == 3
    assert list(report.before) == [report.primary_key_id, NEW_ID, OLD_ID]
