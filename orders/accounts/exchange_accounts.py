"""Exchange accounts: add, change, re-key and remove one, each change leaving an audit event.

Views, the admin and management commands call these; nothing else writes ``ExchangeAccount``. The
functions do not check permissions: callers decide who may act through :mod:`orders.accounts.access`.
Validation problems raise ``django.core.exceptions.ValidationError`` with messages a trader can act on.
No function here logs, returns or stores a secret in clear.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orders.accounts import rules
from orders.accounts.audit import Action, account_target, account_team, audit_account, audit_record
from orders.accounts.encryption import DESTINATION_FIELDS, Destination, decrypt_secret, encrypt_secret
from orders.accounts.people import User
from orders.models import ExchangeAccount, Team

if TYPE_CHECKING:
    from orders.qfex import Credentials

# A hint of the last four characters is only stored for secrets long enough that four characters
# reveal a negligible part of them.
_MIN_SECRET_LENGTH_FOR_HINT = 16


def _apply(
    errors: dict[str, ValidationError], cleaned: dict[str, Any], name: str, rule: Callable[[Any], Any], value: Any
) -> None:
    """``cleaned[name] = rule(value)``, or the rule's error kept under ``name``."""
    try:
        cleaned[name] = rule(value)
    except ValidationError as exc:
        errors[name] = exc


def _clean_account_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate the editable account fields; raises one ValidationError with every problem."""
    errors: dict[str, ValidationError] = {}
    cleaned = dict(values)
    _apply(errors, cleaned, "label", rules.clean_label, values.get("label"))
    _apply(errors, cleaned, "public_key", rules.clean_public_key, values.get("public_key"))
    _apply(
        errors, cleaned, "endpoint", rules.clean_endpoint, values.get("endpoint") or ExchangeAccount.Endpoint.PRODUCTION
    )
    if cleaned.get("endpoint") == ExchangeAccount.Endpoint.CUSTOM:
        _apply(errors, cleaned, "custom_url", rules.clean_custom_url, values.get("custom_url"))
    else:
        cleaned["custom_url"] = ""  # only meaningful for a custom endpoint
    _apply(errors, cleaned, "subaccount_id", rules.clean_subaccount_id, values.get("subaccount_id"))
    cleaned["enabled"] = bool(values.get("enabled", True))
    if errors:
        raise ValidationError(errors)
    return cleaned


def clean_secret(secret: Any) -> str:
    """The secret as typed (:func:`orders.accounts.rules.clean_secret`), its error under the ``secret`` field."""
    return rules.under_field("secret", rules.clean_secret, secret)


def _secret_hint(secret: str) -> str:
    return secret[-4:] if len(secret) >= _MIN_SECRET_LENGTH_FOR_HINT else ""


def _check_label_free(
    label: str, owner_user: User | None, owner_team: Team | None, exclude_pk: int | None = None
) -> None:
    rules.under_field(
        "label", rules.check_label_free, label, owner_user=owner_user, owner_team=owner_team, exclude_pk=exclude_pk
    )


def _label_taken(label: str, owner_user: User | None, owner_team: Team | None) -> ValidationError:
    """The label rule's refusal, for a concurrent write that took the label after it was checked."""
    return ValidationError({"label": rules.label_taken(label, owner_user=owner_user, owner_team=owner_team)})


