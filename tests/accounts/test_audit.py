"""The audit trail's writes: append-only, and never a secret in an event."""

from __future__ import annotations

from typing import Any

import pytest

from orders.accounts import audit, exchange_accounts, teams
from orders.models import AuditEvent, Membership


def test_audit_trail_is_append_only(personas) -> None:
    snapshot = list(AuditEvent.objects.order_by("pk").values())
    account = personas.owner_account
    account_pk = account.pk
    exchange_accounts.account_update(actor=personas.owner, account=account, label="X")
    exchange_accounts.account_set_secret(actor=personas.owner, account=account, secret="qfex_secret_other_value_1111")
    exchange_accounts.account_delete(actor=personas.owner, account=account)
    membership = Membership.objects.get(user=personas.viewer)
    teams.membership_change_role(actor=personas.team_admin, membership=membership, role="trader")
    teams.membership_remove(actor=personas.team_admin, membership=membership)
    after = list(AuditEvent.objects.order_by("pk").values())
    assert len(after) == len(snapshot) + 5
    # Earlier events are untouched, except the account link the database clears when an account goes.
    for old, new in zip(snapshot, after, strict=False):
        expected: dict[str, Any] = dict(old)
        if expected["account_id"] == account_pk:
            expected["account_id"] = None
        assert new == expected


def test_audit_record_refuses_secret_entries_and_unknown_actions(owner) -> None:
    with pytest.raises(ValueError, match="secret"):
        audit.audit_record(actor=owner, action="account_changed", target="x", detail={"nested": [{"secret": "s"}]})
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.audit_record(actor=owner, action="made_up", target="x")
