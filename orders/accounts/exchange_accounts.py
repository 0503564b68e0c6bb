"""Exchange accounts: add, change, re-key and remove one, each change leaving an audit event.

Views, the admin and management commands call these; nothing else writes ``ExchangeAccount``. The
functions do not check permissions: callers decide who may act through :mod:`orders.accounts.access`.
Validation problems raise ``django.core.exceptions.ValidationError`` with messages a trader can act on.
No function here logs, returns or stores a secret in clear.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from orders.accounts.audit import Action, account_target, account_team, audit_record
from orders.accounts.encryption import Destination, decrypt_secret, encrypt_secret
from orders.accounts.endpoints import custom_url_problem
from orders.models import ExchangeAccount, Team

if TYPE_CHECKING:
    from orders.qfex import Credentials

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
    elif len(cleaned["label"]) > ExchangeAccount._meta.get_field("label").max_length:
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
                target=account_target(account),
                team=account_team(account),
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
                    target=account_target(account),
                    team=account_team(account),
                    account=account,
                )
            other_changes = {name: values for name, values in changed.items() if name != "enabled"}
            if other_changes:
                audit_record(
                    actor=actor,
                    action=Action.ACCOUNT_CHANGED,
                    target=account_target(account),
                    team=account_team(account),
                    account=account,
                    detail={"changed": other_changes},
                )
            if "enabled" in changed:
                audit_record(
                    actor=actor,
                    action=Action.ACCOUNT_ENABLED if account.enabled else Action.ACCOUNT_DISABLED,
                    target=account_target(account),
                    team=account_team(account),
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
            target=account_target(account),
            team=account_team(account),
            account=account,
        )


def account_delete(*, actor: Any, account: ExchangeAccount) -> None:
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
