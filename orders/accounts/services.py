"""Every write to teams, memberships and exchange accounts, each leaving an audit event.

Views, the admin and management commands call these; nothing else writes these models. The
functions do not check permissions: callers decide who may act through ``orders.accounts.access``.
Validation problems raise ``django.core.exceptions.ValidationError`` with messages a trader can
act on. No function here logs, returns or stores a secret in clear.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders.accounts.encryption import (
    Destination,
    EncryptionKeyError,
    SecretUnreadable,
    configured_keys,
    decrypt_secret,
    encrypt_secret,
    is_legacy_token,
    token_key_id,
)
from orders.accounts.endpoints import custom_url_problem, endpoint_policy
from orders.models import AuditEvent, ExchangeAccount, Membership, Team

if TYPE_CHECKING:
    from orders.qfex import Credentials

logger = logging.getLogger(__name__)

Action = AuditEvent.Action

# A hint of the last four characters is only stored for secrets long enough that four characters
# reveal a negligible part of them.
_MIN_SECRET_LENGTH_FOR_HINT = 16
_ACCOUNT_FIELDS = ("label", "public_key", "endpoint", "custom_url", "subaccount_id", "enabled")
# Where the key goes (S21): the stored secret is bound to these, so changing any of them needs the
# secret typed again, and the last verification no longer says anything about the account.
DESTINATION_FIELDS = frozenset({"public_key", "endpoint", "custom_url", "subaccount_id"})
_FIELDS_THAT_NEED_REVERIFY = DESTINATION_FIELDS
DESTINATION_CHANGE_MESSAGE = (
    "Changing the public key, exchange, custom address or subaccount sends this key somewhere new: "
    "type its secret key again to confirm. Nothing was changed."
)
# Keys that must never appear in an audit event's detail, at any depth.
_FORBIDDEN_DETAIL_KEYS = frozenset({"secret", "secret_key", "secret_ciphertext", "password", "signature", "hmac"})
KEYS_NOT_CONFIGURED_MESSAGE = (
    "The server's encryption keys are not configured (QFEXDASH_ENCRYPTION_KEYS); ask an administrator."
)


# --- audit ----------------------------------------------------------------------------------------


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
    actor: Any,
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
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=user,
        actor_name=user.get_username() if user else "",
        action=action,
        team=team,
        account=account,
        target=str(target)[:200],
        detail=detail,
    )


def _account_target(account: ExchangeAccount) -> str:
    return f"account {account.label!r} ({account.owner_display})"


def _account_team(account: ExchangeAccount) -> Team | None:
    return account.owner_team if account.owner_team_id else None


# --- validation -------------------------------------------------------------------------------------


def _clean_custom_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ValidationError({"custom_url": "Enter the WebSocket URL (ws:// or wss://) for a custom endpoint."})
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValidationError({"custom_url": "The custom URL must start with ws:// or wss:// and name a host."})
    if parts.username or parts.password:
        raise ValidationError({"custom_url": "Do not put a user name or password in the URL."})
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number in range)
    except ValueError:
        raise ValidationError({"custom_url": "The port in the custom URL is not valid."}) from None
    problem = custom_url_problem(url)
    if problem:
        raise ValidationError({"custom_url": problem})
    return url


def _clean_subaccount_id(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        example = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        raise ValidationError(
            {"subaccount_id": f"The subaccount id must be a QFEX account UUID, e.g. {example}."}
        ) from None


def _clean_account_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate the editable account fields; raises one ValidationError with every problem."""
    errors: dict[str, str] = {}
    cleaned = dict(values)
    cleaned["label"] = str(values.get("label") or "").strip()
    if not cleaned["label"]:
        errors["label"] = "Give the account a name."
    # The stubs allow a field without max_length; this one has it (100).
    elif len(cleaned["label"]) > ExchangeAccount._meta.get_field("label").max_length:  # type: ignore[operator]
        errors["label"] = "The name is too long (100 characters at most)."
    cleaned["public_key"] = str(values.get("public_key") or "").strip()
    if not cleaned["public_key"]:
        errors["public_key"] = "Enter the QFEX public key."
    elif len(cleaned["public_key"]) > 200 or any(ch.isspace() for ch in cleaned["public_key"]):
        errors["public_key"] = "That does not look like a QFEX public key."
    endpoint = values.get("endpoint") or ExchangeAccount.Endpoint.PRODUCTION
    if endpoint not in ExchangeAccount.Endpoint.values:
        errors["endpoint"] = "Choose QFEX production, QFEX UAT or a custom URL."
    cleaned["endpoint"] = endpoint
    if endpoint == ExchangeAccount.Endpoint.CUSTOM:
        try:
            cleaned["custom_url"] = _clean_custom_url(values.get("custom_url", ""))
        except ValidationError as exc:
            errors.update({name: msgs[0] for name, msgs in exc.message_dict.items()})
    else:
        cleaned["custom_url"] = ""  # only meaningful for a custom endpoint
    try:
        cleaned["subaccount_id"] = _clean_subaccount_id(values.get("subaccount_id", ""))
    except ValidationError as exc:
        errors.update({name: msgs[0] for name, msgs in exc.message_dict.items()})
    cleaned["enabled"] = bool(values.get("enabled", True))
    if errors:
        raise ValidationError(errors)
    return cleaned


