"""Typed, tolerant records for QFEX orders and TWAPs, and the parsing of ``get_user_orders`` replies.

Every field is optional: QFEX's documentation is incomplete and has changed shape several times
(docs/qfex-protocol.md §3), so a missing field, or one of the wrong type, becomes ``None`` while the object
as received stays in ``raw``. Numbers are ``Decimal`` exactly as sent. Unknown fields go to ``extra``.

Bounds (S24). Exchange data is not trusted to be sane: a 10-byte JSON number such as ``1e10000000``
would become a ten-million-digit string when shown, and a text field could be megabytes long. So:

* :func:`loads` never builds a number with more than :data:`MAX_SIGNIFICANT_DIGITS` significant digits
  or an exponent beyond ±:data:`MAX_EXPONENT` (nor any number text longer than
  :data:`_MAX_NUMBER_TEXT`): it puts an :class:`OutOfBounds` marker there instead, judged from the text
  before any ``Decimal`` arithmetic;
* a record holding such a number, a string longer than :data:`MAX_STRING_LENGTH` characters, or more
  than :data:`MAX_RECORD_BYTES` of data is *refused*: it keeps only its id, and ``refused`` says why in
  words. The feed shows it as a marked row and the rest of the book as usual. Each distinct reason is
  logged once per process (never the value itself).
"""

from __future__ import annotations

import calendar
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from .errors import ProtocolError

logger = logging.getLogger(__name__)
_Record = TypeVar("_Record", "Order", "Twap")  # what _refused and _build make

# ---------------------------------------------------------------------------------------------------
# JSON with exact numbers
# ---------------------------------------------------------------------------------------------------


MAX_SIGNIFICANT_DIGITS = 40
MAX_EXPONENT = 30
MAX_STRING_LENGTH = 256
MAX_RECORD_BYTES = 8 * 1024
_MAX_NUMBER_TEXT = 2 * MAX_SIGNIFICANT_DIGITS + 16  # longer number texts are refused unread


class OutOfBounds:
    """Stands in for a JSON number outside the bounds; the number itself was never built."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<OutOfBounds: {self.reason}>"


_TOO_MANY_DIGITS = OutOfBounds(f"a number with more than {MAX_SIGNIFICANT_DIGITS} significant digits")
_HUGE_EXPONENT = OutOfBounds(f"a number beyond 10^±{MAX_EXPONENT}")


def _bounded_number(text: str) -> Decimal | OutOfBounds:
    """``parse_float``/``parse_int``: a Decimal, or a marker when the text is out of bounds.

    Judged on the text first (length, digits, exponent), so ``1e10000000`` costs nothing.
    """
    if len(text) > _MAX_NUMBER_TEXT:
        return _TOO_MANY_DIGITS
    mantissa, _e, exponent_text = text.lower().partition("e")
    digits = mantissa.lstrip("+-").replace(".", "", 1).lstrip("0")
    if len(digits.rstrip("0")) > MAX_SIGNIFICANT_DIGITS:
        return _TOO_MANY_DIGITS
    if exponent_text and len(exponent_text.lstrip("+-").lstrip("0")) > 4:
        return _HUGE_EXPONENT
    number = Decimal(text)
    if number and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        return _HUGE_EXPONENT
    return number


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python accepts them by default.
    raise ValueError(f"non-standard JSON constant {name}")


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every number exact: integers and fractions become ``Decimal``.

    A number outside the bounds (S24) becomes an :class:`OutOfBounds` marker instead.
    """
    return json.loads(text, parse_float=_bounded_number, parse_int=_bounded_number, parse_constant=_reject_constant)


def decimal_default(value: object) -> Any:
    """``default=`` hook for ``orjson.dumps``: writes a ``Decimal`` as a JSON number, digit for digit."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("cannot encode a non-finite Decimal as JSON")
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Encode ``value`` (e.g. ``order.to_json()``) as JSON bytes; Decimals are written without loss."""
    return orjson.dumps(value, default=decimal_default)


# ---------------------------------------------------------------------------------------------------
# Field converters: each returns None for a wrong type instead of raising
# ---------------------------------------------------------------------------------------------------

