"""get_user_orders: paging, caps, filters, parameter errors, reply shapes and the numbers on the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from orders.simulator import SimAccount, Simulator

from .conftest import ACCOUNT_A, ACCOUNT_B, EPOCH, authed

BIG = SimAccount(public_key="qfex_pub_big", secret="qfex_secret_big", orders=2500, twaps=2)


@pytest.fixture
def big_sim() -> Iterator[Simulator]:
    with Simulator([BIG], seed=3, epoch=EPOCH, close_timeout=1.0) as simulator:
        yield simulator


def _ids(orders: list[dict]) -> list[str]:
    return [o["order_id"] for o in orders]


def test_default_request_returns_every_open_order_and_twap(sim: Simulator):
    with authed(sim) as client:
        reply = client.request({"type": "get_user_orders", "params": {}})
    assert set(reply) == {"all_orders_response"}
    body = reply["all_orders_response"]
    assert set(body) == {"orders", "twaps"}
    assert body["orders"] == sim.open_orders(ACCOUNT_A.user_id)
    assert body["twaps"] == sim.active_twaps(ACCOUNT_A.user_id)
    assert len(body["orders"]) == 30
    assert len(body["twaps"]) == 3


def test_missing_params_is_treated_as_defaults(sim: Simulator):
    with authed(sim) as client:
        reply = client.request({"type": "get_user_orders"})
    assert len(reply["all_orders_response"]["orders"]) == 30


def test_order_and_twap_objects_carry_the_documented_fields(sim: Simulator):
    with authed(sim) as client:
        body = client.orders()["all_orders_response"]
    order_fields = {
        "order_id", "symbol", "status", "quantity", "price", "take_profit", "stop_loss", "side", "type",
        "time_in_force", "user_id", "client_order_id", "quantity_remaining", "update_time", "trade_id",
    }  # fmt: skip
    twap_fields = {
        "twap_id", "client_twap_id", "user_id", "status", "symbol", "total_quantity", "filled_quantity",
        "average_fill_price", "total_num_orders", "order_interval_secs", "reduce_only", "side", "created_at",
        "updated_at",
    }  # fmt: skip
    for order in body["orders"]:
        assert set(order) == order_fields
        assert order["side"] in {"BUY", "SELL"}
        assert order["status"] == "ACK"
        assert isinstance(order["update_time"], float)
        assert order["trade_id"] is None
    for twap in body["twaps"]:
        assert set(twap) == twap_fields
        assert isinstance(twap["total_num_orders"], int)
        assert twap["order_interval_secs"] >= 30
        assert twap["status"] == "RUNNING"
    assert any(o["client_order_id"] == "" for o in body["orders"])
    assert any(o["client_order_id"] != "" for o in body["orders"])


def test_numbers_are_clean_decimal_json_numbers(big_sim: Simulator):
    with authed(big_sim, BIG) as client:
        client.send({"type": "get_user_orders", "params": {"limit": 1000}})
        text = client.recv_text()
    body = json.loads(text, parse_float=Decimal)["all_orders_response"]
    for order in body["orders"]:
        for name in ("quantity", "price", "quantity_remaining", "take_profit", "stop_loss"):
            value = order[name]
            assert isinstance(value, Decimal), (name, value)
            exponent = value.as_tuple().exponent
            assert isinstance(exponent, int), (name, value)
            assert exponent >= -5, (name, value)  # no 187.25000000000003 noise
        assert order["update_time"].as_tuple().exponent >= -6
    assert '"price":"' not in text  # numbers, never strings


def test_limit_above_1000_is_capped_and_offset_pages_through(big_sim: Simulator):
    truth = _ids(big_sim.open_orders(BIG.user_id))
    with authed(big_sim, BIG) as client:
        first = client.orders(limit=1500)["all_orders_response"]["orders"]
        second = client.orders(limit=1000, offset=1000)["all_orders_response"]["orders"]
        last = client.orders(limit=1000, offset=2000)["all_orders_response"]["orders"]
        beyond = client.orders(limit=1000, offset=5000)["all_orders_response"]
    assert len(first) == 1000
    assert _ids(first) + _ids(second) + _ids(last) == truth
    assert len(last) == 500
    assert beyond["orders"] == []
    assert len(beyond["twaps"]) == 2  # TWAPs ride on every page


def test_default_limit_is_1000(big_sim: Simulator):
    with authed(big_sim, BIG) as client:
        assert len(client.orders()["all_orders_response"]["orders"]) == 1000


def test_page_cap_below_what_was_asked(sim: Simulator):
    sim.faults.page_cap = 7
    truth = _ids(sim.open_orders(ACCOUNT_A.user_id))
    with authed(sim) as client:
        page = client.orders(limit=10)["all_orders_response"]["orders"]
        nxt = client.orders(limit=10, offset=7)["all_orders_response"]["orders"]
    assert _ids(page) == truth[:7]
    assert _ids(nxt) == truth[7:14]


def test_limit_zero_returns_no_orders_but_the_twaps(sim: Simulator):
    with authed(sim) as client:
        body = client.orders(limit=0)["all_orders_response"]
    assert body["orders"] == []
    assert len(body["twaps"]) == 3


def test_symbol_filter(sim: Simulator):
    truth = sim.open_orders(ACCOUNT_A.user_id)
    symbol = truth[0]["symbol"]
    with authed(sim) as client:
        body = client.orders(symbol=symbol)["all_orders_response"]
        unknown = client.orders(symbol="NOPE-USD")["all_orders_response"]
    assert body["orders"] == [o for o in truth if o["symbol"] == symbol]
    assert all(t["symbol"] == symbol for t in body["twaps"])
    assert unknown["orders"] == []


def test_accounts_only_see_their_own_book(sim: Simulator):
    with authed(sim, ACCOUNT_B) as client:
        orders = client.orders()["all_orders_response"]["orders"]
    assert _ids(orders) == _ids(sim.open_orders(ACCOUNT_B.user_id))
    assert not set(_ids(orders)) & set(_ids(sim.open_orders(ACCOUNT_A.user_id)))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": -1}, "InvalidParameter"),
        ({"offset": -5}, "InvalidParameter"),
        ({"limit": "10"}, "InvalidJSONFormat"),
        ({"limit": 10.5}, "InvalidJSONFormat"),
        ({"limit": 10.0}, "InvalidJSONFormat"),
        ({"offset": True}, "InvalidJSONFormat"),
        ({"symbol": 5}, "InvalidJSONFormat"),
        (["not", "an", "object"], "InvalidJSONFormat"),
    ],
)
def test_bad_parameters_are_refused_with_an_echo(sim: Simulator, params: object, code: str):
    message = {"type": "get_user_orders", "params": params}
    with authed(sim) as client:
        reply = client.request(message)
        assert "all_orders_response" in client.orders(limit=1)  # the session survives
    assert reply["err"]["error_code"] == code
    assert reply["err"]["incoming_message"] == message
    assert isinstance(reply["err"]["message"], str)


def test_mid_shape(sim: Simulator):
    sim.faults.response_shape = "mid"
    with authed(sim) as client:
        reply = client.orders(limit=5)
    assert reply == {"all_orders_response": {"orders": sim.open_orders(ACCOUNT_A.user_id)[:5], "stop_orders": []}}


def test_legacy_shape(sim: Simulator):
    sim.faults.response_shape = "legacy"
    with authed(sim) as client:
        reply = client.orders(limit=5)
    assert set(reply) == {"user_orders", "count"}
    assert reply["count"] == 5
    truth = sim.open_orders(ACCOUNT_A.user_id)[:5]
    assert _ids(reply["user_orders"]) == _ids(truth)
    for order in reply["user_orders"]:
        assert not {"take_profit", "stop_loss", "update_time", "trade_id"} & set(order)


def test_injected_free_text_comes_back_verbatim(sim: Simulator):
    html = '<img src=x onerror="alert(1)">&amp;'
    [added] = sim.add_orders(ACCOUNT_A.user_id, 1, client_order_id=html, reduce_only=True)
    with authed(sim) as client:
        orders = client.orders()["all_orders_response"]["orders"]
    [seen] = [o for o in orders if o["order_id"] == added["order_id"]]
    assert seen["client_order_id"] == html
    assert seen["reduce_only"] is True  # unknown fields pass through


def test_reply_reflects_changes_made_from_the_test_thread(sim: Simulator):
    with authed(sim) as client:
        before = client.orders()["all_orders_response"]["orders"]
        removed = sim.remove_order(ACCOUNT_A.user_id, before[3]["order_id"])
        after = client.orders()["all_orders_response"]["orders"]
    assert removed is not None
    assert removed["status"] == "CANCELLED"
    assert _ids(after) == _ids(before[:3] + before[4:])
    assert sim.remove_order(ACCOUNT_A.user_id, before[3]["order_id"]) is None