def _clean_secret(secret: str) -> str:
    # Surrounding whitespace is a copy-paste accident: the secret is used as raw HMAC key bytes.
    secret = (secret or "").strip() if isinstance(secret, str) else ""
    if not secret:
        raise ValidationError({"secret": "Enter the QFEX secret key."})
    return secret


def _secret_hint(secret: str) -> str:
    return secret[-4:] if len(secret) >= _MIN_SECRET_LENGTH_FOR_HINT else ""


def _label_taken(label: str, owner_user: Any, owner_team: Team | None, exclude_pk: int | None = None) -> bool:
    accounts = ExchangeAccount.objects.filter(label=label)
    if owner_team is not None:
        accounts = accounts.filter(owner_team=owner_team)
    else:
        accounts = accounts.filter(owner_user=owner_user)
    if exclude_pk is not None:
        accounts = accounts.exclude(pk=exclude_pk)
    return accounts.exists()


def _label_taken_error(label: str, owner_team: Team | None) -> ValidationError:
    whose = f"Team {owner_team.name} already has" if owner_team is not None else "There is already"
    return ValidationError({"label": f"{whose} an account called {label!r}; choose another name."})


# --- accounts ---------------------------------------------------------------------------------------


def account_create(
    *,
    actor: Any,
    label: str,
    public_key: str,
    secret: str,
    owner_user: Any = None,
    owner_team: Team | None = None,
    endpoint: str = ExchangeAccount.Endpoint.PRODUCTION,
    custom_url: str = "",
    subaccount_id: str = "",
    enabled: bool = True,
) -> ExchangeAccount:
    """Create an account owned by exactly one user or one team, with its secret encrypted."""
    if (owner_user is None) == (owner_team is None):
        raise ValidationError("An account belongs to exactly one person or one team.")
    cleaned = _clean_account_fields(
        {
            "label": label,
            "public_key": public_key,
            "endpoint": endpoint,
            "custom_url": custom_url,
            "subaccount_id": subaccount_id,
            "enabled": enabled,
        }
    )
    secret = _clean_secret(secret)
    if _label_taken(cleaned["label"], owner_user, owner_team):
        raise _label_taken_error(cleaned["label"], owner_team)
    account = ExchangeAccount(owner_user=owner_user, owner_team=owner_team, binding=uuid.uuid4(), **cleaned)
    account.secret_ciphertext = encrypt_secret(secret, account.binding, Destination.of(account))
    account.secret_hint = _secret_hint(secret)
    try:
        with transaction.atomic():
            account.save()
            audit_record(
                actor=actor,
                action=Action.ACCOUNT_ADDED,
                target=_account_target(account),
                team=_account_team(account),
                account=account,
                detail={
                    "label": account.label,
                    "endpoint": account.endpoint,
                    "custom_url": account.custom_url,
                    "subaccount_id": account.subaccount_id,
                    "enabled": account.enabled,
                },
            )
    except IntegrityError:  # a concurrent create took the label between the check and the insert
        raise _label_taken_error(cleaned["label"], owner_team) from None
    return account