_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ISO_8601 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<fraction>\d+))?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_LARGEST_INT = 10**18  # counts beyond this are nonsense and int() of a huge exponent would eat memory


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None


def _as_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if abs(value) < _LARGEST_INT else None
    number = _as_decimal(value)
    if number is None or abs(number) >= _LARGEST_INT or number != number.to_integral_value():
        return None
    return int(number)


def _as_timestamp(value: object) -> Decimal | None:
    """Epoch seconds from a number, a numeric string or an ISO-8601/RFC 3339 string (naive = UTC)."""
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_TEXT.fullmatch(text):
            return Decimal(text)
        return _iso_to_epoch(text)
    return _as_decimal(value)


def _iso_to_epoch(text: str) -> Decimal | None:
    match = _ISO_8601.fullmatch(text)
    if not match:
        return None
    zone = match["zone"] or ""
    if zone in ("Z", "z"):
        zone = "+00:00"
    elif zone and ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:] or '00'}"
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time'] or '00:00'}{zone}")
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    seconds = Decimal(calendar.timegm(parsed.timetuple()))
    # Fractions are added as exact decimals: datetime would truncate beyond microseconds.
    fraction = match["fraction"]
    return seconds + Decimal(f"0.{fraction}") if fraction else seconds


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """One open order (the ``orders[]`` item of ``all_orders_response``, same as ``order_response``)."""

    order_id: str | None = None
    symbol: str | None = None
    status: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    side: str | None = None
    type: str | None = None
    time_in_force: str | None = None
    user_id: str | None = None
    client_order_id: str | None = None
    quantity_remaining: Decimal | None = None
    update_time: Decimal | None = None
    trade_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    raw: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)
    # Why the record was refused (S24), in words; only its id is kept then. None for a normal record.
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The order exactly as received (a copy); encode it with :func:`dumps` to keep numbers exact."""
        return {key: _copy_json(value) for key, value in self.raw.items()}


@dataclass(frozen=True)
class Twap:
    """One active TWAP (the ``twaps[]`` item of ``all_orders_response``). ``status`` is an opaque string."""

    twap_id: str | None = None
    client_twap_id: str | None = None
    user_id: str | None = None
    status: str | None = None
    symbol: str | None = None
    total_quantity: Decimal | None = None
    filled_quantity: Decimal | None = None
    average_fill_price: Decimal | None = None
    total_num_orders: int | None = None
    order_interval_secs: int | None = None
    reduce_only: bool | None = None
    side: str | None = None
    created_at: Decimal | None = None
    updated_at: Decimal | None = None
    filled_num_orders: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    raw: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The TWAP exactly as received (a copy); encode it with :func:`dumps` to keep numbers exact."""
        return {key: _copy_json(value) for key, value in self.raw.items()}


@dataclass(frozen=True)
class OrdersSnapshot:
    """Every open order and active TWAP of one account, as gathered by ``fetch_open_orders``.

    ``fetched_at`` is the Unix time at which the first page was requested (the data is at least this fresh).
    """

    orders: tuple[Order, ...]
    twaps: tuple[Twap, ...]
    fetched_at: float
    pages: int

    def to_json(self) -> dict[str, Any]:
        return {
            "orders": [order.to_json() for order in self.orders],
            "twaps": [twap.to_json() for twap in self.twaps],
            "fetched_at": self.fetched_at,
            "pages": self.pages,
        }


@dataclass(frozen=True)
class Page:
    """One parsed ``get_user_orders`` reply. ``received`` counts the ``orders`` array as sent, for paging."""

    orders: list[Order]
    twaps: list[Twap]
    received: int
    skipped: int = 0


_ORDER_FIELDS: dict[str, Callable[[object], Any]] = {
    "order_id": _as_str,
    "symbol": _as_str,
    "status": _as_str,
    "quantity": _as_decimal,
    "price": _as_decimal,
    "take_profit": _as_decimal,
    "stop_loss": _as_decimal,
    "side": _as_str,
    "type": _as_str,
    "time_in_force": _as_str,
    "user_id": _as_str,
    "client_order_id": _as_str,
    "quantity_remaining": _as_decimal,
    "update_time": _as_timestamp,
    "trade_id": _as_str,
}
# The legacy StopOrder object (stop_orders[] / stop_order_response) names three fields differently.
_ORDER_ALIASES = {"stop_order_id": "order_id", "direction": "side", "stop_order_type": "type"}

