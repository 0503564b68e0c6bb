"""The access matrix: every persona against a personal account, their team's account and another team's."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import Http404

from orders.accounts import access, exchange_accounts, teams
from orders.models import AuditEvent, ExchangeAccount, Membership

ACCOUNTS = ("owner_account", "team_account", "other_team_account")
# persona → (accounts visible, accounts managed)
MATRIX = {
    "owner": ({"owner_account"}, {"owner_account"}),
    "team_admin": ({"team_account"}, {"team_account"}),
    "trader": ({"team_account"}, set()),
    "viewer": ({"team_account"}, set()),
    "outsider": ({"other_team_account"}, {"other_team_account"}),
    "anonymous": (set(), set()),
    "inactive_user": (set(), set()),
    "superuser": (set(ACCOUNTS), set(ACCOUNTS)),
}


def _user(personas: SimpleNamespace, name: str):
    return AnonymousUser() if name == "anonymous" else getattr(personas, name)


def _labels(queryset) -> set[str]:
    return {name for name in ACCOUNTS if queryset.filter(label=_LABELS[name]).exists()}


_LABELS = {"owner_account": "Owner personal", "team_account": "Desk A main", "other_team_account": "Desk B main"}


@pytest.mark.parametrize("persona", MATRIX)
def test_visible_and_managed_sets(personas, persona) -> None:
    user = _user(personas, persona)
    visible, managed = MATRIX[persona]
    assert _labels(access.accounts_visible_to(user)) == visible
    assert _labels(access.accounts_managed_by(user)) == managed
    # No duplicates from the membership join.
    assert access.accounts_visible_to(user).count() == len(visible)


@pytest.mark.parametrize("persona", MATRIX)
@pytest.mark.parametrize("account_name", ACCOUNTS)
def test_get_visible_and_managed_account(personas, persona, account_name) -> None:
    user = _user(personas, persona)
    account: ExchangeAccount = getattr(personas, account_name)
    visible, managed = MATRIX[persona]

    if account_name in visible:
        assert access.get_visible_account(user, account.pk) == account
        assert access.can_view_account(user, account.pk) is (persona != "anonymous")
    else:
        with pytest.raises(Http404) as hidden:
            access.get_visible_account(user, account.pk)
        with pytest.raises(Http404) as missing:
            access.get_visible_account(user, 999_999)
        assert str(hidden.value) == str(missing.value)  # indistinguishable from a missing id
        assert access.can_view_account(user, account.pk) is False

    if account_name in managed:
        assert access.get_managed_account(user, account.pk) == account
    elif account_name in visible:
        with pytest.raises(PermissionDenied):
            access.get_managed_account(user, account.pk)
    else:
        with pytest.raises(Http404):
            access.get_managed_account(user, account.pk)


@pytest.mark.parametrize("bad_pk", ["abc", "", None, "1 OR 1=1", -1, 0, "01"])
def test_junk_ids_are_not_found(personas, bad_pk) -> None:
    with pytest.raises(Http404):
        access.get_visible_account(personas.superuser, bad_pk)
    assert access.can_view_account(personas.superuser, bad_pk) is False


def test_can_view_account_rereads_the_user(personas) -> None:
    """The consumer holds a user object from connect time; deactivation must still end access."""
    stale_viewer = personas.viewer
    account = personas.team_account
    assert access.can_view_account(stale_viewer, account.pk)
    type(stale_viewer).objects.filter(pk=stale_viewer.pk).update(is_active=False)
    assert stale_viewer.is_active  # the object in hand still says active
    assert access.can_view_account(stale_viewer, account.pk) is False


def test_removal_from_the_team_ends_access(personas) -> None:
    membership = Membership.objects.get(user=personas.trader, team=personas.team)
    teams.membership_remove(actor=personas.team_admin, membership=membership)
    assert access.can_view_account(personas.trader, personas.team_account.pk) is False
    with pytest.raises(Http404):
        access.get_visible_account(personas.trader, personas.team_account.pk)


def test_demotion_removes_management(personas) -> None:
    trader = Membership.objects.get(user=personas.trader, team=personas.team)
    teams.membership_change_role(actor=personas.superuser, membership=trader, role=Membership.Role.ADMIN)
    membership = Membership.objects.get(user=personas.team_admin, team=personas.team)
    teams.membership_change_role(actor=personas.superuser, membership=membership, role=Membership.Role.VIEWER)
    assert access.get_visible_account(personas.team_admin, personas.team_account.pk)
    with pytest.raises(PermissionDenied):
        access.get_managed_account(personas.team_admin, personas.team_account.pk)


def test_teams_visible_and_managed(personas) -> None:
    desk_a, desk_b = personas.team, personas.other_team
    assert set(access.teams_visible_to(personas.viewer)) == {desk_a}
    assert set(access.teams_managed_by(personas.viewer)) == set()
    assert set(access.teams_managed_by(personas.team_admin)) == {desk_a}
    assert set(access.teams_visible_to(personas.owner)) == set()
    assert set(access.teams_visible_to(personas.superuser)) == {desk_a, desk_b}
    assert set(access.teams_visible_to(AnonymousUser())) == set()
    assert set(access.teams_visible_to(personas.inactive_user)) == set()
    assert access.can_manage_team(personas.team_admin, desk_a)
    assert not access.can_manage_team(personas.team_admin, desk_b)
    assert not access.can_manage_team(personas.trader, desk_a)
    assert not access.can_manage_team(personas.outsider, desk_a)
    assert access.can_manage_team(personas.superuser, desk_b)
    assert not access.can_manage_team(personas.inactive_user, desk_a)


def _targets(user) -> set[str]:
    return set(access.audit_events_visible_to(user).values_list("target", flat=True))


def test_audit_events_visible_to(personas) -> None:
    admin = personas.team_admin
    own = exchange_accounts.account_create(
        actor=admin,
        label="Adam personal",
        public_key="qfex_pub_adam",
        secret="qfex_secret_adam_0123456789",
        owner_user=admin,
    )
    exchange_accounts.account_update(actor=admin, account=own, enabled=False)
    all_targets = set(AuditEvent.objects.values_list("target", flat=True))

    assert _targets(personas.superuser) == all_targets
    admin_sees = _targets(admin)
    assert "team Desk A" in admin_sees
    assert "account 'Desk A main' (team Desk A)" in admin_sees
    assert "tina_trader in team Desk A" in admin_sees
    assert f"account 'Adam personal' (user {admin})" in admin_sees
    assert not any("Desk B" in target for target in admin_sees)
    assert not any("Owner personal" in target for target in admin_sees)

    outsider_sees = _targets(personas.outsider)
    assert outsider_sees
    assert all("Desk B" in target for target in outsider_sees)

    for name in ("owner", "trader", "viewer", "inactive_user"):
        assert _targets(getattr(personas, name)) == set(), name
    assert _targets(AnonymousUser()) == set()


# persona → (a team admin, may read the audit trail); the second factor is owed by the second group too.
ADMIN_MATRIX = {
    "owner": (False, False),
    "team_admin": (True, True),
    "trader": (False, False),
    "viewer": (False, False),
    "outsider": (True, True),  # the admin of Desk B
    "anonymous": (False, False),
    "inactive_user": (False, False),  # an admin of Desk A whose sign-in is deactivated
    "superuser": (False, True),
}


@pytest.mark.parametrize("persona", ADMIN_MATRIX)
def test_one_answer_to_who_is_a_team_admin_and_reads_the_audit_trail(personas, persona, settings) -> None:
    user = _user(personas, persona)
    team_admin, reads_audit = ADMIN_MATRIX[persona]
    assert access.is_team_admin(user) is team_admin
    assert access.may_read_audit(user) is reads_audit
    assert access.audit_events_visible_to(user).exists() is reads_audit  # every persona here has events
    settings.QFEXDASH_REQUIRE_2FA = True
    assert access.requires_2fa(user) is reads_audit
    settings.QFEXDASH_REQUIRE_2FA = False
    assert access.requires_2fa(user) is False
