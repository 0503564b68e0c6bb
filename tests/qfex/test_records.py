"""Parsing of every get_user_orders reply shape of docs/qfex-protocol.md §3 into typed records."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from orders.qfex import Order, OrdersSnapshot, ProtocolError, Twap, dumps, parse_all_orders_reply
from orders.qfex.records import loads, parse_order, parse_orders_page, parse_twap

ORDER_TEXT = """{
  "order_id": "3f2a9c1e-0d5b-4c6e-9a11-2f3b4c5d6e7f", "symbol": "AAPL-USD", "status": "ACK",
  "quantity": 10.5, "price": 123.4500000000000001, "take_profit": 0.0, "stop_loss": 0.0,
  "side": "BUY", "type": "LIMIT", "time_in_force": "GTC",
  "user_id": "9b1c7e8a-1111-2222-3333-444455556666", "client_order_id": "",
  "quantity_remaining": 4.25, "update_time": 1758208770.5512846, "trade_id": null
}"""
TWAP_TEXT = """{
  "twap_id": "5e6f7a8b-0000-4000-8000-000000000001", "client_twap_id": "rebalance-aapl-001",
  "user_id": "9b1c7e8a-1111-2222-3333-444455556666", "status": "ENGINE_STATUS", "symbol": "AAPL-USD",
  "total_quantity": 100, "filled_quantity": 12.5, "average_fill_price": 201.125,
  "total_num_orders": 10, "order_interval_secs": 60, "reduce_only": false, "side": "SELL",
  "created_at": 1767225600, "updated_at": 1767225660.25
}"""


def reply(text: str):
    return loads(text)


def test_current_shape_orders_and_twaps_with_exact_numbers():
    message = reply(f'{{"all_orders_response": {{"orders": [{ORDER_TEXT}], "twaps": [{TWAP_TEXT}]}}}}')
    orders, twaps = parse_all_orders_reply(message)
    assert len(orders) == 1
    assert len(twaps) == 1
    order = orders[0]
    assert order.order_id == "3f2a9c1e-0d5b-4c6e-9a11-2f3b4c5d6e7f"
    assert order.symbol == "AAPL-USD"
    assert order.status == "ACK"
    assert order.side == "BUY"
    assert order.type == "LIMIT"
    assert order.time_in_force == "GTC"
    assert order.client_order_id == ""
    assert order.price == Decimal("123.4500000000000001")  # a float would round this
    assert str(order.price) == "123.4500000000000001"
    assert order.quantity == Decimal("10.5")
    assert order.quantity_remaining == Decimal("4.25")
    assert order.take_profit == Decimal("0.0")
    assert order.update_time == Decimal("1758208770.5512846")
    assert order.trade_id is None
    assert order.extra == {}
    twap = twaps[0]
    assert twap.twap_id == "5e6f7a8b-0000-4000-8000-000000000001"
    assert twap.client_twap_id == "rebalance-aapl-001"
    assert twap.status == "ENGINE_STATUS"  # opaque, shown as sent
    assert twap.total_quantity == Decimal(100)
    assert twap.filled_quantity == Decimal("12.5")
    assert twap.average_fill_price == Decimal("201.125")
    assert twap.total_num_orders == 10
    assert twap.order_interval_secs == 60
    assert twap.reduce_only is False
    assert twap.side == "SELL"
    assert twap.created_at == Decimal(1767225600)
    assert twap.updated_at == Decimal("1767225660.25")
    assert twap.filled_num_orders is None


def test_to_json_re_emits_every_number_without_loss():
    text = f'{{"all_orders_response": {{"orders": [{ORDER_TEXT}], "twaps": [{TWAP_TEXT}]}}}}'
    orders, twaps = parse_all_orders_reply(reply(text))
    encoded = dumps(orders[0].to_json()).decode()
    assert "123.4500000000000001" in encoded
    assert "1758208770.5512846" in encoded
    assert loads(encoded) == loads(ORDER_TEXT)
    assert loads(dumps(twaps[0].to_json())) == twaps[0].raw
    # to_json is a copy: changing it does not change the record.
    copy = orders[0].to_json()
    copy["symbol"] = "X"
    assert orders[0].raw["symbol"] == "AAPL-USD"


def test_raw_keeps_numbers_as_decimal():
    order = parse_order(reply(ORDER_TEXT))
    assert order.raw["price"] == Decimal("123.4500000000000001")
    assert isinstance(order.raw["quantity"], Decimal)


def test_mid_shape_with_stop_orders_treated_as_orders():
    message = reply(
        '{"all_orders_response": {"orders": [{"order_id": "a", "symbol": "AAPL-USD"}],'
        ' "stop_orders": [{"stop_order_id": "s1", "symbol": "AAPL-USD", "price": 150, "quantity": 1,'
        ' "direction": "SELL", "stop_order_type": "STOP_LOSS", "client_order_id": "c",'
        ' "update_time": "2025-09-18T12:00:00Z"}]}}'
    )
    page = parse_orders_page(message)
    assert [order.order_id for order in page.orders] == ["a", "s1"]
    stop = page.orders[1]
    assert stop.side == "SELL"
    assert stop.type == "STOP_LOSS"
    assert stop.price == Decimal(150)
    assert stop.update_time == Decimal(1758196800)
    assert stop.raw["stop_order_id"] == "s1"
    assert page.twaps == []
    assert page.received == 1  # paging counts the orders array only


def test_mid_shape_with_empty_stop_orders():
    orders, twaps = parse_all_orders_reply(reply('{"all_orders_response": {"orders": [], "stop_orders": []}}'))
    assert orders == []
    assert twaps == []


def test_legacy_user_orders_with_count():
    message = reply(
        '{"user_orders": [{"order_id": "o1", "symbol": "GOOG-USD", "status": "ACK", "quantity": 2,'
        ' "price": 170.5, "side": "BUY", "type": "LIMIT", "time_in_force": "GFD", "user_id": "u",'
        ' "client_order_id": "x", "quantity_remaining": 2}], "count": 1}'
    )
    page = parse_orders_page(message)
    assert page.received == 1
    (order,) = page.orders
    assert order.order_id == "o1"
    assert order.time_in_force == "GFD"
    assert order.take_profit is None
    assert order.update_time is None
    assert page.twaps == []


def test_missing_twaps_is_tolerated():
    orders, twaps = parse_all_orders_reply(reply('{"all_orders_response": {"orders": [{"order_id": "a"}]}}'))
    assert [o.order_id for o in orders] == ["a"]
    assert twaps == []


def test_unknown_fields_are_kept_in_extra():
    order = parse_order(reply('{"order_id": "a", "reduce_only": true, "twap_id": "t", "nested": {"x": 1.5}}'))
    assert order.extra == {"reduce_only": True, "twap_id": "t", "nested": {"x": Decimal("1.5")}}
    twap = parse_twap(reply('{"twap_id": "t", "worst_price": 99.5, "start_time": 1.5}'))
    assert twap.extra == {"worst_price": Decimal("99.5"), "start_time": Decimal("1.5")}


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (1767225600, Decimal(1767225600)),
        (1767225660.25, Decimal("1767225660.25")),
        ('"1767225660.25"', Decimal("1767225660.25")),
        ('"2026-01-01T00:00:00Z"', Decimal(1767225600)),
        ('"2026-01-01T00:00:00+00:00"', Decimal(1767225600)),
        ('"2026-01-01T02:00:00+02:00"', Decimal(1767225600)),
        ('"2026-01-01T00:00:00.123456789Z"', Decimal("1767225600.123456789")),
        ('"2026-01-01T00:00:00.5"', Decimal("1767225600.5")),  # no zone: UTC
        ('"2026-01-01 00:00:00+0000"', Decimal(1767225600)),
        ('"2026-01-01"', Decimal(1767225600)),
    ],
)
def test_twap_timestamps_number_or_iso(sent, expected):
    twap = parse_twap(reply(f'{{"twap_id": "t", "created_at": {sent}}}'))
    assert twap.created_at == expected


@pytest.mark.parametrize("garbage", ['"yesterday"', '"2026-13-45T99:00:00Z"', "true", "[1]", '{"s": 1}', "null"])
def test_garbage_timestamps_become_none_and_stay_in_raw(garbage):
    twap = parse_twap(reply(f'{{"twap_id": "t", "updated_at": {garbage}}}'))
    assert twap.updated_at is None
    assert "updated_at" in twap.raw


def test_wrong_types_become_none_and_stay_in_raw():
    order = parse_order(
        reply(
            '{"order_id": 12, "symbol": ["AAPL"], "quantity": {"value": 1}, "price": "abc",'
            ' "quantity_remaining": true, "side": null, "take_profit": "1.25"}'
        )
    )
    assert order.order_id is None
    assert order.symbol is None
    assert order.quantity is None
    assert order.price is None
    assert order.quantity_remaining is None
    assert order.side is None
    assert order.take_profit == Decimal("1.25")  # numeric text is still a number
    assert order.raw["quantity"] == {"value": 1}
    assert order.extra == {}


def test_twap_integer_fields_and_booleans():
    twap = parse_twap(
        reply('{"total_num_orders": 10.0, "order_interval_secs": 30.5, "filled_num_orders": "3", "reduce_only": 1}')
    )
    assert twap.total_num_orders == 10
    assert twap.order_interval_secs is None
    assert twap.filled_num_orders == 3
    assert twap.reduce_only is None


def test_records_accept_python_floats_and_ints():
    order = parse_order({"order_id": "a", "price": 0.1, "quantity": 3})
    assert order.price == Decimal("0.1")
    assert order.quantity == Decimal(3)


def test_non_object_items_are_skipped_and_counted(caplog):
    message = reply('{"all_orders_response": {"orders": [{"order_id": "a"}, 5, "x", null], "twaps": [1]}}')
    with caplog.at_level(logging.WARNING, logger="orders.qfex"):
        page = parse_orders_page(message)
    assert [o.order_id for o in page.orders] == ["a"]
    assert page.received == 4
    assert page.skipped == 4
    assert "skipped 4" in caplog.text


@pytest.mark.parametrize(
    "text",
    [
        '{"all_orders_response": "nope"}',
        '{"all_orders_response": {"orders": {"a": 1}}}',
        '{"all_orders_response": {"orders": [], "twaps": "x"}}',
        '{"user_orders": {"a": 1}}',
        '{"something_else": []}',
    ],
)
def test_wrong_payload_shape_is_a_protocol_error(text):
    with pytest.raises(ProtocolError):
        parse_all_orders_reply(reply(text))


def test_loads_rejects_nan_and_infinity():
    for text in ('{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}'):
        with pytest.raises(ValueError, match="constant"):
            loads(text)


def test_records_are_frozen_and_hashable():
    order = parse_order({"order_id": "a", "weird": [1]})
    with pytest.raises(AttributeError):
        order.price = Decimal(1)  # type: ignore[misc]
    assert hash(order) == hash(parse_order({"order_id": "a", "weird": [1]}))
    assert order == parse_order({"order_id": "a", "weird": [1]})
    assert "raw" not in repr(order)


def test_every_field_defaults_to_none():
    assert Order() == parse_order({})
    assert all(getattr(Order(), name) is None for name in ("order_id", "price", "update_time", "trade_id"))
    assert Twap().twap_id is None


def test_snapshot_to_json_round_trips():
    snapshot = OrdersSnapshot(
        orders=(parse_order(reply(ORDER_TEXT)),), twaps=(parse_twap(reply(TWAP_TEXT)),), fetched_at=1.5, pages=1
    )
    decoded = loads(dumps(snapshot.to_json()))
    assert decoded["orders"][0]["price"] == Decimal("123.4500000000000001")
    assert decoded["twaps"][0]["twap_id"] == "5e6f7a8b-0000-4000-8000-000000000001"
    assert decoded["pages"] == 1
