"""The one family of exceptions the QFEX client raises, plus the parsing of QFEX error frames.

Every exception carries ``user_message``: one plain sentence a trader can read on the dashboard.
``str(exc)`` is the technical detail for logs. Neither ever contains an API secret or a signature:
messages are built only from exchange error codes, exchange texts (shortened) and our own words.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

# Exchange texts are quoted in exception messages and logs; keep them short so a hostile or
# verbose server cannot flood either.
_MAX_QUOTED_TEXT = 200


def shorten(text: object, limit: int = _MAX_QUOTED_TEXT) -> str:
    """Return ``text`` as a single-line string of at most ``limit`` characters."""
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


class QfexError(Exception):
    """Base of every error raised by the QFEX client."""

    default_user_message = "Something went wrong while talking to QFEX; the dashboard will try again."

    def __init__(self, message: str = "", *, user_message: str | None = None) -> None:
        super().__init__(message or self.default_user_message)
        self.user_message: str = user_message or self.default_user_message


class AuthenticationRejected(QfexError):
    """QFEX refused the credentials (bad key or signature, revoked key, clock skew, reused nonce).

    Fatal: retrying in a loop with the same key will not help and burns nonces.
    """

    default_user_message = (
        "QFEX rejected the API key or its signature — check the key pair and that this server's clock is right."
    )

    def __init__(self, message: str = "", *, error_code: str | None = None, user_message: str | None = None) -> None:
        super().__init__(message, user_message=user_message)
        self.error_code = error_code


class ExchangeError(QfexError):
    """QFEX answered a request with an ``err`` frame (any code without a more specific class)."""

    _USER_MESSAGES = {
        "PermissionDenied": "QFEX refused this request for this API key — check the key's permissions.",
        "ServerError": "QFEX reported an internal error; the dashboard will try again.",
        "KycRequired": "QFEX requires identity verification (KYC) on this account before it can be read.",
        "TncRequired": "QFEX requires this account to accept its terms and conditions before it can be read.",
        "AlreadyAuthenticated": "QFEX says this connection is already signed in; the dashboard will reconnect.",
    }

    def __init__(self, error_code: str, message: str | None = None, *, user_message: str | None = None) -> None:
        self.error_code = error_code
        self.message = message
        detail = f"QFEX error {error_code}" + (f": {shorten(message)}" if message else "")
        fallback = self._USER_MESSAGES.get(
            error_code, f"QFEX answered with an error ({shorten(error_code, 60)}); the dashboard will try again."
        )
        super().__init__(detail, user_message=user_message or fallback)


class AccountActionRequired(ExchangeError):
    """QFEX refused a read until someone acts on the account in QFEX's web app.

    ``KycRequired`` (identity verification), ``TncRequired`` (terms and conditions) and
    ``PermissionDenied`` (the key lacks the permission) on a read: retrying will not help until a person
    does something, so callers should say what and stop hammering. ``error_code`` and ``message`` are the
    exchange's; ``user_message`` says what to do.
    """

    ACTIONS = {
        "KycRequired": "QFEX needs identity verification (KYC) on this account before its orders can be read: "
        "complete it in QFEX's web app.",
        "TncRequired": "QFEX needs this account to accept its terms and conditions before its orders can be read: "
        "accept them in QFEX's web app.",
        "PermissionDenied": "QFEX refused to show this account's orders to this API key: give the key read "
        "permission in QFEX's web app, or use a key that has it.",
    }

    def __init__(self, error_code: str, message: str | None = None, *, user_message: str | None = None) -> None:
        super().__init__(error_code, message, user_message=user_message or self.ACTIONS.get(error_code))


ACCOUNT_ACTION_CODES = frozenset(AccountActionRequired.ACTIONS)


class InvalidParameter(ExchangeError):
    """QFEX rejected the request's parameters (``InvalidParameter`` or ``InvalidJSONFormat``)."""

    def __init__(self, error_code: str, message: str | None = None, *, user_message: str | None = None) -> None:
        super().__init__(
            error_code,
            message,
            user_message=user_message
            or "QFEX rejected the dashboard's request as invalid — this is a dashboard problem; please report it.",
        )


class RateLimited(ExchangeError):
    """QFEX's rate limit tripped. ``retry_after`` is the exchange's hint in seconds, or None."""

    def __init__(self, retry_after: float | None = None, message: str | None = None) -> None:
        self.retry_after = retry_after
        user = "QFEX is limiting how often this account can be read; the dashboard will "
        user += "slow down and retry." if retry_after is None else f"retry in {retry_after:g} s."
        super().__init__("RateLimited", message, user_message=user)


class QfexTimeout(QfexError):
    """Connecting, signing in or a reply took longer than the session's timeout."""

    default_user_message = "QFEX did not answer in time; the dashboard will try again."


class ConnectionFailed(QfexError):
    """The connection could not be opened: refused, reset, HTTP status other than 101, or a redirect."""

    default_user_message = "Could not connect to QFEX; the dashboard will try again."

    def __init__(self, message: str = "", *, status: int | None = None, user_message: str | None = None) -> None:
        super().__init__(message, user_message=user_message)
        self.status = status