_TWAP_FIELDS: dict[str, Callable[[object], Any]] = {
    "twap_id": _as_str,
    "client_twap_id": _as_str,
    "user_id": _as_str,
    "status": _as_str,
    "symbol": _as_str,
    "total_quantity": _as_decimal,
    "filled_quantity": _as_decimal,
    "average_fill_price": _as_decimal,
    "total_num_orders": _as_int,
    "order_interval_secs": _as_int,
    "reduce_only": _as_bool,
    "side": _as_str,
    "created_at": _as_timestamp,
    "updated_at": _as_timestamp,
    "filled_num_orders": _as_int,
}


def parse_order(item: Mapping[str, Any]) -> Order:
    """Build an :class:`Order` from one JSON object; never raises for odd field values."""
    refused = _out_of_bounds(item)
    if refused is not None:
        return _refused(Order, "order_id", item, refused, _ORDER_ALIASES)
    return _build(Order, _ORDER_FIELDS, item, _ORDER_ALIASES)


def parse_twap(item: Mapping[str, Any]) -> Twap:
    """Build a :class:`Twap` from one JSON object; never raises for odd field values."""
    refused = _out_of_bounds(item)
    if refused is not None:
        return _refused(Twap, "twap_id", item, refused, None)
    return _build(Twap, _TWAP_FIELDS, item, None)


_logged_reasons: set[str] = set()
_MAX_LOGGED_REASONS = 256


def log_refusal_once(reason: str) -> None:
    """Log a refusal reason the first time it is seen in this process (reasons are our words, never values)."""
    if reason in _logged_reasons or len(_logged_reasons) >= _MAX_LOGGED_REASONS:
        return
    _logged_reasons.add(reason)
    logger.warning("refused a record from QFEX: %s (further records refused for this reason are not logged)", reason)


def _out_of_bounds(item: Mapping[str, Any]) -> str | None:
    """Why the record breaks a bound, in words, or None. Stops at the first problem and after 8 KiB."""
    budget = [MAX_RECORD_BYTES]
    return _walk(item, budget, None)


def _walk(value: Any, budget: list[int], name: str | None) -> str | None:
    kind = type(value)
    if kind is str:
        budget[0] -= len(value) + 2
        if len(value) > MAX_STRING_LENGTH:
            where = f"field {name!r}" if name else "a field"
            return f"a text longer than {MAX_STRING_LENGTH} characters in {where}"
    elif kind is OutOfBounds:
        return str(value.reason) + (f" in field {name!r}" if name else "")
    elif kind is dict:
        for key, item in value.items():
            budget[0] -= len(key) + 4
            if len(key) > MAX_STRING_LENGTH:
                return f"a field name longer than {MAX_STRING_LENGTH} characters"
            reason = _walk(item, budget, key if name is None and key in _KNOWN_NAMES else name)
            if reason is not None:
                return reason
    elif kind is list:
        for item in value:
            reason = _walk(item, budget, name)
            if reason is not None:
                return reason
    else:
        budget[0] -= 8
    if budget[0] < 0:
        return f"a record larger than {MAX_RECORD_BYTES // 1024} KiB"
    return None


def _refused(cls: type[_Record], id_field: str, item: Mapping[str, Any], reason: str, aliases: Any) -> _Record:
    """A record that keeps only its id (when that id is usable) and why it was refused."""
    record_id: Any = item.get(id_field)
    if aliases is not None and type(record_id) is not str:
        record_id = next((item[a] for a, n in aliases.items() if n == id_field and a in item), None)
    if type(record_id) is not str or not record_id or len(record_id) > MAX_STRING_LENGTH:
        record_id = None
        log_refusal_once(f"{reason}; the record has no usable id, so it is left out")
    else:
        log_refusal_once(reason)
    record = cls(**{id_field: record_id}, raw={id_field: record_id, "refused": reason}, refused=reason)
    return record


