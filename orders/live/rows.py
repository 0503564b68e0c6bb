"""QFEX order and TWAP records → the table rows of the live protocol, and snapshot diffing.

Rows are plain dicts, ready for orjson: strings as received, decimals as exact decimal text
(``"187.25"``), times as epoch-second floats, and ``None`` for anything absent. Derived values are
computed here, once, with ``Decimal``:

- ``filled`` = ``quantity - quantity_remaining`` (exact);
- ``fill_pct`` = ``filled / quantity x 100`` and TWAP ``progress_pct`` = ``filled_quantity /
  total_quantity x 100``, cut (not rounded) to at most two decimals so a row never claims 100 %
  before it is done; trailing zeros dropped (``"60"``, ``"12.5"``, ``"33.33"``);
- ``notional`` = ``price x quantity`` (exact);
- TWAP ``estimated_end`` = ``created_at + (total_num_orders - 1) x order_interval_secs`` — ignores a
  delayed start, which QFEX does not report.

Any missing input (or a zero denominator) makes the derived value ``None``.

A record the client refused (S24: a number, text or record beyond the bounds in
:mod:`orders.qfex.records`) becomes a marked row: ``id``, ``account``, ``account_label`` and
``refused`` (the reason in words), every other field ``None``. A refused record without a usable id is
left out (the client logged why).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, DecimalException
from typing import Any

from orders.live.protocol import decimal_text

Row = dict[str, Any]

_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")


def _field(record: Any, name: str) -> Any:
    """A record attribute, or the same key in its ``extra`` dict for fields the client did not model."""
    value = getattr(record, name, None)
    if value is None:
        extra = getattr(record, "extra", None)
        if isinstance(extra, Mapping):
            value = extra.get(name)
    return value


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        number = Decimal(str(value))
    except (DecimalException, ValueError):
        return None
    return number if number.is_finite() else None


def _number_text(value: Any) -> str | None:
    number = _decimal(value)
    return None if number is None else decimal_text(number)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def _epoch(value: Any) -> float | None:
    number = _decimal(value)
    return None if number is None else float(number)


def _count(value: Any) -> int | float | None:
    """Integer fields (number of slices, interval seconds) as JSON numbers."""
    number = _decimal(value)
    if number is None:
        return None
    return int(number) if number == number.to_integral_value() else float(number)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def percent(part: Decimal | None, whole: Decimal | None) -> str | None:
    """``part / whole x 100`` cut to at most two decimals, as text without trailing zeros."""
    if part is None or whole is None or whole == 0:
        return None
    try:
        value = (part * _HUNDRED / whole).quantize(_CENT, rounding=ROUND_DOWN)
    except DecimalException:
        return None
    # normalize() drops trailing zeros ("60.00" → "60"); decimal_text avoids "6E+1".
    return decimal_text(value.normalize()) if value != 0 else "0"


_ROW_KEYS: dict[str, tuple[str, ...]] = {}


def _refused_row(kind: str, row_id: Any, account: int, account_label: str, reason: str) -> Row | None:
    if not isinstance(row_id, str) or not row_id:
        return None
    keys = _ROW_KEYS.get(kind)
    if keys is None:  # the keys of a normal row, so a refused row has exactly the same shape
        sample = _Sample(**{f"{kind}_id": "x"})
        keys = _ROW_KEYS[kind] = tuple((order_row if kind == "order" else twap_row)(sample, 0, "") or {})
    row: Row = dict.fromkeys(keys)
    row.update(id=row_id, account=account, account_label=account_label, refused=reason)
    return row


class _Sample:
    """A record with nothing but an id: what a row looks like with every field missing."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def order_row(order: Any, account: int, account_label: str) -> Row | None:
    """An ORDER_ROW, or None when the record has no ``order_id`` to key it by."""
    refused = getattr(order, "refused", None)
    if refused:
        return _refused_row("order", getattr(order, "order_id", None), account, account_label, refused)
    order_id = _text(_field(order, "order_id"))
    if not order_id:
        return None
    price = _decimal(_field(order, "price"))
    quantity = _decimal(_field(order, "quantity"))
    remaining = _decimal(_field(order, "quantity_remaining"))
    filled = quantity - remaining if quantity is not None and remaining is not None else None
    notional = price * quantity if price is not None and quantity is not None else None
    status = _text(_field(order, "status"))
    update_time = _epoch(_field(order, "update_time"))
    return {
        "id": order_id,
        "account": account,
        "account_label": account_label,
        "symbol": _text(_field(order, "symbol")),
        "side": _text(_field(order, "side")),
        "type": _text(_field(order, "type")),
        "time_in_force": _text(_field(order, "time_in_force")),
        "price": None if price is None else decimal_text(price),
        "quantity": None if quantity is None else decimal_text(quantity),
        "quantity_remaining": None if remaining is None else decimal_text(remaining),
        "filled": None if filled is None else decimal_text(filled),
        "fill_pct": percent(filled, quantity),
        "notional": None if notional is None else decimal_text(notional),
        "take_profit": _number_text(_field(order, "take_profit")),
        "stop_loss": _number_text(_field(order, "stop_loss")),
        "status": status,
        "client_order_id": _text(_field(order, "client_order_id")),
        "order_id": order_id,
        "update_time": update_time,
        # An unfilled ACK's update time is when the order was placed; later states keep it (see the feed).
        "placed_at": update_time if status == "ACK" and filled == 0 else None,
    }


