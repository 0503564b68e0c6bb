"""HMAC-SHA256 signing of the QFEX ``auth`` message (docs/qfex-protocol.md §2.2).

The signed text is ``f"{nonce}:{unix_ts}"`` with the timestamp as a plain base-10 integer of seconds;
the key is the secret string's UTF-8 bytes; the digest is lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

# QFEX: the nonce is hex, at most 100 characters, unique within 15 minutes.
_NONCE = re.compile(r"[0-9a-fA-F]{1,100}")


@dataclass(frozen=True)
class Credentials:
    """An API key pair. ``repr``/``str`` never show the secret."""

    public_key: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        # Never echo the values: a misplaced secret in public_key would otherwise land in a traceback.
        if not isinstance(self.public_key, str) or not self.public_key.strip():
            raise ValueError("Credentials.public_key must be a non-empty string")
        if not isinstance(self.secret, str) or not self.secret:
            raise ValueError("Credentials.secret must be a non-empty string")

    def __repr__(self) -> str:
        return f"Credentials(public_key={self.public_key!r}, secret=<hidden>)"

    __str__ = __repr__


def sign(secret: str, nonce: str, unix_ts: int) -> str:
    """Lowercase hex HMAC-SHA256 of ``f"{nonce}:{unix_ts}"`` keyed with the secret's UTF-8 bytes."""
    # A float timestamp would sign "…:1760545414.0" and QFEX would reject it: refuse it here instead.
    if not isinstance(unix_ts, int) or isinstance(unix_ts, bool):
        raise TypeError("unix_ts must be an int of whole seconds")
    if not isinstance(nonce, str):
        raise TypeError("nonce must be a string")
    message = f"{nonce}:{unix_ts}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def new_nonce() -> str:
    """16 cryptographically random bytes as 32 lowercase hex characters (fresh for every connection)."""
    return secrets.token_hex(16)


def auth_message(
    credentials: Credentials,
    account_id: str | None = None,
    *,
    now: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """The ``auth`` message. ``now`` (integer seconds) and ``nonce`` are injectable for tests.

    The result contains the signature: never log it.
    """
    nonce = new_nonce() if nonce is None else nonce
    if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
        raise ValueError("nonce must be 1-100 hex characters")
    unix_ts = int(time.time()) if now is None else now
    signature = sign(credentials.secret, nonce, unix_ts)
    params: dict[str, Any] = {
        "hmac": {"public_key": credentials.public_key, "nonce": nonce, "unix_ts": unix_ts, "signature": signature}
    }
    if account_id is not None:
        if not isinstance(account_id, str) or not account_id:
            raise ValueError("account_id must be a non-empty string or None")
        params["account_id"] = account_id
    return {"type": "auth", "params": params}