def _build(
    cls: type[_Record], fields: dict[str, Callable[[object], Any]], item: Mapping[str, Any], aliases: Any
) -> _Record:
    # A page holds up to 1000 orders and is parsed on every refresh, so this loop is kept tight:
    # the common cases (a str field holding a str, a number field holding a Decimal) are inlined.
    values: dict[str, Any] = dict.fromkeys(fields)
    extra: dict[str, Any] = {}
    for key, value in item.items():
        convert = fields.get(key)
        if convert is _as_str:
            values[key] = value if type(value) is str else None
        elif convert is _as_decimal and type(value) is Decimal and value.is_finite():
            values[key] = value
        elif convert is not None:
            values[key] = convert(value)
        elif aliases is None or key not in aliases:
            extra[key] = value
    if aliases is not None:
        for alias, name in aliases.items():
            if values[name] is None and alias in item:
                values[name] = _as_str(item[alias])
    values["extra"] = extra
    values["raw"] = dict(item)
    values["refused"] = None
    # Every field is set here, so the frozen dataclass's __init__ (one object.__setattr__ per field,
    # about half the cost of parsing) is skipped; the instance is indistinguishable from a constructed one.
    record = object.__new__(cls)
    record.__dict__.update(values)
    return record


_KNOWN_NAMES = frozenset(_ORDER_FIELDS) | frozenset(_TWAP_FIELDS) | frozenset(_ORDER_ALIASES)

_KNOWN_REPLY_BODY_KEYS = frozenset({"orders", "twaps", "stop_orders", "timestamp", "count"})


def parse_orders_page(message: Mapping[str, Any]) -> Page:
    """Parse a ``get_user_orders`` reply in any known shape (docs/qfex-protocol.md §3.2).

    Accepts ``{"all_orders_response": {"orders", "twaps"?, "stop_orders"?}}`` and the original
    ``{"user_orders": [...], "count": n}``. Items that are not objects are skipped and counted.
    Raises :class:`ProtocolError` when the reply as a whole has the wrong shape.
    """
    if "all_orders_response" in message:
        body = message["all_orders_response"]
        if not isinstance(body, Mapping):
            raise ProtocolError("all_orders_response is not an object")
        raw_orders = body.get("orders")
        if raw_orders is None:
            # Seen from exchanges that drop empty arrays: an empty page, not a broken reply.
            logger.warning("all_orders_response has no orders array (missing or null); read as no open orders")
            raw_orders = []
        elif not isinstance(raw_orders, list):
            raise ProtocolError("all_orders_response.orders is not a list")
        raw_twaps = body.get("twaps")
        if raw_twaps is None:
            raw_twaps = []
        elif not isinstance(raw_twaps, list):
            raise ProtocolError("all_orders_response.twaps is not a list")
        raw_stop_orders = body.get("stop_orders")
        if raw_stop_orders is not None and not isinstance(raw_stop_orders, list):
            logger.warning("ignoring all_orders_response.stop_orders: not a list")
            raw_stop_orders = None
        unknown = [key for key in body if key not in _KNOWN_REPLY_BODY_KEYS]
        if unknown:
            logger.debug("all_orders_response has unknown keys %s", sorted(unknown)[:10])
    elif "user_orders" in message:
        raw_orders = message["user_orders"]
        if not isinstance(raw_orders, list):
            raise ProtocolError("user_orders is not a list")
        raw_twaps, raw_stop_orders = [], None
    else:
        raise ProtocolError("not a get_user_orders reply")

    skipped = 0
    orders: list[Order] = []
    for item in raw_orders if not raw_stop_orders else [*raw_orders, *raw_stop_orders]:
        if isinstance(item, Mapping):
            orders.append(parse_order(item))
        else:
            skipped += 1
    twaps: list[Twap] = []
    for item in raw_twaps:
        if isinstance(item, Mapping):
            twaps.append(parse_twap(item))
        else:
            skipped += 1
    if skipped:
        logger.warning("skipped %d order/TWAP items that were not JSON objects", skipped)
    return Page(orders=orders, twaps=twaps, received=len(raw_orders), skipped=skipped)


def parse_all_orders_reply(message: Mapping[str, Any]) -> tuple[list[Order], list[Twap]]:
    """Orders and TWAPs of one ``get_user_orders`` reply (any shape); see :func:`parse_orders_page`."""
    page = parse_orders_page(message)
    return page.orders, page.twaps