def twap_row(twap: Any, account: int, account_label: str) -> Row | None:
    """A TWAP_ROW, or None when the record has no ``twap_id`` to key it by."""
    refused = getattr(twap, "refused", None)
    if refused:
        return _refused_row("twap", getattr(twap, "twap_id", None), account, account_label, refused)
    twap_id = _text(_field(twap, "twap_id"))
    if not twap_id:
        return None
    total = _decimal(_field(twap, "total_quantity"))
    filled = _decimal(_field(twap, "filled_quantity"))
    slices = _decimal(_field(twap, "total_num_orders"))
    interval = _decimal(_field(twap, "order_interval_secs"))
    created = _decimal(_field(twap, "created_at"))
    estimated_end = None
    if slices is not None and interval is not None and created is not None and slices >= 1:
        estimated_end = float(created + (slices - 1) * interval)
    return {
        "id": twap_id,
        "account": account,
        "account_label": account_label,
        "symbol": _text(_field(twap, "symbol")),
        "side": _text(_field(twap, "side")),
        "total_quantity": None if total is None else decimal_text(total),
        "filled_quantity": None if filled is None else decimal_text(filled),
        "progress_pct": percent(filled, total),
        "average_fill_price": _number_text(_field(twap, "average_fill_price")),
        "total_num_orders": _count(slices),
        "filled_num_orders": _count(_field(twap, "filled_num_orders")),
        "order_interval_secs": _count(interval),
        "estimated_end": estimated_end,
        "reduce_only": _bool(_field(twap, "reduce_only")),
        "status": _text(_field(twap, "status")),
        "client_twap_id": _text(_field(twap, "client_twap_id")),
        "twap_id": twap_id,
        "created_at": None if created is None else float(created),
        "updated_at": _epoch(_field(twap, "updated_at")),
    }


_CLOSED_FIELDS = ("id", "account", "account_label", "symbol", "side", "type", "price", "quantity", "client_order_id")
_FILL_PRICE_FIELDS = ("fill_price", "average_fill_price", "avg_fill_price", "average_price")


def fill_price_of(record: Any) -> Any:
    """A fill price QFEX sent with an order record, if any (``order_response`` documents none: it
    carries the limit price, not the price of the fill)."""
    return next((value for name in _FILL_PRICE_FIELDS if (value := _field(record, name)) is not None), None)


