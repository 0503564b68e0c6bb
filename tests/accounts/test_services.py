"""Service functions: validation, encryption on write, audit events, and the account state (S9)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from orders.accounts import services
from orders.accounts.encryption import Destination, SecretUnreadable, decrypt_secret, token_key_id
from orders.models import AuditEvent, ExchangeAccount, Membership
from tests.accounts.conftest import KEY_NEW, KEY_OTHER
from tests.personas import KEYS, PASSWORD

SECRET = "qfex_secret_service_test_8e2d4c6a"
UNREADABLE = "The stored secret can't be decrypted — re-enter it."


def _create(owner, **overrides) -> ExchangeAccount:
    values = {"actor": owner, "label": "Main", "public_key": "qfex_pub_main", "secret": SECRET, "owner_user": owner}
    return services.account_create(**{**values, **overrides})


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

    services.account_update(actor=personas.owner, account=account, label="Renamed")
    account.refresh_from_db()
    assert account.label == "Renamed"
    assert account.last_verified_at is not None

    services.account_update(
        actor=personas.owner, account=account, public_key="qfex_pub_new", enabled=False, secret="qfex_secret_new_1"
    )
    account.refresh_from_db()
    assert (account.public_key, account.enabled, account.last_verified_at) == ("qfex_pub_new", False, None)
    assert services.account_credentials(account).secret == "qfex_secret_new_1"

    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))[before:]
    assert actions == ["account_changed", "account_secret_changed", "account_changed", "account_disabled"]
    changed = AuditEvent.objects.filter(action="account_changed").order_by("pk").last()
    assert changed is not None
    assert changed.detail == {"changed": {"public_key": ["qfex_pub_owner_personal", "qfex_pub_new"]}}

    services.account_update(actor=personas.owner, account=account, enabled=True)
    latest = AuditEvent.objects.order_by("pk").last()
    assert latest is not None
    assert latest.action == "account_enabled"
    # Nothing changed → no event.
    count = AuditEvent.objects.count()
    services.account_update(actor=personas.owner, account=account, label="Renamed")
    assert AuditEvent.objects.count() == count


def test_update_refuses_unknown_fields_and_bad_values(personas) -> None:
    with pytest.raises(TypeError):
        services.account_update(actor=personas.owner, account=personas.owner_account, secret_ciphertext="x")
    with pytest.raises(ValidationError):
        services.account_update(actor=personas.owner, account=personas.owner_account, endpoint="custom", custom_url="")
    personas.owner_account.refresh_from_db()
    assert personas.owner_account.endpoint == "custom"


def test_rename_to_a_taken_label_is_refused(personas) -> None:
    second = _create(personas.owner, label="Second")
    with pytest.raises(ValidationError) as caught:
        services.account_update(actor=personas.owner, account=second, label="Owner personal")
    assert "label" in _errors(caught)
    second.refresh_from_db()
    assert second.label == "Second"


def test_set_secret_re_encrypts_and_clears_state(personas) -> None:
    account = personas.owner_account
    ExchangeAccount.objects.filter(pk=account.pk).update(last_error=UNREADABLE)
    account.refresh_from_db()
    assert services.account_state(account).code == "secret_unreadable"
    old_token = account.secret_ciphertext

    services.account_set_secret(actor=personas.owner, account=account, secret="qfex_secret_replaced_1234567890")
    account.refresh_from_db()
    assert account.secret_ciphertext != old_token
    assert (
        decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account))
        == "qfex_secret_replaced_1234567890"
    )
    assert account.last_error == ""
    assert account.secret_hint == "7890"
    assert services.account_state(account).code == "unverified"
    event = AuditEvent.objects.order_by("pk").last()
    assert event is not None
    assert event.action == "account_secret_changed"
    assert event.detail == {}


def test_delete_keeps_the_audit_trail(personas) -> None:
    account = personas.team_account
    pk = account.pk
    services.account_delete(actor=personas.team_admin, account=account)
    assert not ExchangeAccount.objects.filter(pk=pk).exists()
    removed = AuditEvent.objects.get(action="account_removed")
    assert removed.target == "account 'Desk A main' (team Desk A)"
    assert removed.team == personas.team
    assert removed.detail == {"account_id": pk, "label": "Desk A main"}
    # Earlier events about the account survive, unlinked.
    added = AuditEvent.objects.get(action="account_added", target="account 'Desk A main' (team Desk A)")
    assert added.account is None


def test_audit_trail_is_append_only(personas) -> None:
    snapshot = list(AuditEvent.objects.order_by("pk").values())
    account = personas.owner_account
    account_pk = account.pk
    services.account_update(actor=personas.owner, account=account, label="X")
    services.account_set_secret(actor=personas.owner, account=account, secret="qfex_secret_other_value_1111")
    services.account_delete(actor=personas.owner, account=account)
    membership = Membership.objects.get(user=personas.viewer)
    services.membership_change_role(actor=personas.team_admin, membership=membership, role="trader")
    services.membership_remove(actor=personas.team_admin, membership=membership)
    after = list(AuditEvent.objects.order_by("pk").values())
    assert len(after) == len(snapshot) + 5
    # Earlier events are untouched, except the account link the database clears when an account goes.
    for old, new in zip(snapshot, after, strict=False):
        expected: dict[str, Any] = dict(old)
        if old["account_id"] == account_pk:
            expected["account_id"] = None
        assert new == expected


def test_audit_record_refuses_secret_entries_and_unknown_actions(owner) -> None:
    with pytest.raises(ValueError, match="secret"):
        services.audit_record(actor=owner, action="account_changed", target="x", detail={"nested": [{"secret": "s"}]})
    with pytest.raises(ValueError, match="unknown audit action"):
        services.audit_record(actor=owner, action="made_up", target="x")


def test_team_and_membership_services(personas) -> None:
    with pytest.raises(ValidationError):
        services.team_create(actor=personas.superuser, name="desk a")  # names are unique regardless of case
    team = services.team_create(actor=personas.superuser, name="Desk C")
    membership = services.membership_add(actor=personas.superuser, team=team, user=personas.owner, role="viewer")
    with pytest.raises(ValidationError):
        services.membership_add(actor=personas.superuser, team=team, user=personas.owner, role="admin")
    with pytest.raises(ValidationError):
        services.membership_change_role(actor=personas.superuser, membership=membership, role="owner")
    services.membership_change_role(actor=personas.superuser, membership=membership, role="admin")
    services.membership_add(actor=personas.superuser, team=team, user=personas.viewer, role="admin")
    services.membership_remove(actor=personas.superuser, membership=membership)
    events = list(AuditEvent.objects.filter(team=team).order_by("pk").values_list("action", "detail"))
    assert events == [
        ("team_added", {}),
        ("member_added", {"user": "olivia_owner", "role": "viewer"}),
        ("member_role_changed", {"user": "olivia_owner", "from": "viewer", "to": "admin"}),
        ("member_added", {"user": "victor_viewer", "role": "admin"}),
        ("member_removed", {"user": "olivia_owner", "role": "admin"}),
    ]
    assert all(event.actor == personas.superuser for event in AuditEvent.objects.filter(team=team))


# --- account_state (S9) ---------------------------------------------------------------------------


def test_state_codes(personas) -> None:
    account = personas.owner_account
    assert services.account_state(account).code == "unverified"
    account.last_verified_at = timezone.now()
    assert services.account_state(account).code == "verified"
    account.last_error = "QFEX rejected the API key."
    state = services.account_state(account)
    assert (state.code, state.detail) == ("error", "QFEX rejected the API key.")
    account.enabled = False
    assert services.account_state(account).code == "disabled"


def test_wrong_key_gives_a_clear_state_not_an_exception(personas, use_keys) -> None:
    use_keys(KEY_OTHER)  # the key that encrypted the personas' secrets is gone
    for account in (personas.owner_account, personas.team_account):
        state = services.account_state(account)
        assert (state.code, state.detail) == ("secret_unreadable", UNREADABLE)
        with pytest.raises(SecretUnreadable):
            services.account_credentials(account)


def test_state_never_raises(personas, use_keys) -> None:
    account = personas.owner_account
    account.secret_ciphertext = "garbage"
    assert services.account_state(account).code == "secret_unreadable"
    use_keys()  # no keys at all, and no key file in the test state folder
    state = services.account_state(personas.team_account)
    assert state.code == "secret_unreadable"
    assert "QFEXDASH_ENCRYPTION_KEYS" in state.detail


def test_state_does_not_need_the_secret_decrypted(personas, use_keys) -> None:
    """Listing accounts reads only the key id: a valid configuration with the key listed is "readable"."""
    use_keys(KEY_NEW, "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM=")
    assert token_key_id(personas.owner_account.secret_ciphertext) != token_key_id(
        services.encrypt_secret("x", personas.owner_account.binding, Destination.of(personas.owner_account))
    )
    assert services.account_state(personas.owner_account).code == "unverified"
    assert KEYS["Owner personal"][1] not in repr(services.account_state(personas.owner_account))


def test_team_delete_records_every_removal(personas) -> None:
    team_name = personas.team.name
    services.team_delete(actor=personas.superuser, team=personas.team)
    assert not ExchangeAccount.objects.filter(label="Desk A main").exists()
    assert not Membership.objects.filter(team__name=team_name).exists()
    removed = list(
        AuditEvent.objects.filter(action__in=["account_removed", "member_removed", "team_removed"])
        .order_by("pk")
        .values_list("action", "target")
    )
    assert removed[0] == ("account_removed", "account 'Desk A main' (team Desk A)")
    assert removed[-1] == ("team_removed", "team Desk A")
    assert sum(1 for action, _ in removed if action == "member_removed") == 4


def test_a_team_always_keeps_an_active_admin(personas) -> None:
    """Demoting or removing the last admin who can sign in is refused, with what to do; the team itself may go."""
    team = personas.team  # admins: team_admin, and ingrid_inactive (deactivated: she cannot manage it)
    admin = Membership.objects.select_related("user", "team").get(team=team, user=personas.team_admin)
    for change in (
        lambda: services.membership_change_role(actor=personas.team_admin, membership=admin, role="viewer"),
        lambda: services.membership_remove(actor=personas.team_admin, membership=admin),
    ):
        with pytest.raises(ValidationError, match="must keep at least one admin") as refused:
            change()
        assert "make someone else an admin" in str(refused.value)
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert not AuditEvent.objects.filter(action__in=["member_role_changed", "member_removed"], team=team).exists()

    # With another active admin, either may go (yourself included).
    trader = Membership.objects.select_related("user", "team").get(team=team, user=personas.trader)
    services.membership_change_role(actor=personas.team_admin, membership=trader, role="admin")
    services.membership_change_role(actor=personas.team_admin, membership=admin, role="viewer")
    with pytest.raises(ValidationError):
        services.membership_remove(actor=personas.trader, membership=trader)
    services.team_delete(actor=personas.superuser, team=team)  # the team going takes its last admin with it
