"""Rate limiting per user, and every trading/unknown/invalid message refused, recorded and never executed."""

from __future__ import annotations

from typing import Any

import pytest

from orders.simulator import ALLOWED_TYPES, Simulator
from orders.simulator.dispatch import TRADING_TYPES
from orders.simulator.ratelimit import RateLimiter, TokenBucket

from .conftest import ACCOUNT_A, ACCOUNT_B, SUBACCOUNT_A, authed, connect


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_the_window_rate():
    clock = FakeClock()
    bucket = TokenBucket(capacity=10, window=2, clock=clock)  # 5 units per second
    assert bucket.try_consume(5) is None
    assert bucket.try_consume(5) is None
    assert bucket.try_consume(5) == 1.0  # 5 units missing at 5/s
    clock.now += 0.5
    assert bucket.try_consume(5) == 0.5
    clock.now += 0.5
    assert bucket.try_consume(5) is None
    clock.now += 100
    assert bucket.try_consume(10) is None  # never more than the capacity
    assert bucket.try_consume(0.1) == 0.02
    assert bucket.try_consume(11) == 2.0  # can never fit: a whole window


def test_rate_limiter_resets_a_bucket_when_the_budget_changes():
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert limiter.check("u", 5, 5, 60) is None
    assert limiter.check("u", 5, 5, 60) is not None
    assert limiter.check("other", 5, 5, 60) is None
    assert limiter.check("u", 5, 12000, 60) is None
    assert limiter.check("u", 0, 5, 60) is None  # free messages (auth) never count


def test_over_budget_requests_get_rate_limited_with_a_hint(sim: Simulator):
    sim.faults.rate_limit_weight = 12  # two get_user_orders (5 each), then a refusal
    sim.faults.rate_limit_window = 600
    with authed(sim) as client:
        assert "all_orders_response" in client.orders(limit=1)
        assert "all_orders_response" in client.orders(limit=1)
        refused = client.orders(limit=1)["err"]
        assert client.request({"type": "subscribe", "params": {"channels": ["fills"]}}) == {"subscribed": "fills"}
    assert refused["error_code"] == "RateLimited"
    assert isinstance(refused["retry_after"], float)
    assert 0 < refused["retry_after"] <= 600
    assert refused["message"] == f"Rate limit exceeded, retry after {refused['retry_after']} s"
    assert refused["incoming_message"] == {"type": "get_user_orders", "params": {"limit": 1}}
    assert sim.request_count("get_user_orders") == 3


def test_budget_is_shared_by_all_connections_of_a_user_only(sim: Simulator):
    sim.faults.rate_limit_weight = 10
    sim.faults.rate_limit_window = 600
    with authed(sim) as first, authed(sim, account_id=SUBACCOUNT_A) as second, authed(sim, ACCOUNT_B) as other:
        assert "all_orders_response" in first.orders(limit=1)
        assert "all_orders_response" in second.orders(limit=1)
        assert first.orders(limit=1)["err"]["error_code"] == "RateLimited"
        assert second.orders(limit=1)["err"]["error_code"] == "RateLimited"
        assert "all_orders_response" in other.orders(limit=1)
        assert "all_orders_response" in other.orders(limit=1)


def test_auth_is_free(sim: Simulator):
    sim.faults.rate_limit_weight = 0.5
    for _ in range(3):
        with authed(sim):
            pass


def test_flat_error_shape_for_rate_limits(sim: Simulator):
    sim.faults.rate_limit_weight = 1
    sim.faults.error_shape = "flat"
    with authed(sim) as client:
        reply = client.orders(limit=1)
    assert reply["type"] == "error"
    assert reply["error_code"] == "RateLimited"
    assert reply["retry_after"] > 0


