"""The audit trail's writes: one append-only event per change to teams, memberships and accounts.

Every service records through :func:`audit_record`; nothing else writes ``AuditEvent``. A detail never
holds a secret: some keys are refused at any depth. How an event reads on the page is
:mod:`orders.accounts.audit_text`; the page's filters are :mod:`orders.accounts.audit_filters`.
"""

from __future__ import annotations

from typing import Any

from orders.accounts.audit_text import isolated
from orders.accounts.people import User, Visitor
from orders.models import AuditEvent, ExchangeAccount, Team

Action = AuditEvent.Action

# Keys that must never appear in an audit event's detail, at any depth.
_FORBIDDEN_DETAIL_KEYS = frozenset({"secret", "secret_key", "secret_ciphertext", "password", "signature", "hmac"})


def _check_detail(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() in _FORBIDDEN_DETAIL_KEYS:
                raise ValueError(f"audit detail must not carry a {key!r} entry")
            _check_detail(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_detail(item)


def audit_record(
    *,
    actor: Visitor | None,
    action: str,
    target: str,
    team: Team | None = None,
    account: ExchangeAccount | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the audit trail. ``detail`` must never hold a secret (some keys are refused)."""
    detail = dict(detail or {})
    _check_detail(detail)
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    user = actor if isinstance(actor, User) and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "",
        action=action,
        team=team,
        account=account,
        target=str(target)[:200],
        detail=detail,
    )


def account_target(account: ExchangeAccount) -> str:
    """ "account 'Desk A main' (team Desk A)": the label quoted as Python does (its control characters, bidi
    overrides included, written as escapes) and the owner's name isolated (S39)."""
    return f"account {account.label!r} ({isolated(account.owner_display)})"


def account_team(account: ExchangeAccount) -> Team | None:
    return account.owner_team if account.owner_team_id else None


def audit_account(
    *, actor: Visitor | None, action: str, account: ExchangeAccount, detail: dict[str, Any] | None = None
) -> AuditEvent:
    """Append one event about ``account``: named with its owner, linked to it and to its team (if it has one)."""
    return audit_record(
        actor=actor,
        action=action,
        target=account_target(account),
        team=account_team(account),
        account=account,
        detail=detail,
    )
