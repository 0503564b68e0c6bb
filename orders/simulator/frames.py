"""Frames the simulator sends besides order pages: errors, auth replies and the F5/F8 oddities."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from .faults import Faults

# Keys whose values are never echoed back or recorded, wherever they appear in a received message.
_SENSITIVE_KEYS = frozenset({"signature", "secret", "secret_key", "api_secret", "jwt", "hmac", "password"})
REDACTED = "[redacted]"


def scrub(value: object) -> object:
    """A copy of a received JSON value with anything that could be a credential replaced."""
    if isinstance(value, Mapping):
        return scrub_object(value)
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def scrub_object(message: Mapping[str, object]) -> dict[str, object]:
    """`scrub` of a JSON object."""
    return {k: (REDACTED if k in _SENSITIVE_KEYS else scrub(v)) for k, v in message.items()}


def incoming_echo(message: object) -> dict[str, object] | None:
    """The `incoming_message` echo of a request: its type and (scrubbed) params, never an auth's contents."""
    if not isinstance(message, Mapping):
        return None
    if message.get("type") == "auth":
        return {"type": "auth"}
    echo: dict[str, object] = {"type": message.get("type")}
    if "params" in message:
        echo["params"] = scrub(message["params"])
    return echo


def error_reply(faults: Faults, code: str, message: str | None, request: object = None, **extra: object) -> bytes:
    """The error frame answering `request` (None: a frame that was no request), in the shapes `faults` ask for."""
    echo: dict[str, object] | str | None = incoming_echo(request)
    if echo is not None and faults.incoming_message_as_string:
        echo = json.dumps(echo)
    return error_frame(faults.error_shape, code, message, echo, **extra)


def error_frame(
    shape: str, code: str, message: str | None, incoming: dict[str, object] | str | None = None, **extra: object
) -> bytes:
    """`{"err": {...}}` (current) or the older flat `{"type": "error", ...}` (docs/qfex-protocol.md §3.6)."""
    body: dict[str, object] = {"error_code": code, "message": message}
    if incoming is not None:
        body["incoming_message"] = incoming
    body.update(extra)
    if shape == "flat":
        return orjson.dumps({"type": "error", **body})
    return orjson.dumps({"err": body})


def without_orders_array(reply: bytes, *, null: bool) -> bytes:
    """An all_orders_response with its `orders` array removed (or null); other shapes are returned as they are."""
    try:
        message = orjson.loads(reply)
    except orjson.JSONDecodeError:
        return reply
    body = message.get("all_orders_response") if isinstance(message, dict) else None
    if not isinstance(body, dict):
        return reply
    if null:
        body["orders"] = None
    else:
        body.pop("orders", None)
    return orjson.dumps(message)


def auth_success_frame(shape: str) -> bytes:
    if shape == "legacy":
        return orjson.dumps({"type": "auth", "result": "success"})
    return orjson.dumps({"authenticated": True})


def text_frame_header(length: int) -> bytes:
    """RFC 6455 header of an unmasked, final text frame (server to client) carrying `length` bytes."""
    if length < 126:
        return bytes((0x81, length))
    if length < 1 << 16:
        return bytes((0x81, 126)) + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


MALFORMED_REPLY = b'{"all_orders_response": {"orders": [{"order_id": "7a1c", "price": 187.2'
WRONG_SCHEMA_REPLY = orjson.dumps({"all_orders_response": {"orders": {"order_id": 12345}, "twaps": "none"}})


def padded_reply(reply: dict[str, Any], size: int) -> bytes:
    """A current-shape reply padded with an extra `padding` field to exactly `size` bytes (when larger)."""
    inner = dict(reply.get("all_orders_response", {}))
    inner["padding"] = ""
    base = orjson.dumps({"all_orders_response": inner})
    if len(base) >= size:
        return base
    inner["padding"] = "x" * (size - len(base))
    return orjson.dumps({"all_orders_response": inner})


def unrelated_frames(user_id: str, connection_id: str, message_id: int, stale: dict[str, Any] | None) -> list[bytes]:
    """Frames a client must skip while waiting for a reply: a balance and a position push, the legacy
    envelope and an outdated order_response."""
    balance = {
        "id": connection_id,
        "user_id": user_id,
        "deposit": 100000.0,
        "realised_pnl": 1250.5,
        "order_margin": 3200.0,
        "position_margin": 5400.25,
        "unrealised_pnl": -310.75,
        "net_funding": -12.5,
        "available_balance": 91399.25,
    }
    position = {
        "id": connection_id,
        "symbol": "AAPL-USD",
        "position": 12.5,
        "margin_alloc": 468.13,
        "realised_pnl": 0.0,
        "unrealised_pnl": 15.0,
        "net_funding": -0.42,
        "open_orders": 2,
        "open_quantity": 3.0,
        "leverage": 5.0,
        "initial_margin": 468.13,
        "maintenance_margin": 234.06,
        "average_price": 187.25,
    }
    envelope = {
        "type": "subscribed",
        "connection_id": connection_id,
        "message_id": message_id,
        "channel": "v4_balances",
        "id": 1,
        "contents": [balance],
    }
    frames = [
        orjson.dumps({"balance_response": balance}),
        orjson.dumps({"position_response": position}),
        orjson.dumps(envelope),
    ]
    if stale is not None:
        frames.append(orjson.dumps({"order_response": stale}))
    return frames
