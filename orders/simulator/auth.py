"""QFEX HMAC authentication as the exchange checks it (docs/qfex-protocol.md §2).

signature = lowercase hex HMAC-SHA256(secret as UTF-8, f"{nonce}:{unix_ts}"). The server also checks the
timestamp (±300 s), the nonce (hex, at most 100 characters, unused by that key for 15 minutes) and that an
optional `account_id` is one of the key's subaccounts. Failure messages never quote the secret or the
signature.
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .accounts import SimAccount

MAX_CLOCK_SKEW = 300
NONCE_MEMORY_SECONDS = 15 * 60
MAX_NONCE_LENGTH = 100
_HEX = frozenset(string.hexdigits)


class AuthFailed(Exception):
    """Authentication refused; `str(exc)` is a safe, one-line reason."""


@dataclass(frozen=True)
class AuthOutcome:
    account: SimAccount
    book_id: str  # the user_id, or the subaccount chosen with account_id


def expected_signature(secret: str, nonce: str, unix_ts: int) -> str:
    return hmac.new(secret.encode(), f"{nonce}:{unix_ts}".encode(), hashlib.sha256).hexdigest()


class NonceMemory:
    """Nonces accepted per public key during the last 15 minutes (pruned as it goes)."""

    def __init__(self, window: float = NONCE_MEMORY_SECONDS) -> None:
        self._window = window
        self._seen: dict[str, dict[str, float]] = {}

    def remember(self, public_key: str, nonce: str, now: float) -> bool:
        """Record the nonce; False when this key already used it within the window."""
        seen = self._seen.setdefault(public_key, {})
        if len(seen) > 1000:
            for old, when in list(seen.items()):
                if now - when >= self._window:
                    del seen[old]
        last = seen.get(nonce)
        if last is not None and now - last < self._window:
            return False
        seen[nonce] = now
        return True


def authenticate(
    params: object,
    *,
    find_account: Callable[[str], SimAccount | None],
    nonces: NonceMemory,
    now: float,
    url_api_key: str | None = None,
    reject_all: bool = False,
) -> AuthOutcome:
    """Check an auth message's `params`; return who it is or raise AuthFailed with the reason.

    `find_account` returns None for unknown and revoked keys alike, so both give the same answer.
    """
    if not isinstance(params, Mapping):
        raise AuthFailed("auth params must be an object")
    hmac_block = params.get("hmac")
    if hmac_block is None:
        if "jwt" in params:
            raise AuthFailed("JWT authentication is not supported by this server; sign with HMAC")
        if "api_key" in params:
            raise AuthFailed("api_key authentication is no longer accepted; sign with HMAC")
        raise AuthFailed("auth params must contain an hmac object")
    if not isinstance(hmac_block, Mapping):
        raise AuthFailed("auth params.hmac must be an object")
    public_key = hmac_block.get("public_key")
    if not isinstance(public_key, str) or not public_key:
        raise AuthFailed("hmac.public_key must be a non-empty string")
    if reject_all:
        raise AuthFailed("authentication rejected")
    account = find_account(public_key)
    if account is None:
        raise AuthFailed("unknown or revoked API key")
    if url_api_key is not None and url_api_key != public_key:
        raise AuthFailed("the api_key query parameter does not match hmac.public_key")

    unix_ts = hmac_block.get("unix_ts")
    if isinstance(unix_ts, bool) or not isinstance(unix_ts, int):
        raise AuthFailed("hmac.unix_ts must be an integer number of seconds")
    if abs(now - unix_ts) > MAX_CLOCK_SKEW:
        raise AuthFailed(f"hmac.unix_ts is more than {MAX_CLOCK_SKEW} s away from the server clock")
    nonce = hmac_block.get("nonce")
    if not isinstance(nonce, str) or not nonce or len(nonce) > MAX_NONCE_LENGTH or not set(nonce) <= _HEX:
        raise AuthFailed(f"hmac.nonce must be a hex string of 1 to {MAX_NONCE_LENGTH} characters")
    signature = hmac_block.get("signature")
    if not isinstance(signature, str):
        raise AuthFailed("hmac.signature must be a string")
    expected = expected_signature(account.secret, nonce, unix_ts)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise AuthFailed("invalid signature")
    # Only a correctly signed nonce is remembered, so garbage attempts cannot burn a client's nonces.
    if not nonces.remember(public_key, nonce, now):
        raise AuthFailed("nonce already used within the last 15 minutes")

    account_id = params.get("account_id")
    if account_id is None:
        return AuthOutcome(account, account.user_id)
    if not isinstance(account_id, str) or account_id not in account.subaccounts:
        raise AuthFailed("account_id is not a subaccount of this API key")
    return AuthOutcome(account, account_id)