def closed_row(
    final: Row, *, status: str | None, outcome: str, reason: str, closed_at: float | None, fill_price: Any = None
) -> Row:
    """A CLOSED_ROW (see ``orders.live.protocol``) from the order's last row: the row of the push that
    closed it, or the last row seen when a reconcile proved it gone."""
    row: Row = {name: final.get(name) for name in _CLOSED_FIELDS}
    quantity = _decimal(final.get("quantity"))
    remaining = _decimal(final.get("quantity_remaining"))
    filled = quantity - remaining if quantity is not None and remaining is not None else _decimal(final.get("filled"))
    row.update(
        filled=None if filled is None else decimal_text(filled),
        status=status,
        outcome=outcome,
        reason=reason,
        closed_at=closed_at,
        fill_price=_number_text(fill_price),
    )
    return row


@dataclass(frozen=True)
class RowSet:
    """Rows keyed by id, and the record each was built from as QFEX sent it (``raw``).

    Passed back in as ``previous`` to the next build, it lets a fetch rebuild only the rows of records
    that changed: comparing a record's ``raw`` dict costs a tenth of building its row (design.md P2).
    """

    rows: dict[str, Row] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)


def _build_rows(
    records: Iterable[Any],
    row_of: Callable[[Any, int, str], Row | None],
    id_field: str,
    account: int,
    account_label: str,
    previous: RowSet | None,
) -> RowSet:
    old_rows = previous.rows if previous is not None else {}
    old_sources = previous.sources if previous is not None else {}
    rows: dict[str, Row] = {}
    sources: dict[str, Any] = {}
    for record in records:
        raw = getattr(record, "raw", None)
        row_id = _text(_field(record, id_field)) if old_rows else None
        old = old_rows.get(row_id) if row_id else None
        if (
            old is not None
            and row_id is not None
            and raw is not None
            and old["account"] == account
            and old["account_label"] == account_label
            and old_sources.get(row_id) == raw
        ):
            row = old
        else:
            built = row_of(record, account, account_label)
            if built is None:
                continue
            row = built
        # In the order received; a later duplicate id replaces the earlier row.
        rows[row["id"]] = row
        sources[row["id"]] = raw
    return RowSet(rows, sources)


def build_order_rows(orders: Iterable[Any], account: int, account_label: str, previous: RowSet | None = None) -> RowSet:
    """Order rows keyed by id; rows of ``previous`` are reused for records unchanged since then."""
    return _build_rows(orders, order_row, "order_id", account, account_label, previous)


def build_twap_rows(twaps: Iterable[Any], account: int, account_label: str, previous: RowSet | None = None) -> RowSet:
    """TWAP rows keyed by id; rows of ``previous`` are reused for records unchanged since then."""
    return _build_rows(twaps, twap_row, "twap_id", account, account_label, previous)


def order_rows(orders: Iterable[Any], account: int, account_label: str) -> dict[str, Row]:
    """Rows keyed by id, in the order received; a later duplicate id replaces the earlier row."""
    return build_order_rows(orders, account, account_label).rows


def twap_rows(twaps: Iterable[Any], account: int, account_label: str) -> dict[str, Row]:
    return build_twap_rows(twaps, account, account_label).rows


def without_placement(rows: Mapping[str, Row]) -> dict[str, Row]:
    """Rows minus ``placed_at``, for comparing a feed's rows with a book's current state: the feed
    remembers an order's placement time from its unfilled ACK, which the book no longer shows once
    the order is filled or modified."""
    return {key: {name: value for name, value in row.items() if name != "placed_at"} for key, row in rows.items()}


def diff_rows(old: Mapping[str, Row], new: Mapping[str, Row]) -> tuple[list[Row], list[str]]:
    """What turns ``old`` into ``new``: rows to insert or replace, and ids to remove.

    A modify that gives an order a new id (QFEX does this) is a remove of the old id plus an upsert
    of the new one.
    """
    upserts = [row for row_id, row in new.items() if (kept := old.get(row_id)) is not row and kept != row]
    removes = [row_id for row_id in old if row_id not in new]
    return upserts, removes
