"""Teams and memberships: each change audited, and a team always keeps an admin who can sign in (S31)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from orders.accounts import teams
from orders.models import AuditEvent, ExchangeAccount, Membership


def test_team_and_membership_services(personas) -> None:
    with pytest.raises(ValidationError):
        teams.team_create(actor=personas.superuser, name="desk a")  # names are unique regardless of case
    team = teams.team_create(actor=personas.superuser, name="Desk C")
    membership = teams.membership_add(actor=personas.superuser, team=team, user=personas.owner, role="viewer")
    with pytest.raises(ValidationError):
        teams.membership_add(actor=personas.superuser, team=team, user=personas.owner, role="admin")
    with pytest.raises(ValidationError):
        teams.membership_change_role(actor=personas.superuser, membership=membership, role="owner")
    teams.membership_change_role(actor=personas.superuser, membership=membership, role="admin")
    teams.membership_add(actor=personas.superuser, team=team, user=personas.viewer, role="admin")
    teams.membership_remove(actor=personas.superuser, membership=membership)
    events = list(AuditEvent.objects.filter(team=team).order_by("pk").values_list("action", "detail"))
    assert events == [
        ("team_added", {}),
        ("member_added", {"user": "olivia_owner", "role": "viewer"}),
        ("member_role_changed", {"user": "olivia_owner", "from": "viewer", "to": "admin"}),
        ("member_added", {"user": "victor_viewer", "role": "admin"}),
        ("member_removed", {"user": "olivia_owner", "role": "admin"}),
    ]
    assert all(event.actor == personas.superuser for event in AuditEvent.objects.filter(team=team))


def test_team_delete_records_every_removal(personas) -> None:
    team_name = personas.team.name
    teams.team_delete(actor=personas.superuser, team=personas.team)
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
        lambda: teams.membership_change_role(actor=personas.team_admin, membership=admin, role="viewer"),
        lambda: teams.membership_remove(actor=personas.team_admin, membership=admin),
    ):
        with pytest.raises(ValidationError, match="must keep at least one admin") as refused:
            change()
        assert "make someone else an admin" in str(refused.value)
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert not AuditEvent.objects.filter(action__in=["member_role_changed", "member_removed"], team=team).exists()

    # With another active admin, either may go (yourself included).
    trader = Membership.objects.select_related("user", "team").get(team=team, user=personas.trader)
    teams.membership_change_role(actor=personas.team_admin, membership=trader, role="admin")
    teams.membership_change_role(actor=personas.team_admin, membership=admin, role="viewer")
    with pytest.raises(ValidationError):
        teams.membership_remove(actor=personas.trader, membership=trader)
    teams.team_delete(actor=personas.superuser, team=team)  # the team going takes its last admin with it
