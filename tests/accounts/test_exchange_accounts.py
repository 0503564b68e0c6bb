"""Exchange-account services: validation, encryption on write, and the audit events of each change."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from orders.accounts import display, exchange_accounts
from orders.accounts.encryption import Destination, decrypt_secret
from orders.models import AuditEvent, ExchangeAccount
from tests.personas import PASSWORD

SECRET = "qfex_secret_service_test_8e2d4c6a"
UNREADABLE = "The stored secret can't be decrypted — re-enter it."


def _create(owner, **overrides) -> ExchangeAccount:
    values = {"actor": owner, "label": "Main", "public_key": "qfex_pub_main", "secret": SECRET, "owner_user": owner}
    return exchange_accounts.account_create(**{**values, **overrides})


def _errors(caught: pytest.ExceptionInfo[ValidationError]) -> dict[str, list[str]]:
    return caught.value.message_dict


def test_personas_can_log_in_with_the_shared_password(personas) -> None:
    assert personas.viewer.check_password(PASSWORD)
    assert not personas.inactive_user.is_active


@pytest.mark.django_db
def test_create_encrypts_the_secret_and_records_an_event(owner) -> None:
    account = _create(
        owner, endpoint="custom", custom_url="ws://127.0.0.1:8765", subaccount_id="1B4E28BA-2FA1-11D2-883F-0016D3CCA427"
    )
    account.refresh_from_db()
    assert SECRET not in account.secret_ciphertext
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == SECRET
    assert account.secret_hint == SECRET[-4:]
    assert account.subaccount_id == "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert account.trade_url() == "ws://127.0.0.1:8765"
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCOUNT_ADDED)
    assert (event.actor, event.actor_name, event.account, event.team) == (owner, owner.username, account, None)
    assert SECRET not in repr(event.detail)
    assert SECRET not in event.target


@pytest.mark.django_db
def test_short_secrets_get_no_hint_and_whitespace_is_trimmed(owner) -> None:
    account = _create(owner, secret="  short-secret \n")
    assert account.secret_hint == ""
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == "short-secret"


def test_team_account_events_carry_the_team(personas) -> None:
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCOUNT_ADDED, account=personas.team_account)
    assert event.team == personas.team
    assert event.actor == personas.team_admin


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"label": "  "}, "label"),
        ({"public_key": ""}, "public_key"),
        ({"public_key": "has space"}, "public_key"),
        ({"secret": "   "}, "secret"),
        ({"endpoint": "custom", "custom_url": ""}, "custom_url"),
        ({"endpoint": "custom", "custom_url": "https://example.test"}, "custom_url"),
        ({"endpoint": "custom", "custom_url": "ws://user:pw@127.0.0.1:1"}, "custom_url"),
        ({"endpoint": "custom", "custom_url": "ws://127.0.0.1:99999"}, "custom_url"),
        ({"endpoint": "mainnet"}, "endpoint"),
        ({"subaccount_id": "not-a-uuid"}, "subaccount_id"),
    ],
)
def test_create_validation(owner, overrides, field) -> None:
    with pytest.raises(ValidationError) as caught:
        _create(owner, **overrides)
    assert field in _errors(caught)
    assert not ExchangeAccount.objects.exists()


def test_exactly_one_owner(personas) -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        _create(personas.owner, owner_team=personas.team)
    with pytest.raises(ValidationError, match="exactly one"):
        _create(None, owner_user=None)


def test_labels_are_unique_per_owner_only(personas) -> None:
    with pytest.raises(ValidationError) as caught:
        _create(personas.owner, label="Owner personal")
    assert "label" in _errors(caught)
    with pytest.raises(ValidationError):
        _create(personas.team_admin, owner_user=None, owner_team=personas.team, label="Desk A main")
    # The same label is fine for another owner.
    _create(personas.viewer, owner_user=personas.viewer, label="Owner personal")
    _create(personas.outsider, owner_user=None, owner_team=personas.other_team, label="Desk A main")


def test_update_changes_fields_clears_verification_and_records_events(personas) -> None:
    account = personas.owner_account
    ExchangeAccount.objects.filter(pk=account.pk).update(last_verified_at=timezone.now())
    account.refresh_from_db()
    before = AuditEvent.objects.count()

    exchange_accounts.account_update(actor=personas.owner, account=account, label="Renamed")
    account.refresh_from_db()
    assert account.label == "Renamed"
    assert account.last_verified_at is not None

    exchange_accounts.account_update(
        actor=personas.owner, account=account, public_key="qfex_pub_new", enabled=False, secret="qfex_secret_new_1"
    )
    account.refresh_from_db()
    assert (account.public_key, account.enabled, account.last_verified_at) == ("qfex_pub_new", False, None)
    assert exchange_accounts.account_credentials(account).secret == "qfex_secret_new_1"

    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))[before:]
    assert actions == ["account_changed", "account_secret_changed", "account_changed", "account_disabled"]
    changed = AuditEvent.objects.filter(action="account_changed").order_by("pk").last()
    assert changed is not None
    assert changed.detail == {"changed": {"public_key": ["qfex_pub_owner_personal", "qfex_pub_new"]}}

    exchange_accounts.account_update(actor=personas.owner, account=account, enabled=True)
    latest = AuditEvent.objects.order_by("pk").last()
    assert latest is not None
    assert latest.action == "account_enabled"
    # Nothing changed → no event.
    count = AuditEvent.objects.count()
    exchange_accounts.account_update(actor=personas.owner, account=account, label="Renamed")
    assert AuditEvent.objects.count() == count


def test_update_refuses_unknown_fields_and_bad_values(personas) -> None:
    with pytest.raises(TypeError):
        exchange_accounts.account_update(actor=personas.owner, account=personas.owner_account, secret_ciphertext="x")
    with pytest.raises(ValidationError):
        exchange_accounts.account_update(
            actor=personas.owner, account=personas.owner_account, endpoint="custom", custom_url=""
        )
    personas.owner_account.refresh_from_db()
    assert personas.owner_account.endpoint == "custom"


def test_rename_to_a_taken_label_is_refused(personas) -> None:
    second = _create(personas.owner, label="Second")
    with pytest.raises(ValidationError) as caught:
        exchange_accounts.account_update(actor=personas.owner, account=second, label="Owner personal")
    assert "label" in _errors(caught)
    second.refresh_from_db()
    assert second.label == "Second"


def test_set_secret_re_encrypts_and_clears_state(personas) -> None:
    account = personas.owner_account
    ExchangeAccount.objects.filter(pk=account.pk).update(last_error=UNREADABLE)
    account.refresh_from_db()
    assert display.account_key_status(account).code == "secret_unreadable"
    old_token = account.secret_ciphertext

    exchange_accounts.account_set_secret(
        actor=personas.owner, account=account, secret="qfex_secret_replaced_1234567890"
    )
    account.refresh_from_db()
    assert account.secret_ciphertext != old_token
    assert (
        decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account))
        == "qfex_secret_replaced_1234567890"
    )
    assert account.last_error == ""
    assert account.secret_hint == "7890"
    assert display.account_key_status(account).code == "unverified"
    event = AuditEvent.objects.order_by("pk").last()
    assert event is not None
    assert event.action == "account_secret_changed"
    assert event.detail == {}


def test_delete_keeps_the_audit_trail(personas) -> None:
    account = personas.team_account
    pk = account.pk
    exchange_accounts.account_delete(actor=personas.team_admin, account=account)
    assert not ExchangeAccount.objects.filter(pk=pk).exists()
    removed = AuditEvent.objects.get(action="account_removed")
    assert removed.target == "account 'Desk A main' (team Desk A)"
    assert removed.team == personas.team
    assert removed.detail == {"account_id": pk, "label": "Desk A main"}
    # Earlier events about the account survive, unlinked.
    added = AuditEvent.objects.get(action="account_added", target="account 'Desk A main' (team Desk A)")
    assert added.account is None