def destination_changes(account: ExchangeAccount, fields: dict[str, Any]) -> set[str]:
    """Which destination fields (S21) ``fields`` would change on ``account``, after cleaning."""
    current = {name: getattr(account, name) for name in _ACCOUNT_FIELDS}
    try:
        cleaned = _clean_account_fields({**current, **fields})
    except ValidationError:
        cleaned = {**current, **{name: value for name, value in fields.items() if name in current}}
    return {name for name in DESTINATION_FIELDS if cleaned.get(name) != current[name]}


def account_update(
    *, actor: Any, account: ExchangeAccount, secret: str | None = None, **fields: Any
) -> ExchangeAccount:
    """Change any of label, public_key, endpoint, custom_url, subaccount_id, enabled (and the secret).

    The stored secret is bound to where it goes (S21): changing the public key, endpoint, custom URL or
    subaccount needs ``secret`` typed again, else ``ValidationError`` and nothing changes. A given
    ``secret`` replaces the stored one (bound to the new destination). Changing where or how the account
    connects clears the last verification. Enabling or disabling is recorded as its own audit event.
    """
    unknown = set(fields) - set(_ACCOUNT_FIELDS)
    if unknown:
        raise TypeError(f"account_update() cannot change {', '.join(sorted(unknown))}")
    current = {name: getattr(account, name) for name in _ACCOUNT_FIELDS}
    cleaned = _clean_account_fields({**current, **fields})
    changed = {name: [current[name], cleaned[name]] for name in _ACCOUNT_FIELDS if cleaned[name] != current[name]}
    new_secret = _clean_secret(secret) if secret is not None and str(secret).strip() else None
    if DESTINATION_FIELDS & set(changed) and new_secret is None:
        raise ValidationError({"secret": DESTINATION_CHANGE_MESSAGE})
    if not changed:
        if new_secret is not None:
            account_set_secret(actor=actor, account=account, secret=new_secret)
        return account
    if "label" in changed and _label_taken(
        cleaned["label"], account.owner_user, account.owner_team, exclude_pk=account.pk
    ):
        raise _label_taken_error(cleaned["label"], account.owner_team)
    update_fields = [*changed, "updated_at"]
    for name in changed:
        setattr(account, name, cleaned[name])
    if new_secret is not None:
        account.secret_ciphertext = encrypt_secret(new_secret, account.binding, Destination.of(account))
        account.secret_hint = _secret_hint(new_secret)
        update_fields += ["secret_ciphertext", "secret_hint"]
    if _FIELDS_THAT_NEED_REVERIFY & set(changed) or new_secret is not None:
        account.last_verified_at = None
        account.last_error = ""
        update_fields += ["last_verified_at", "last_error"]
    try:
        with transaction.atomic():
            account.save(update_fields=update_fields)
            if new_secret is not None:
                audit_record(
                    actor=actor,
                    action=Action.ACCOUNT_SECRET_CHANGED,
                    target=_account_target(account),
                    team=_account_team(account),
                    account=account,
                )
            other_changes = {name: values for name, values in changed.items() if name != "enabled"}
            if other_changes:
                audit_record(
                    actor=actor,
                    action=Action.ACCOUNT_CHANGED,
                    target=_account_target(account),
                    team=_account_team(account),
                    account=account,
                    detail={"changed": other_changes},
                )
            if "enabled" in changed:
                audit_record(
                    actor=actor,
                    action=Action.ACCOUNT_ENABLED if account.enabled else Action.ACCOUNT_DISABLED,
                    target=_account_target(account),
                    team=_account_team(account),
                    account=account,
                )
    except IntegrityError:
        for name, (old, _new) in changed.items():
            setattr(account, name, old)
        account.refresh_from_db(fields=["secret_ciphertext", "secret_hint", "last_verified_at", "last_error"])
        raise _label_taken_error(cleaned["label"], account.owner_team) from None
    return account