def account_create(
    *,
    actor: User | None,
    label: str,
    public_key: str,
    secret: str,
    owner_user: User | None = None,
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
    secret = clean_secret(secret)
    _check_label_free(cleaned["label"], owner_user, owner_team)
    account = ExchangeAccount(owner_user=owner_user, owner_team=owner_team, binding=uuid.uuid4(), **cleaned)
    account.secret_ciphertext = encrypt_secret(secret, account.binding, Destination.of(account))
    account.secret_hint = _secret_hint(secret)
    try:
        with transaction.atomic():
            account.save()
            audit_account(
                actor=actor,
                action=Action.ACCOUNT_ADDED,
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
        raise _label_taken(cleaned["label"], owner_user, owner_team) from None
    return account


def destination_changes(account: ExchangeAccount, fields: dict[str, Any]) -> set[str]:
    """Which destination fields (S21) ``fields`` would change on ``account``, after cleaning."""
    current = {name: getattr(account, name) for name in rules.ACCOUNT_FIELDS}
    try:
        cleaned = _clean_account_fields({**current, **fields})
    except ValidationError:
        cleaned = {**current, **{name: value for name, value in fields.items() if name in current}}
    return {name for name in DESTINATION_FIELDS if cleaned.get(name) != current[name]}


def account_update(
    *, actor: User | None, account: ExchangeAccount, secret: str | None = None, **fields: Any
) -> ExchangeAccount:
    """Change any of label, public_key, endpoint, custom_url, subaccount_id, enabled (and the secret).

    The stored secret is bound to where it goes (S21): changing the public key, endpoint, custom URL or
    subaccount needs ``secret`` typed again, else ``ValidationError`` and nothing changes. A given
    ``secret`` replaces the stored one (bound to the new destination). Changing where or how the account
    connects clears the last verification. Enabling or disabling is recorded as its own audit event.
    """
    unknown = set(fields) - set(rules.ACCOUNT_FIELDS)
    if unknown:
        raise TypeError(f"account_update() cannot change {', '.join(sorted(unknown))}")
    current = {name: getattr(account, name) for name in rules.ACCOUNT_FIELDS}
    cleaned = _clean_account_fields({**current, **fields})
    changed = {name: [current[name], cleaned[name]] for name in rules.ACCOUNT_FIELDS if cleaned[name] != current[name]}
    new_secret = clean_secret(secret) if secret is not None and str(secret).strip() else None
    moved = set(DESTINATION_FIELDS) & set(changed)
    if moved and new_secret is None:
        raise ValidationError({"secret": rules.DESTINATION_CHANGE_MESSAGE})
    if not changed:
        if new_secret is not None:
            account_set_secret(actor=actor, account=account, secret=new_secret)
        return account
    if "label" in changed:
        _check_label_free(cleaned["label"], account.owner_user, account.owner_team, exclude_pk=account.pk)
    update_fields = [*changed, "updated_at"]
    for name in changed:
        setattr(account, name, cleaned[name])
    if new_secret is not None:
        account.secret_ciphertext = encrypt_secret(new_secret, account.binding, Destination.of(account))
        account.secret_hint = _secret_hint(new_secret)
        update_fields += ["secret_ciphertext", "secret_hint"]
    if moved or new_secret is not None:  # the last verification says nothing about the new destination
        account.last_verified_at = None
        account.last_error = ""
        update_fields += ["last_verified_at", "last_error"]
    try:
        with transaction.atomic():
            account.save(update_fields=update_fields)
            if new_secret is not None:
                audit_account(actor=actor, action=Action.ACCOUNT_SECRET_CHANGED, account=account)
            other_changes = {name: values for name, values in changed.items() if name != "enabled"}
            if other_changes:
                audit_account(
                    actor=actor,
                    action=Action.ACCOUNT_CHANGED,
                    account=account,
                    detail={"changed": other_changes},
                )
            if "enabled" in changed:
                audit_account(
                    actor=actor,
                    action=Action.ACCOUNT_ENABLED if account.enabled else Action.ACCOUNT_DISABLED,
                    account=account,
                )
    except IntegrityError:
        for name, (old, _new) in changed.items():
            setattr(account, name, old)
        account.refresh_from_db(fields=["secret_ciphertext", "secret_hint", "last_verified_at", "last_error"])
        raise _label_taken(cleaned["label"], account.owner_user, account.owner_team) from None
    return account


def account_set_secret(*, actor: User | None, account: ExchangeAccount, secret: str) -> None:
    """Replace the stored secret (encrypted with the current first key); clears the last verification."""
    secret = clean_secret(secret)
    account.secret_ciphertext = encrypt_secret(secret, account.binding, Destination.of(account))
    account.secret_hint = _secret_hint(secret)
    account.last_verified_at = None
    account.last_error = ""
    with transaction.atomic():
        account.save(update_fields=["secret_ciphertext", "secret_hint", "last_verified_at", "last_error", "updated_at"])
        audit_account(actor=actor, action=Action.ACCOUNT_SECRET_CHANGED, account=account)


def account_delete(*, actor: User | None, account: ExchangeAccount) -> None:
    """Delete the account. Its audit events stay (their account link becomes empty; the target keeps the name)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=Action.ACCOUNT_REMOVED,
            target=account_target(account),
            team=account_team(account),
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
