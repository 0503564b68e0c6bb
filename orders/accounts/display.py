"""An account's key status in words, for the account lists, the admin and the command line.

Never decrypts and never raises: a page that lists accounts must not become a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone

from orders.accounts.encryption import (
    KEYS_NOT_CONFIGURED_MESSAGE,
    EncryptionKeyError,
    SecretUnreadable,
    configured_keys,
    is_legacy_token,
    token_key_id,
)
from orders.models import ExchangeAccount

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyStatus:
    """Whether an account's stored key can be used, as the lists, the admin and the command show it (the
    "Key" column): a code, a short label and plain words. Not the live feed's state of the account, which is
    ``orders.live.feed.state.AccountState``."""

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


def account_key_status(account: ExchangeAccount) -> KeyStatus:
    """The account's key status for display. Never raises."""
    try:
        readable, why = _secret_looks_readable(account)
        if not readable:
            return KeyStatus("secret_unreadable", "Secret unreadable", why)
        if not account.enabled:
            return KeyStatus("disabled", "Disabled", "This account is disabled; its orders are not fetched.")
        if account.last_error:
            return KeyStatus("error", "Error", account.last_error)
        if account.last_verified_at:
            when = timezone.localtime(account.last_verified_at).strftime("%Y-%m-%d %H:%M %Z")
            return KeyStatus("verified", "Verified", f"QFEX accepted the key on {when}.")
        return KeyStatus("unverified", "Not verified", "The key has not been checked against QFEX yet.")
    except Exception:  # a display helper must not turn a page into a 500
        logger.exception("Could not work out the state of exchange account %s", getattr(account, "pk", None))
        return KeyStatus("error", "Error", "The account's state could not be determined.")