def account_set_secret(*, actor: Any, account: ExchangeAccount, secret: str) -> None:
    """Replace the stored secret (encrypted with the current first key); clears the last verification."""
    secret = _clean_secret(secret)
    account.secret_ciphertext = encrypt_secret(secret, account.binding, Destination.of(account))
    account.secret_hint = _secret_hint(secret)
    account.last_verified_at = None
    account.last_error = ""
    with transaction.atomic():
        account.save(update_fields=["secret_ciphertext", "secret_hint", "last_verified_at", "last_error", "updated_at"])
        audit_record(
            actor=actor,
            action=Action.ACCOUNT_SECRET_CHANGED,
            target=_account_target(account),
            team=_account_team(account),
            account=account,
        )


def account_delete(*, actor: Any, account: ExchangeAccount) -> None:
    """Delete the account. Its audit events stay (their account link becomes empty; the target keeps the name)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=Action.ACCOUNT_REMOVED,
            target=_account_target(account),
            team=_account_team(account),
            detail={"account_id": account.pk, "label": account.label},
        )
        account.delete()


def account_credentials(account: ExchangeAccount) -> Credentials:
    """The decrypted key pair, only for signing an auth message. Raises ``SecretUnreadable``.

    Decryption checks the secret's binding to the row *and* to its destination (S21): a row pointed at
    another key, endpoint, URL or subaccount without the secret being typed again does not decrypt.
    """
    secret = decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account))
    from orders.qfex import Credentials  # the protocol client is a Django-free package; import on use

    return Credentials(public_key=account.public_key, secret=secret)


@dataclass(frozen=True)
class AccountState:
    """What a list or the admin shows about an account: a code, a short label and plain words."""

    code: str  # disabled | secret_unreadable | error | verified | unverified
    label: str
    detail: str


def _secret_looks_readable(account: ExchangeAccount) -> tuple[bool, str]:
    """Whether the stored secret was made with a configured key — without decrypting it.

    Secrets are decrypted only to sign an auth message, so listing accounts never decrypts. A token
    that names a configured key but still fails (e.g. copied from another row) is caught when it is
    used, and ``last_error`` then carries ``SecretUnreadable.user_message``.
    """
    try:
        key_ids = {key.key_id for key in configured_keys()}
    except EncryptionKeyError:
        return False, KEYS_NOT_CONFIGURED_MESSAGE
    if token_key_id(account.secret_ciphertext) not in key_ids or is_legacy_token(account.secret_ciphertext):
        return False, SecretUnreadable.user_message
    if account.last_error == SecretUnreadable.user_message:
        return False, SecretUnreadable.user_message
    return True, ""


def account_state(account: ExchangeAccount) -> AccountState:
    """The account's state for display. Never raises."""
    try:
        readable, why = _secret_looks_readable(account)
        if not readable:
            return AccountState("secret_unreadable", "Secret unreadable", why)
        if not account.enabled:
            return AccountState("disabled", "Disabled", "This account is disabled; its orders are not fetched.")
        if account.last_error:
            return AccountState("error", "Error", account.last_error)
        if account.last_verified_at:
            when = timezone.localtime(account.last_verified_at).strftime("%Y-%m-%d %H:%M %Z")
            return AccountState("verified", "Verified", f"QFEX accepted the key on {when}.")
        return AccountState("unverified", "Not verified", "The key has not been checked against QFEX yet.")
    except Exception:  # a display helper must not turn a page into a 500
        logger.exception("Could not work out the state of exchange account %s", getattr(account, "pk", None))
        return AccountState("error", "Error", "The account's state could not be determined.")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    message: str


VERIFIED_MESSAGE = "QFEX accepted the API key."
ACCEPTED, REJECTED, UNREACHABLE = "accepted", "rejected", "unreachable"


