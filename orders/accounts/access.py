"""The one place that answers "who may see, and who may manage, which exchange account?".

Views, commands, the admin and the WebSocket consumer all go through these functions. Rules:

- a user sees their own personal accounts and the accounts of every team they belong to (any role);
- a user manages their own personal accounts and the accounts of teams where they are an admin;
- superusers see and manage everything; anonymous and inactive users see nothing;
- a team admin is a person with the admin role in at least one team (:func:`is_team_admin`); superusers and
  team admins read the audit trail (:func:`may_read_audit`) and must sign in with a second factor when
  ``QFEXDASH_REQUIRE_2FA`` is on (:func:`requires_2fa`, :func:`second_factor_done`: pages and live sockets
  alike ask here, so a session with the password alone opens neither); a session that gave its second factor
  with a device that has since been removed counts as signed out (S35, :func:`device_still_there`).

Outsiders get ``Http404`` exactly as for an id that does not exist, so they learn nothing; a team
member whose role may not act gets ``PermissionDenied``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django_otp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from orders.accounts.people import User, Visitor
from orders.models import AuditEvent, ExchangeAccount, Membership, Team

if TYPE_CHECKING:
    from typing_extensions import TypeIs  # typing.TypeIs from Python 3.13; annotations only

__all__ = [
    "accounts_managed_by",
    "accounts_visible_to",
    "audit_events_visible_to",
    "can_manage_team",
    "can_view_account",
    "device_still_there",
    "get_managed_account",
    "get_visible_account",
    "is_team_admin",
    "may_read_audit",
    "requires_2fa",
    "second_factor_done",
    "second_factor_ok",
    "teams_managed_by",
    "teams_visible_to",
]


def _is_active(user: Visitor | None) -> TypeIs[User]:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _team_ids(user: User, *, admin_only: bool) -> QuerySet[Membership, Any]:
    memberships = Membership.objects.filter(user=user)
    if admin_only:
        memberships = memberships.filter(role=Membership.Role.ADMIN)
    return memberships.values("team_id")


def _accounts() -> QuerySet[ExchangeAccount]:
    return ExchangeAccount.objects.select_related("owner_user", "owner_team")


def accounts_visible_to(user: Visitor | None) -> QuerySet[ExchangeAccount]:
    """Own personal accounts + accounts of every team the user is a member of; superusers: all."""
    if not _is_active(user):
        return _accounts().none()
    if user.is_superuser:
        return _accounts().all()
    return _accounts().filter(Q(owner_user=user) | Q(owner_team__in=_team_ids(user, admin_only=False)))


def accounts_managed_by(user: Visitor | None) -> QuerySet[ExchangeAccount]:
    """Own personal accounts + accounts of teams where the user is an admin; superusers: all."""
    if not _is_active(user):
        return _accounts().none()
    if user.is_superuser:
        return _accounts().all()
    return _accounts().filter(Q(owner_user=user) | Q(owner_team__in=_team_ids(user, admin_only=True)))


def _as_pk(pk: Any) -> int:
    """A primary key from a URL or message; anything that is not a positive integer is "not found"."""
    try:
        value = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such account.") from None
    if value <= 0 or str(pk).strip() != str(value):
        raise Http404("No such account.")
    return value


def get_visible_account(user: Visitor | None, pk: Any) -> ExchangeAccount:
    """The account if the user may see it; ``Http404`` otherwise (the same as for a missing id)."""
    account = accounts_visible_to(user).filter(pk=_as_pk(pk)).first()
    if account is None:
        raise Http404("No such account.")
    return account


def get_managed_account(user: Visitor | None, pk: Any) -> ExchangeAccount:
    """The account if the user may manage it; ``Http404`` if not visible, ``PermissionDenied`` if read-only."""
    account = get_visible_account(user, pk)
    if not accounts_managed_by(user).filter(pk=account.pk).exists():
        raise PermissionDenied("Only the account's owner or a team admin can change this account.")
    return account


def can_view_account(user: Visitor | None, account_id: int) -> bool:
    """Whether ``user`` may see the account right now.

    Re-reads the user's ``is_active``/``is_superuser`` from the database because the consumer holds a
    user object from connect time and re-checks periodically: a deactivation must end the stream.
    """
    if user is None or not user.is_authenticated or user.pk is None:
        return False
    fresh = get_user_model().objects.filter(pk=user.pk).only("pk", "is_active", "is_superuser").first()
    if fresh is None:
        return False
    try:
        account_pk = _as_pk(account_id)
    except Http404:
        return False
    return accounts_visible_to(fresh).filter(pk=account_pk).exists()


def teams_visible_to(user: Visitor | None) -> QuerySet[Team]:
    """Teams the user belongs to (any role); superusers: all."""
    if not _is_active(user):
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(pk__in=_team_ids(user, admin_only=False))


def teams_managed_by(user: Visitor | None) -> QuerySet[Team]:
    """Teams where the user is an admin; superusers: all."""
    if not _is_active(user):
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(pk__in=_team_ids(user, admin_only=True))


def can_manage_team(user: Visitor | None, team: Team) -> bool:
    return team.pk is not None and teams_managed_by(user).filter(pk=team.pk).exists()


def is_team_admin(user: Visitor | None) -> bool:
    """Whether ``user`` is an active person with the admin role in at least one team."""
    return _is_active(user) and Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()


def may_read_audit(user: Visitor | None) -> bool:
    """Whether the audit trail is open to ``user``: superusers (all of it) and team admins (their part)."""
    return _is_active(user) and (user.is_superuser or is_team_admin(user))


def audit_events_visible_to(user: Visitor | None) -> QuerySet[AuditEvent]:
    """Superusers: every event. Team admins: events of their teams and of their own personal accounts.

    Everyone else: none (the trail is a tool for the people who administer accounts).
    """
    events = AuditEvent.objects.select_related("actor", "team", "account")
    if not _is_active(user) or not may_read_audit(user):
        return events.none()
    if user.is_superuser:
        return events.all()
    admin_team_ids = _team_ids(user, admin_only=True)
    return events.filter(
        Q(team__in=admin_team_ids) | Q(account__owner_team__in=admin_team_ids) | Q(account__owner_user=user)
    )


# --- the second factor (S30) -----------------------------------------------------------------------


def requires_2fa(user: Visitor | None) -> bool:
    """Whether ``user`` must sign in with a second factor: superusers and team admins, the people who can add,
    move or remove keys that can trade, whenever ``QFEXDASH_REQUIRE_2FA`` is on."""
    if not settings.QFEXDASH_REQUIRE_2FA or not _is_active(user):
        return False
    return bool(user.is_superuser) or is_team_admin(user)


def device_still_there(user: Visitor | None, persistent_id: str) -> bool:
    """Whether the device a session gave its second factor with (django-otp's persistent id) is still a
    confirmed device of ``user``: removing a lost phone must end the sessions it opened (S35)."""
    from django_otp.models import Device

    if user is None or user.pk is None:
        return False
    device = Device.from_persistent_id(str(persistent_id), for_verify=False)
    return device is not None and device.user_id == user.pk and bool(device.confirmed)


def second_factor_ok(user: Visitor | None, device_id: str | None) -> bool:
    """For a session whose second factor was given with ``device_id`` (None: not given): the device is still
    there, or — never given — ``user`` needs none."""
    if device_id:
        return device_still_there(user, device_id)
    return not requires_2fa(user)


def second_factor_done(session: Any, user: Visitor | None) -> bool:
    """True when this session passed the second factor with a device ``user`` still has, or ``user`` needs none
    and the session never gave one (django-otp marks the session with the device that verified it)."""
    return second_factor_ok(user, session.get(django_otp.DEVICE_ID_SESSION_KEY))
