"""Every rule for a field a person fills in, with its message: one copy for the pages, the admin, the
services and the ``qfex_account`` command.

Each ``clean_<field>`` takes what was typed and returns the value to store, or raises ``ValidationError``
with words a trader can act on; it names no field, the caller knows which one it checked. The forms also
give Django's own checks (required, too long, not a choice) these words through :data:`FIELD_MESSAGES`, so a
field reads the same whichever check caught it.

Where a stored key may be sent is its destination (S21): :data:`DESTINATION_FIELDS`, the fields of
:class:`~orders.accounts.encryption.Destination`, are the one list of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from orders.accounts.encryption import DESTINATION_FIELDS
from orders.accounts.endpoints import custom_url_problem
from orders.accounts.people import User
from orders.models import ExchangeAccount, Membership, Team

__all__ = [
    "ACCOUNT_FIELDS",
    "DESTINATION_CHANGE_MESSAGE",
    "DESTINATION_FIELDS",
    "FIELD_MESSAGES",
    "check_label_free",
    "check_not_member",
    "clean_custom_url",
    "clean_endpoint",
    "clean_label",
    "clean_public_key",
    "clean_role",
    "clean_secret",
    "clean_subaccount_id",
    "clean_team_name",
    "under_field",
]

T = TypeVar("T")


def _max_length(model: Any, name: str) -> int:
    return int(model._meta.get_field(name).max_length)


LABEL_MAX_LENGTH = _max_length(ExchangeAccount, "label")
PUBLIC_KEY_MAX_LENGTH = _max_length(ExchangeAccount, "public_key")
CUSTOM_URL_MAX_LENGTH = _max_length(ExchangeAccount, "custom_url")
SUBACCOUNT_ID_MAX_LENGTH = _max_length(ExchangeAccount, "subaccount_id")
TEAM_NAME_MAX_LENGTH = _max_length(Team, "name")
# Longer than any QFEX secret: a bigger paste is a mistake, and the field must have a bound.
SECRET_MAX_LENGTH = 500

# The fields a person may change on an account: its name, where its key goes, and whether it is on.
ACCOUNT_FIELDS = ("label", *DESTINATION_FIELDS, "enabled")

LABEL_REQUIRED = "Give the account a name."
LABEL_TOO_LONG = f"The name is too long ({LABEL_MAX_LENGTH} characters at most)."
PUBLIC_KEY_REQUIRED = "Enter the public API key."
PUBLIC_KEY_HAS_SPACES = "That does not look like a QFEX public key: it must not contain spaces."
PUBLIC_KEY_TOO_LONG = (
    f"That does not look like a QFEX public key: it is longer than {PUBLIC_KEY_MAX_LENGTH} characters."
)
SECRET_REQUIRED = "Enter the secret API key."  # noqa: S105  (a message, not a password)
SECRET_TOO_LONG = f"That is longer than any QFEX secret key ({SECRET_MAX_LENGTH} characters at most)."
ENDPOINT_INVALID = "Choose QFEX production, QFEX UAT or a custom URL."
CUSTOM_URL_REQUIRED = "Enter the WebSocket address to use with a custom endpoint."
CUSTOM_URL_NOT_WEBSOCKET = (
    "Enter a WebSocket address starting with ws:// or wss://, for example wss://trade.example.com."
)
CUSTOM_URL_BAD_PORT = "The port in the address is not valid: use a number from 0 to 65535."
CUSTOM_URL_HAS_CREDENTIALS = "The address must not contain a user name or password."
CUSTOM_URL_TOO_LONG = f"The address is too long ({CUSTOM_URL_MAX_LENGTH} characters at most)."
SUBACCOUNT_ID_INVALID = (
    "Enter the subaccount id exactly as QFEX shows it, for example 1b4e28ba-2fa1-11d2-883f-0016d3cca427."
)
ROLE_INVALID = "Choose admin, trader or viewer."
TEAM_NAME_REQUIRED = "Give the team a name."
TEAM_NAME_TOO_LONG = f"The name is too long ({TEAM_NAME_MAX_LENGTH} characters at most)."
DESTINATION_CHANGE_MESSAGE = (
    "Changing the public key, exchange, custom address or subaccount sends this key somewhere new: "
    "type its secret key again to confirm. Nothing was changed."
)

# Django's own checks on the form fields, in the same words as the rules below.
FIELD_MESSAGES: dict[str, dict[str, str]] = {
    "label": {"required": LABEL_REQUIRED, "max_length": LABEL_TOO_LONG},
    "public_key": {"required": PUBLIC_KEY_REQUIRED, "max_length": PUBLIC_KEY_TOO_LONG},
    "secret": {"required": SECRET_REQUIRED, "max_length": SECRET_TOO_LONG},
    "endpoint": {"required": ENDPOINT_INVALID, "invalid_choice": ENDPOINT_INVALID},
    "custom_url": {"max_length": CUSTOM_URL_TOO_LONG},
    "subaccount_id": {"max_length": SUBACCOUNT_ID_INVALID},
    "role": {"required": ROLE_INVALID, "invalid_choice": ROLE_INVALID},
    "name": {"required": TEAM_NAME_REQUIRED, "max_length": TEAM_NAME_TOO_LONG},
}


def under_field(name: str, rule: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``rule(*args, **kwargs)``, with its refusal filed under the field ``name``: services raise errors by
    field, so a form shows each one next to the field it is about (``add_service_errors``)."""
    try:
        return rule(*args, **kwargs)
    except ValidationError as exc:
        raise ValidationError({name: exc}) from None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _required(value: Any, message: str, max_length: int, too_long: str) -> str:
    text = _text(value)
    if not text:
        raise ValidationError(message, code="required")
    if len(text) > max_length:
        raise ValidationError(too_long, code="max_length")
    return text