@dataclass(frozen=True)
class KeyCheck:
    """One sign-in attempt with a key pair: ``accepted``, ``rejected`` (by QFEX, or refused by the
    endpoint policy before anything was sent) or ``unreachable`` (QFEX could not be asked)."""

    outcome: str
    message: str

    @property
    def ok(self) -> bool:
        return self.outcome == ACCEPTED


def _sign_in_once(url: str, credentials: Credentials, subaccount_id: str, timeout: float, label: Any) -> KeyCheck:
    """Open a session (connect + auth) under the endpoint policy and close it."""
    from orders.qfex import AuthenticationRejected, EndpointNotAllowed, QfexError, QfexSession

    session = None
    try:
        session = QfexSession(
            url,
            credentials,
            account_id=subaccount_id or None,
            timeout=timeout,
            endpoint_policy=endpoint_policy(),
        )
        session.connect()
    except (AuthenticationRejected, EndpointNotAllowed) as exc:
        return KeyCheck(REJECTED, exc.user_message)
    except QfexError as exc:
        return KeyCheck(UNREACHABLE, exc.user_message)
    except Exception as exc:  # anything unexpected still becomes a message, never a 500
        # Only the exception type: its text could in theory quote something it should not.
        logger.warning("Checking the key of exchange account %s failed unexpectedly (%s)", label, type(exc).__name__)
        return KeyCheck(
            UNREACHABLE, "Could not check the key with QFEX because of an unexpected error; try again later."
        )
    finally:
        if session is not None:
            try:
                session.close()
            except Exception:  # closing is best effort
                logger.debug("Closing the verification session of account %s failed", label)
    return KeyCheck(ACCEPTED, VERIFIED_MESSAGE)


def key_check(
    *,
    public_key: str,
    secret: str,
    endpoint: str,
    custom_url: str = "",
    subaccount_id: str = "",
    timeout: float | None = None,
) -> KeyCheck:
    """Sign in once with a key pair that is not stored yet (adding an account, or typing a new secret).

    Nothing is stored or recorded; the caller saves only when QFEX did not reject the key.
    """
    from orders.qfex import Credentials

    timeout = settings.QFEX_TIMEOUT_SECONDS if timeout is None else timeout
    where = ExchangeAccount(endpoint=endpoint, custom_url=custom_url)
    credentials = Credentials(public_key=public_key.strip(), secret=_clean_secret(secret))
    return _sign_in_once(where.trade_url(), credentials, subaccount_id, timeout, "being added")


def _try_authenticate(account: ExchangeAccount, timeout: float) -> KeyCheck:
    try:
        credentials = account_credentials(account)
    except SecretUnreadable as exc:
        return KeyCheck(REJECTED, exc.user_message)
    except EncryptionKeyError:
        return KeyCheck(REJECTED, KEYS_NOT_CONFIGURED_MESSAGE)
    return _sign_in_once(account.trade_url(), credentials, account.subaccount_id, timeout, account.pk)


def account_record_check(*, actor: Any, account: ExchangeAccount, check: KeyCheck) -> VerifyResult:
    """Store the outcome of a sign-in attempt on the account and in the audit trail."""
    if check.ok:
        account.last_verified_at = timezone.now()
        account.last_error = ""
        action, detail = Action.ACCOUNT_VERIFIED, {}
    else:
        account.last_verified_at = None
        account.last_error = check.message[: ExchangeAccount._meta.get_field("last_error").max_length]
        action, detail = Action.ACCOUNT_VERIFY_FAILED, {"reason": check.message}
    with transaction.atomic():
        # update() rather than save(): a form saving other fields at the same time must not be undone.
        ExchangeAccount.objects.filter(pk=account.pk).update(
            last_verified_at=account.last_verified_at, last_error=account.last_error
        )
        audit_record(
            actor=actor,
            action=action,
            target=_account_target(account),
            team=_account_team(account),
            account=account,
            detail=detail,
        )
    return VerifyResult(ok=check.ok, message=check.message)


