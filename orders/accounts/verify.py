"""Checking a key with QFEX: sign in once (connect + auth) under the endpoint policy, and record the outcome.

:func:`key_check` tries a key pair that is not stored yet; :func:`account_verify` tries a stored account's
key and records the outcome on the account and in the audit trail. Exchange problems never raise: they
come back as a :class:`KeyCheck` with a message a trader can act on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.accounts.audit import Action, audit_account
from orders.accounts.encryption import KEYS_NOT_CONFIGURED_MESSAGE, EncryptionKeyError, SecretUnreadable
from orders.accounts.endpoints import endpoint_policy
from orders.accounts.exchange_accounts import account_credentials, clean_secret
from orders.accounts.people import User
from orders.models import ExchangeAccount

if TYPE_CHECKING:
    from orders.qfex import Credentials

logger = logging.getLogger(__name__)


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
    credentials = Credentials(public_key=public_key.strip(), secret=clean_secret(secret))
    return _sign_in_once(where.trade_url(), credentials, subaccount_id, timeout, "being added")


def _try_authenticate(account: ExchangeAccount, timeout: float) -> KeyCheck:
    try:
        credentials = account_credentials(account)
    except SecretUnreadable as exc:
        return KeyCheck(REJECTED, exc.user_message)
    except EncryptionKeyError:
        return KeyCheck(REJECTED, KEYS_NOT_CONFIGURED_MESSAGE)
    return _sign_in_once(account.trade_url(), credentials, account.subaccount_id, timeout, account.pk)


def account_record_check(*, actor: User | None, account: ExchangeAccount, check: KeyCheck) -> VerifyResult:
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
        audit_account(actor=actor, action=action, account=account, detail=detail)
    return VerifyResult(ok=check.ok, message=check.message)


def account_verify(*, actor: User | None, account: ExchangeAccount, timeout: float | None = None) -> VerifyResult:
    """Authenticate against the account's endpoint and record the outcome. Never raises for exchange problems.

    The connection is made under the endpoint policy (S22), and only with the secret as bound to the
    account's current destination (S21).
    """
    timeout = settings.QFEX_TIMEOUT_SECONDS if timeout is None else timeout
    return account_record_check(actor=actor, account=account, check=_try_authenticate(account, timeout))