# --- exchange accounts --------------------------------------------------------------------------


def clean_label(value: Any) -> str:
    return _required(value, LABEL_REQUIRED, LABEL_MAX_LENGTH, LABEL_TOO_LONG)


def clean_public_key(value: Any) -> str:
    key = _required(value, PUBLIC_KEY_REQUIRED, PUBLIC_KEY_MAX_LENGTH, PUBLIC_KEY_TOO_LONG)
    if any(ch.isspace() for ch in key):
        raise ValidationError(PUBLIC_KEY_HAS_SPACES, code="invalid")
    return key


def clean_secret(value: Any) -> str:
    """The secret as typed, without surrounding whitespace: a copy-paste accident, as the secret is used as
    raw HMAC key bytes."""
    return _required(value, SECRET_REQUIRED, SECRET_MAX_LENGTH, SECRET_TOO_LONG)


def clean_endpoint(value: Any) -> str:
    if value not in ExchangeAccount.Endpoint.values:
        raise ValidationError(ENDPOINT_INVALID, code="invalid_choice")
    return str(value)


def clean_custom_url(value: Any, *, check_policy: bool = True) -> str:
    """A trade WebSocket address: ws:// or wss:// with a host name and nothing secret in it, on this server's
    list of allowed endpoints (``QFEXDASH_CUSTOM_ENDPOINTS``) unless ``check_policy`` is off (an address an
    account already has is kept even after the list changed; the feed still checks it when connecting)."""
    url = _required(value, CUSTOM_URL_REQUIRED, CUSTOM_URL_MAX_LENGTH, CUSTOM_URL_TOO_LONG)
    try:
        parts = urlsplit(url)  # raises ValueError for a broken address such as "ws://[::1"
    except ValueError:
        raise ValidationError(CUSTOM_URL_NOT_WEBSOCKET, code="invalid_url") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValidationError(CUSTOM_URL_NOT_WEBSOCKET, code="invalid_url")
    try:
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number from 0 to 65535)
    except ValueError:
        raise ValidationError(CUSTOM_URL_BAD_PORT, code="invalid_url") from None
    if parts.username or parts.password:
        raise ValidationError(CUSTOM_URL_HAS_CREDENTIALS, code="invalid_url")
    problem = custom_url_problem(url) if check_policy else None
    if problem:
        raise ValidationError(problem, code="not_allowed")
    return url


def clean_subaccount_id(value: Any) -> str:
    """Empty (the main account), or a QFEX account UUID in its canonical form."""
    text = _text(value)
    if not text:
        return ""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValidationError(SUBACCOUNT_ID_INVALID, code="invalid_subaccount") from None


def check_label_free(
    label: str, *, owner_user: User | None, owner_team: Team | None, exclude_pk: int | None = None
) -> None:
    """A name is used once per owner: refuse ``label`` when the owner has another account called so."""
    siblings = ExchangeAccount.objects.filter(label=label)
    if owner_team is not None:
        siblings = siblings.filter(owner_team=owner_team)
    else:
        siblings = siblings.filter(owner_user=owner_user)
    if exclude_pk is not None:
        siblings = siblings.exclude(pk=exclude_pk)
    if siblings.exists():
        raise label_taken(label, owner_user=owner_user, owner_team=owner_team)


def label_taken(label: str, *, owner_user: User | None, owner_team: Team | None) -> ValidationError:
    owner = f"Team {owner_team.name}" if owner_team is not None else owner_user.get_username() if owner_user else ""
    return ValidationError(f"{owner} already has an account called “{label}”. Choose another name.", code="duplicate")


# --- teams and memberships ----------------------------------------------------------------------


def clean_role(value: Any) -> str:
    if value not in Membership.Role.values:
        raise ValidationError(ROLE_INVALID, code="invalid_choice")
    return str(value)


def clean_team_name(value: Any, *, exclude_pk: int | None = None) -> str:
    """A team's name: given, short enough, and not another team's (names differing only in case are
    confused with each other, so they count as the same)."""
    name = _required(value, TEAM_NAME_REQUIRED, TEAM_NAME_MAX_LENGTH, TEAM_NAME_TOO_LONG)
    teams = Team.objects.filter(name__iexact=name)
    if exclude_pk is not None:
        teams = teams.exclude(pk=exclude_pk)
    if teams.exists():
        raise team_name_taken(name)
    return name


def team_name_taken(name: str) -> ValidationError:
    return ValidationError(f"A team called “{name}” already exists.", code="duplicate")


def check_not_member(team: Team, user: User, *, exclude_pk: int | None = None) -> None:
    """A person is in a team once."""
    memberships = Membership.objects.filter(team=team, user=user)
    if exclude_pk is not None:
        memberships = memberships.exclude(pk=exclude_pk)
    if memberships.exists():
        raise already_member(team, user)


def already_member(team: Team, user: User) -> ValidationError:
    return ValidationError(f"{user.get_username()} is already a member of {team.name}.", code="duplicate")