def account_verify(*, actor: Any, account: ExchangeAccount, timeout: float | None = None) -> VerifyResult:
    """Authenticate against the account's endpoint and record the outcome. Never raises for exchange problems.

    The connection is made under the endpoint policy (S22), and only with the secret as bound to the
    account's current destination (S21).
    """
    timeout = settings.QFEX_TIMEOUT_SECONDS if timeout is None else timeout
    return account_record_check(actor=actor, account=account, check=_try_authenticate(account, timeout))


# --- teams and memberships --------------------------------------------------------------------------


def team_create(*, actor: Any, name: str) -> Team:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the team a name."})
    if len(name) > Team._meta.get_field("name").max_length:  # type: ignore[operator]  # it has one (100)
        raise ValidationError({"name": "The name is too long (100 characters at most)."})
    if Team.objects.filter(name__iexact=name).exists():
        raise ValidationError({"name": f"A team called {name!r} already exists."})
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name)
            audit_record(actor=actor, action=Action.TEAM_ADDED, target=f"team {team.name}", team=team)
    except IntegrityError:
        raise ValidationError({"name": f"A team called {name!r} already exists."}) from None
    return team


def team_delete(*, actor: Any, team: Team) -> None:
    """Delete a team, its accounts and memberships, each removal recorded before the team's own event."""
    with transaction.atomic():
        for account in list(team.exchange_accounts.all()):
            account_delete(actor=actor, account=account)
        for membership in list(team.memberships.select_related("user")):
            membership_remove(actor=actor, membership=membership, team_deleted=True)
        audit_record(actor=actor, action=Action.TEAM_REMOVED, target=f"team {team.name}", team=team)
        team.delete()


LAST_ADMIN_MESSAGE = (
    "{team} must keep at least one admin who can sign in: make someone else an admin of the team first, "
    "then change or remove {user}."
)


def _refuse_losing_last_admin(membership: Membership) -> None:
    """Refuse to demote or remove the team's last active admin: the team would be left unmanageable.

    The other admins' rows are locked (on databases that lock) so two admins cannot demote each other at once.
    """
    if membership.role != Membership.Role.ADMIN:
        return
    others = (
        Membership.objects.select_for_update()
        .filter(team_id=membership.team_id, role=Membership.Role.ADMIN, user__is_active=True)
        .exclude(pk=membership.pk)
    )
    if not others.exists():
        message = LAST_ADMIN_MESSAGE.format(team=membership.team.name, user=membership.user.get_username())
        raise ValidationError({"role": message}, code="last_admin")


def _clean_role(role: str) -> str:
    if role not in Membership.Role.values:
        raise ValidationError({"role": "Choose admin, trader or viewer."})
    return role


def _member_target(user: Any, team: Team) -> str:
    return f"{user.get_username()} in team {team.name}"


def membership_add(*, actor: Any, team: Team, user: Any, role: str) -> Membership:
    role = _clean_role(role)
    if Membership.objects.filter(team=team, user=user).exists():
        raise ValidationError({"user": f"{user.get_username()} is already a member of {team.name}."})
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
        raise ValidationError({"user": f"{user.get_username()} is already a member of {team.name}."}) from None
    return membership


def membership_change_role(*, actor: Any, membership: Membership, role: str) -> Membership:
    """Change a member's role; demoting the team's last active admin is refused (``ValidationError``)."""
    role = _clean_role(role)
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


def membership_remove(*, actor: Any, membership: Membership, team_deleted: bool = False) -> None:
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


# --- key rotation -----------------------------------------------------------------------------------

UNRECOGNISED = "unrecognised"
_DESTINATION_COLUMNS = ("public_key", "endpoint", "custom_url", "subaccount_id")


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
            .values_list("pk", "label", "binding", "secret_ciphertext", *_DESTINATION_COLUMNS)
        )
        before = _count_by_key([row[3] for row in rows], key_ids)
        unreadable: list[UnreadableSecret] = []
        new_tokens: dict[int, str] = {}
        for pk, label, binding, token, *where in rows:
            destination = Destination.of(SimpleNamespace(**dict(zip(_DESTINATION_COLUMNS, where, strict=True))))
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
