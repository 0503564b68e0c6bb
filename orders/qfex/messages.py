"""Outgoing messages (built only from the read-only allow-list) and the classification of incoming frames.

qfexdash is read-only. A single ``cancel_on_disconnect`` on a dashboard socket would cancel every open
order of the account when the dashboard restarts, so every outgoing message passes
:func:`encode_outgoing`, which refuses any type outside :data:`ALLOWED_MESSAGE_TYPES` before anything
is written. The transport checks the same list again on the raw frame (defence in depth).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ErrorFrame, ForbiddenMessage, ProtocolError, is_error_frame, parse_error_frame, shorten
from .records import loads

ALLOWED_MESSAGE_TYPES: frozenset[str] = frozenset({"auth", "subscribe", "unsubscribe", "get_user_orders"})

MAX_PAGE_LIMIT = 1000  # QFEX's documented default; larger limits are capped or refused


def message_type(message: object) -> str | None:
    """The ``type`` of an outgoing message, or None when it has none."""
    if isinstance(message, Mapping):
        kind = message.get("type")
        return kind if isinstance(kind, str) else None
    return None


def ensure_allowed(message: object) -> str:
    """Return the message's type, or raise :class:`ForbiddenMessage` if it may not be sent."""
    kind = message_type(message)
    if kind not in ALLOWED_MESSAGE_TYPES:
        raise ForbiddenMessage(f"refused to send message type {shorten(kind, 60)!r}: not in the read-only allow-list")
    return kind


def encode_outgoing(message: Mapping[str, Any]) -> str:
    """Check the allow-list, then serialise ``message`` as compact JSON text."""
    ensure_allowed(message)
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def check_outgoing_text(text: str | bytes) -> None:
    """The allow-list check on an already serialised frame (used by the transport's lowest send)."""
    try:
        message = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ForbiddenMessage("refused to send a frame that is not a JSON message") from None
    ensure_allowed(message)


def get_user_orders_message(
    *, limit: int = MAX_PAGE_LIMIT, offset: int = 0, symbol: str | None = None
) -> dict[str, Any]:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ValueError(f"limit must be an int between 1 and {MAX_PAGE_LIMIT}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError("offset must be an int >= 0")
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if symbol is not None:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError("symbol must be a non-empty string or None")
        params["symbol"] = symbol
    return {"type": "get_user_orders", "params": params}


def channel_list(channels: Iterable[str]) -> list[str]:
    """Validate and de-duplicate channel names, keeping their order."""
    if isinstance(channels, str):
        raise TypeError("channels must be a list of names, not a string")
    names = list(dict.fromkeys(channels))
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError("channels must be a non-empty list of non-empty strings")
    return names


def subscribe_message(channels: list[str]) -> dict[str, Any]:
    return {"type": "subscribe", "params": {"channels": list(channels)}}


def unsubscribe_message(channels: list[str]) -> dict[str, Any]:
    return {"type": "unsubscribe", "params": {"channels": list(channels)}}


# ---------------------------------------------------------------------------------------------------
# Incoming frames
# ---------------------------------------------------------------------------------------------------

# Reply keys, recognised in this order. Replies carry no request id (docs/qfex-protocol.md §3.2), so the
# top-level key is all there is to match a reply to its request.
REPLY_KEYS = ("authenticated", "subscribed", "unsubscribed", "all_orders_response", "user_orders")
LEGACY_AUTH_REPLY = "auth_result"  # {"type": "auth", "result": "success"}
PUSH_KEY = "order_response"


@dataclass(frozen=True)
class Incoming:
    """A classified frame: ``kind`` is ``reply``, ``push``, ``error`` or ``other``."""

    kind: str
    key: str | None
    message: Mapping[str, Any]
    error: ErrorFrame | None = None


def decode_incoming(text: str) -> Mapping[str, Any]:
    """Parse one text frame; every QFEX frame is a JSON object."""
    try:
        message = loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"QFEX sent malformed JSON ({shorten(exc, 80)})") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"QFEX sent a JSON {type(message).__name__} where an object was expected")
    return message


def classify(message: Mapping[str, Any]) -> Incoming:
    if is_error_frame(message):
        return Incoming("error", None, message, parse_error_frame(message))
    for key in REPLY_KEYS:
        if key in message:
            return Incoming("reply", key, message)
    if message.get("type") == "auth" and "result" in message:
        return Incoming("reply", LEGACY_AUTH_REPLY, message)
    if PUSH_KEY in message:
        return Incoming("push", PUSH_KEY, message)
    return Incoming("other", None, message)


def describe(message: Mapping[str, Any]) -> str:
    """A tiny description for debug logs: the top-level keys only, never values."""
    keys = sorted(str(key) for key in message)[:6]
    kind = message.get("type")
    return f"keys={keys}" + (f" type={shorten(kind, 40)!r}" if isinstance(kind, str) else "")
