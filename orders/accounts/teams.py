"""Teams and memberships: create and delete a team, add, re-role and remove a member, each audited.

The last-admin rule lives here: a team always keeps an active admin who can sign in (S31), so demoting
or removing the last one is refused with what to do instead. Permissions are the callers' (see
:mod:`orders.accounts.access`).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orders.accounts import rules
from orders.accounts.audit import Action, audit_record
from orders.accounts.audit_text import isolated
from orders.accounts.exchange_accounts import account_delete
from orders.accounts.people import User
from orders.models import Membership, Team


def team_create(*, actor: User | None, name: str) -> Team:
    name = rules.under_field("name", rules.clean_team_name, name)
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name)
            audit_record(actor=actor, action=Action.TEAM_ADDED, target=f"team {isolated(team.name)}", team=team)
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise ValidationError({"name": rules.team_name_taken(name)}) from None
    return team


def team_delete(*, actor: User | None, team: Team) -> None:
    """Delete a team, its accounts and memberships, each removal recorded before the team's own event."""
    with transaction.atomic():
        for account in list(team.exchange_accounts.all()):
            account_delete(actor=actor, account=account)
        for membership in list(team.memberships.select_related("user")):
            membership_remove(actor=actor, membership=membership, team_deleted=True)
        audit_record(actor=actor, action=Action.TEAM_REMOVED, target=f"team {isolated(team.name)}", team=team)
        team.delete()


LAST_ADMIN_MESSAGE = (
    "{team} must keep at least one admin who can sign in: make someone else an admin of the team first, "
    "then change or remove the last one (you too, if it is you)."
)


def _refuse_losing_last_admin(membership: Membership) -> None:
    """Refuse to demote or remove the team's last active admin: the team would be left unmanageable.

    Every admin row of the team is locked, in one order (its own included), so two admins demoting each other
    at once queue up instead of deadlocking: the second sees the first's change and is refused. PostgreSQL locks
    the rows; SQLite takes its write lock when the transaction begins (``transaction_mode`` in settings).
    """
    if membership.role != Membership.Role.ADMIN:
        return
    admins = (
        Membership.objects.select_for_update(of=("self",))
        .filter(team_id=membership.team_id, role=Membership.Role.ADMIN)
        .order_by("pk")
        .values_list("pk", "user__is_active")
    )
    if not any(pk != membership.pk and active for pk, active in admins):
        raise ValidationError({"role": LAST_ADMIN_MESSAGE.format(team=membership.team.name)}, code="last_admin")


def _member_target(user: User, team: Team) -> str:
    return f"{isolated(user.get_username())} in team {isolated(team.name)}"


def membership_add(*, actor: User | None, team: Team, user: User, role: str) -> Membership:
    role = rules.under_field("role", rules.clean_role, role)
    rules.under_field("user", rules.check_not_member, team, user)
    try:
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=user, role=role)
            audit_record(
                actor=actor,
                action=Action.MEMBER_ADDED,
                target=_member_target(user, team),
                team=team,
                detail={"user": user.get_username(), "role": role},
            )
    except IntegrityError:
        raise ValidationError({"user": rules.already_member(team, user)}) from None
    return membership


def membership_change_role(*, actor: User | None, membership: Membership, role: str) -> Membership:
    """Change a member's role; demoting the team's last active admin is refused (``ValidationError``)."""
    role = rules.under_field("role", rules.clean_role, role)
    old_role = membership.role
    if role == old_role:
        return membership
    with transaction.atomic():
        if role != Membership.Role.ADMIN:
            _refuse_losing_last_admin(membership)
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action=Action.MEMBER_ROLE_CHANGED,
            target=_member_target(membership.user, membership.team),
            team=membership.team,
            detail={"user": membership.user.get_username(), "from": old_role, "to": role},
        )
    return membership


def membership_remove(*, actor: User | None, membership: Membership, team_deleted: bool = False) -> None:
    """Remove a member; removing the team's last active admin is refused unless the team itself goes."""
    with transaction.atomic():
        if not team_deleted:
            _refuse_losing_last_admin(membership)
        audit_record(
            actor=actor,
            action=Action.MEMBER_REMOVED,
            target=_member_target(membership.user, membership.team),
            team=membership.team,
            detail={"user": membership.user.get_username(), "role": membership.role},
        )
        membership.delete()