class InvalidURL(ConnectionFailed, ValueError):
    """The configured QFEX URL is unusable (not ws:// or wss://, no host, credentials in it, bad port).

    Also a ``ValueError``, since it is raised for a bad argument when the session is created.
    """

    default_user_message = "The configured QFEX address is not a valid ws:// or wss:// URL — check it."


class ConnectionLost(QfexError):
    """The connection closed or reset after it was open."""

    default_user_message = "The connection to QFEX dropped; the dashboard will reconnect."


class ProtocolError(QfexError):
    """QFEX sent something outside the protocol: malformed JSON, wrong schema, oversized or binary frame."""

    default_user_message = "QFEX sent data the dashboard could not understand; the dashboard will try again."


class ForbiddenMessage(QfexError):
    """Something tried to send a message type outside the read-only allow-list; nothing was sent."""

    default_user_message = "The dashboard refused to send a trading command to QFEX — it is read-only."


class PagingIncomplete(QfexError):
    """The order book changed so fast that paging could not prove it saw every order."""

    default_user_message = "QFEX's order list changed too fast to read consistently; the dashboard will try again."


# ---------------------------------------------------------------------------------------------------
# Error frames
# ---------------------------------------------------------------------------------------------------

_FLAT_ERROR_TYPES = frozenset({"error", "Err", "err"})
_AUTH_REJECTION_CODES = frozenset({"PermissionDenied", "InvalidParameter", "InvalidJSONFormat"})
_INVALID_PARAMETER_CODES = frozenset({"InvalidParameter", "InvalidJSONFormat"})
_RETRY_AFTER_IN_TEXT = re.compile(
    r"retry[\s_-]*(?:after|in)\D{0,20}?(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?)?\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ErrorFrame:
    """A QFEX error frame in either shape, reduced to what the client needs."""

    error_code: str
    message: str | None
    incoming_type: str | None
    retry_after: float | None

    def to_exception(self, *, during: str) -> QfexError:
        """The exception for this error, given the request type that was waiting (``during``)."""
        if self.error_code == "RateLimited":
            return RateLimited(self.retry_after, self.message)
        if during == "auth" and self.error_code in _AUTH_REJECTION_CODES:
            detail = f"auth refused: {self.error_code}" + (f": {shorten(self.message)}" if self.message else "")
            return AuthenticationRejected(detail, error_code=self.error_code)
        if self.error_code in _INVALID_PARAMETER_CODES:
            return InvalidParameter(self.error_code, self.message)
        if self.error_code in ACCOUNT_ACTION_CODES:
            return AccountActionRequired(self.error_code, self.message)
        return ExchangeError(self.error_code, self.message)


def is_error_frame(frame: Mapping[str, Any]) -> bool:
    """True for ``{"err": ...}`` and for the old flat ``{"type": "error"|"Err"|"err", ...}``."""
    return "err" in frame or frame.get("type") in _FLAT_ERROR_TYPES


def parse_error_frame(frame: Mapping[str, Any]) -> ErrorFrame:
    """Read an error frame defensively; every field may be missing or of the wrong type."""
    body: Any = frame.get("err") if "err" in frame else frame
    if isinstance(body, str):
        body = {"message": body}
    elif not isinstance(body, Mapping):
        body = {}
    code = body.get("error_code")
    code = code if isinstance(code, str) and code else "Unknown"
    message = body.get("message")
    message = shorten(message) if isinstance(message, str) and message else None
    incoming = body.get("incoming_message")
    if isinstance(incoming, str):
        incoming = _json_object(incoming)  # some versions echo the request as JSON text
    incoming_type = incoming.get("type") if isinstance(incoming, Mapping) else None
    if not isinstance(incoming_type, str):
        incoming_type = None
    retry_after = _retry_after(body, message) if code == "RateLimited" else None
    return ErrorFrame(code, message, incoming_type, retry_after)


def _json_object(text: str) -> Mapping[str, Any] | None:
    """``text`` parsed when it is a (small) JSON object; None for anything else (treated as unknown)."""
    if len(text) > 64 * 1024:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, Mapping) else None


def _retry_after(body: Mapping[str, Any], message: str | None) -> float | None:
    """The exchange's retry hint in seconds. Its field name is undocumented, so try the plausible ones."""
    for field, scale in (("retry_after", 1), ("retry_after_secs", 1), ("retry_after_ms", 1000)):
        seconds = _non_negative_number(body.get(field))
        if seconds is not None:
            return seconds / scale
    if message:
        match = _RETRY_AFTER_IN_TEXT.search(message)
        if match:
            value = float(match.group(1))
            unit = (match.group(2) or "s").lower()
            return value / 1000 if unit.startswith("m") else value
    return None


def _non_negative_number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(Decimal(str(value))) if isinstance(value, str) else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, InvalidOperation):
        return None
    return number if math.isfinite(number) and number >= 0 else None