TRADING: list[dict[str, Any]] = [
    {"type": "add_order", "params": {"symbol": "AAPL-USD", "side": "BUY", "quantity": 1, "price": 100}},
    {"type": "add_twap", "params": {"symbol": "AAPL-USD", "side": "BUY", "total_quantity": 10, "num_orders": 2}},
    {"type": "cancel_order", "params": {"order_id": "x", "symbol": "AAPL-USD", "cancel_order_id_type": "order_id"}},
    {"type": "cancel_all_orders", "params": {}},
    {"type": "cancel_on_disconnect", "params": {"cancel_on_disconnect": True}},
    {"type": "modify_order", "params": {"order_id": "x", "symbol": "AAPL-USD", "side": "BUY", "price": 1}},
    {"type": "close_position", "params": {"symbol": "AAPL-USD"}},
    {"type": "set_user_leverage", "params": {"symbol": "AAPL-USD", "leverage": 5}},
]


@pytest.mark.parametrize("message", TRADING, ids=[m["type"] for m in TRADING])
def test_trading_messages_are_refused_recorded_and_not_executed(sim: Simulator, message: dict):
    before = sim.open_orders(ACCOUNT_A.user_id)
    with authed(sim) as client:
        client.send({"type": "subscribe", "params": {"channels": ["order_responses"]}})
        client.recv()
        reply = client.request(message)
        client.expect_nothing(0.2)  # no order_response: nothing happened
    assert reply["err"]["error_code"] == "PermissionDenied"
    assert reply["err"]["incoming_message"] == message
    assert sim.forbidden_received == [message]
    assert sim.open_orders(ACCOUNT_A.user_id) == before
    assert sim.request_count(message["type"]) == 1


def test_no_trading_type_has_a_handler():
    """The allow-list is `auth` plus every routed handler: routing a trading type would let it through."""
    assert "get_user_orders" in ALLOWED_TYPES
    assert not ALLOWED_TYPES & TRADING_TYPES


def test_unknown_types_are_invalid_parameter_and_recorded(sim: Simulator):
    with authed(sim) as client:
        for kind in ("get_order", "get_user_trades", "make_me_rich"):
            reply = client.request({"type": kind, "params": {}})
            assert reply["err"]["error_code"] == "InvalidParameter"
            assert kind in reply["err"]["message"]
    assert [m["type"] for m in sim.forbidden_received] == ["get_order", "get_user_trades", "make_me_rich"]


def test_forbidden_before_auth_is_recorded_too(sim: Simulator):
    with connect(sim) as client:
        reply = client.request({"type": "cancel_all_orders", "params": {}})
    assert reply["err"]["error_code"] == "PermissionDenied"
    assert sim.forbidden_received == [{"type": "cancel_all_orders", "params": {}}]


def test_invalid_json_and_odd_frames_are_answered_and_recorded(sim: Simulator):
    long_garbage = "{" + "x" * 5000
    with authed(sim) as client:
        assert client.request("{not json")["err"]["error_code"] == "InvalidJSONFormat"
        assert client.request(long_garbage)["err"]["error_code"] == "InvalidJSONFormat"
        assert client.request("[1, 2]")["err"]["error_code"] == "InvalidJSONFormat"
        assert client.request({"params": {}})["err"]["error_code"] == "InvalidJSONFormat"
        client.ws.send_binary(b"\x00\x01binary")
        assert client.recv()["err"]["error_code"] == "InvalidJSONFormat"
        assert "all_orders_response" in client.orders(limit=1)  # still usable
    recorded = sim.forbidden_received
    assert recorded[0] == {"invalid_json": "{not json"}
    assert recorded[1] == {"invalid_json": long_garbage[:1000]}
    assert recorded[2] == {"invalid": [1, 2]}
    assert recorded[3] == {"params": {}}
    assert recorded[4] == {"binary_frame_bytes": 8}
    assert sim.request_count("<invalid-json>") == 2


def test_received_log_and_reset_counters(sim: Simulator):
    with authed(sim) as client:
        client.orders(limit=1)
        client.request({"type": "add_order", "params": {}})
    assert sim.received_log == [
        (ACCOUNT_A.public_key, "auth"),
        (ACCOUNT_A.public_key, "get_user_orders"),
        (ACCOUNT_A.public_key, "add_order"),
    ]
    sim.reset_counters()
    assert sim.received_log == []
    assert sim.forbidden_received == []
    assert sim.request_count("get_user_orders") == 0
    assert sim.handshake_count == 0
