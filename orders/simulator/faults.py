"""Run-time switches that make the simulator misbehave the way a real exchange sometimes does.

Every field can be changed while the simulator runs (`sim.faults.reply_delay = 2.0` from a test thread):
assignments are validated here, and the server reads the current value each time it needs one, so a plain
attribute write is all the synchronisation needed. Unless a field's comment says otherwise, a change applies
to the next message handled; `max_lifetime` and `auth_deadline` are read when a connection opens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

RESPONSE_SHAPES = ("current", "mid", "legacy")
AUTH_SUCCESS_SHAPES = ("current", "legacy")
ERROR_SHAPES = ("nested", "flat")
AUTH_FAILURE_STYLES = ("err", "authenticated_false", "close")
# Error codes the simulator can answer a get_user_orders with ("" = none): the ones that need a person to act.
READ_ERROR_CODES = ("", "KycRequired", "TncRequired", "PermissionDenied", "ServerError")
ORDERS_ARRAY_STYLES = ("present", "missing", "null")

_CHOICES: dict[str, tuple[str, ...]] = {
    "response_shape": RESPONSE_SHAPES,
    "auth_success_shape": AUTH_SUCCESS_SHAPES,
    "error_shape": ERROR_SHAPES,
    "auth_failure_style": AUTH_FAILURE_STYLES,
    "read_error_code": READ_ERROR_CODES,
    "orders_array": ORDERS_ARRAY_STYLES,
}
# Fields that must be strictly positive (the rest of the numeric fields only need to be >= 0).
_POSITIVE = frozenset({"rate_limit_weight", "rate_limit_window", "auth_deadline", "page_cap"})
_MAX_PAGE_CAP = 1000
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass
class Faults:
    """Fault switches (F1-F12 of the design) and reply shapes. All default to a well-behaved exchange."""

    # F1: answer the WebSocket upgrade with HTTP 503 / reset the TCP connection before the upgrade completes.
    refuse_handshake: bool = False
    reset_handshake: bool = False
    # Extra (not in the contract): accept TCP but never answer the HTTP upgrade request.
    silent_handshake: bool = False
    # F2: send part of the get_user_orders reply frame, then reset the TCP connection.
    drop_mid_reply: bool = False
    # F3: seconds to wait before each get_user_orders reply.
    reply_delay: float = 0.0
    # F4: complete the WebSocket handshake, then never send anything and process nothing. A connection opened
    # while this is on stays silent for its whole life; others go quiet only while it is on.
    silent: bool = False
    # F5: replace the get_user_orders reply with invalid JSON / valid JSON of the wrong schema /
    # a valid reply padded to exactly this many bytes (0 = off).
    malformed_json: bool = False
    wrong_schema: bool = False
    oversized_reply_bytes: int = 0
    # F6: every auth attempt fails.
    reject_auth: bool = False
    # F7: per-user token bucket: `rate_limit_weight` units refilled over `rate_limit_window` seconds.
    rate_limit_weight: float = 12_000.0
    rate_limit_window: float = 60.0
    # The retry-after hint sent with RateLimited, in seconds (0 = the bucket's true refill time); a hostile
    # exchange may say anything, e.g. 1e9.
    rate_limit_retry_after: float = 0.0
    # F8: send each get_user_orders reply twice / precede every reply after auth with unrelated frames
    # (balance, position, legacy envelope and a stale order_response).
    duplicate_replies: bool = False
    unrelated_frames: bool = False
    # Wire shapes seen in QFEX's material over time (docs/qfex-protocol.md §2.6, §3.2, §3.6).
    response_shape: str = "current"
    auth_success_shape: str = "current"
    error_shape: str = "nested"
    auth_failure_style: str = "err"
    # Extra (not in the contract): send no order_response pushes at all (changes then show only through
    # get_user_orders), as if the exchange lost them.
    drop_pushes: bool = False
    # F11: close every connection this many seconds after it opened (0 = off).
    max_lifetime: float = 0.0
    # F12: after each get_user_orders reply, add and remove this many orders of that book (0 = off).
    page_mutation: int = 0
    # Most orders returned per page, whatever `limit` asks (QFEX's documented default and cap is 1000);
    # set it lower to test clients against a server that caps pages below what they ask for.
    page_cap: int = 1000
    # Seconds a new connection has to authenticate before the server closes it.
    auth_deadline: float = 60.0
    # Exchange-boundary cases (issue 13): answer every get_user_orders with this error code ("" = off); send
    # the all_orders_response without its `orders` array or with `orders: null`; echo `incoming_message` in
    # error frames as JSON text instead of an object; close the connection right after a successful login.
    read_error_code: str = ""
    orders_array: str = "present"
    incoming_message_as_string: bool = False
    close_after_auth: bool = False

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, _validated(name, value))

    def set_from_text(self, name: str, text: str) -> None:
        """Set a field from command-line text such as `reply_delay=2.5`'s `"2.5"`; ValueError on bad input."""
        object.__setattr__(self, name, _parse(name, text))

    def reset(self) -> None:
        """Switch every fault off again (back to the defaults)."""
        for field in fields(self):
            setattr(self, field.name, field.default)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(field.name for field in fields(cls))


def _field_type(name: str) -> type:
    for field in fields(Faults):
        if field.name == name:
            return type(field.default)
    raise ValueError(f"unknown fault {name!r}; known faults: {', '.join(Faults.names())}")


def _validated(name: str, value: object) -> object:
    kind = _field_type(name)
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"fault {name} must be true or false")
        return value
    if kind is str:
        choices = _CHOICES[name]
        if value not in choices:
            raise ValueError(f"fault {name} must be one of {', '.join(choices)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {name} must be a number")
    if kind is int and not (isinstance(value, int) or float(value).is_integer()):
        raise ValueError(f"fault {name} must be a whole number")
    if not math.isfinite(value) or value < 0 or (name in _POSITIVE and value == 0):
        raise ValueError(f"fault {name} must be {'greater than 0' if name in _POSITIVE else '0 or more'}")
    if name == "page_cap" and value > _MAX_PAGE_CAP:
        raise ValueError(f"fault page_cap must be at most {_MAX_PAGE_CAP}")
    return kind(value)


def _parse(name: str, text: str) -> object:
    kind = _field_type(name)
    word = text.strip()
    if kind is bool:
        if word.lower() in _TRUE_WORDS:
            return True
        if word.lower() in _FALSE_WORDS:
            return False
        raise ValueError(f"fault {name} must be true or false, not {word!r}")
    if kind is str:
        return _validated(name, word)
    try:
        number = int(word) if kind is int else float(word)
    except ValueError:
        raise ValueError(f"fault {name} must be a {'whole ' if kind is int else ''}number, not {word!r}") from None
    return _validated(name, number)
