"""Subscriptions, order_response pushes, deterministic activity and TWAP progress."""

from __future__ import annotations

from collections import Counter

import pytest

from orders.simulator import Simulator

from .conftest import ACCOUNT_A, ACCOUNT_B, EPOCH, PATIENT, SUBACCOUNT_A, authed


def _subscribe(client, *channels: str) -> None:
    client.send({"type": "subscribe", "params": {"channels": list(channels)}})
    for channel in channels:
        assert client.recv() == {"subscribed": channel}


def test_subscribe_and_unsubscribe_answer_once_per_channel(sim: Simulator):
    with authed(sim) as client:
        _subscribe(client, "order_responses", "fills", "positions")
        client.send({"type": "unsubscribe", "params": {"channels": ["fills", "order_responses"]}})
        assert client.recv() == {"unsubscribed": "fills"}
        assert client.recv() == {"unsubscribed": "order_responses"}
        sim.step(20)
        client.expect_nothing()  # unsubscribed: no pushes any more
    assert sim.request_count("subscribe") == 1
    assert sim.request_count("unsubscribe") == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"channels": ["order_responses", "v4_bbo"]}, "InvalidParameter"),
        ({"channels": "order_responses"}, "InvalidJSONFormat"),
        ({"channels": []}, "InvalidJSONFormat"),
        ({}, "InvalidJSONFormat"),
    ],
)
def test_bad_subscriptions_are_refused(sim: Simulator, params: dict, code: str):
    with authed(sim) as client:
        reply = client.request({"type": "subscribe", "params": params})
    assert reply["err"]["error_code"] == code
    assert reply["err"]["incoming_message"] == {"type": "subscribe", "params": params}


def test_pushes_reach_only_subscribers_of_that_book(sim: Simulator):
    with authed(sim, ACCOUNT_A) as a, authed(sim, ACCOUNT_B) as b, authed(sim, ACCOUNT_A) as quiet:
        _subscribe(a, "order_responses")
        _subscribe(b, "order_responses")
        changes = sim.step(60)
        expected_a = [c for c in changes if c["user_id"] == ACCOUNT_A.user_id]
        expected_b = [c for c in changes if c["user_id"] == ACCOUNT_B.user_id]
        assert expected_a
        assert expected_b
        got_a = [a.recv()["order_response"] for _ in expected_a]
        got_b = [b.recv()["order_response"] for _ in expected_b]
        a.expect_nothing()
        quiet.expect_nothing(0.1)
    assert got_a == expected_a
    assert got_b == expected_b


def test_push_lifecycle_matches_the_book(sim: Simulator):
    kinds: Counter[str] = Counter()
    book = {o["order_id"]: o for o in sim.open_orders(ACCOUNT_A.user_id)}
    with authed(sim, ACCOUNT_A) as client:
        _subscribe(client, "order_responses")
        expected = [c for c in sim.step(300) if c["user_id"] == ACCOUNT_A.user_id]
        pushes = [client.recv()["order_response"] for _ in expected]
    for order in pushes:
        status, remaining = order["status"], order["quantity_remaining"]
        if status == "ACK":
            kinds["new"] += 1
            assert order["order_id"] not in book
            book[order["order_id"]] = order
        elif status == "MODIFIED":
            kinds["modify"] += 1
            assert order["order_id"] not in book  # a modify brings a NEW order_id
            book[order["order_id"]] = order
            # ...replacing one unfilled order of the same symbol and size
        elif status == "FILLED" and remaining > 0:
            kinds["partial"] += 1
            assert order["order_id"] in book
            assert order["trade_id"]
            assert remaining < order["quantity"]
            book[order["order_id"]] = order
        elif status == "FILLED":
            kinds["full"] += 1
            assert order["trade_id"]
            del book[order["order_id"]]
        else:
            assert status == "CANCELLED"
            kinds["cancel"] += 1
            del book[order["order_id"]]
    assert set(kinds) == {"new", "modify", "partial", "full", "cancel"}, kinds
    truth = {o["order_id"] for o in sim.open_orders(ACCOUNT_A.user_id)}
    # Modifies replace an id in place, so the pushed book has the modified orders' old ids too.
    assert truth <= set(book)
    assert len(set(book) - truth) == kinds["modify"]


def test_add_and_remove_from_the_test_thread_are_pushed(sim: Simulator):
    with authed(sim, ACCOUNT_A, account_id=SUBACCOUNT_A) as client:
        _subscribe(client, "order_responses")
        added = sim.add_orders(SUBACCOUNT_A, 2, client_order_id="<b>bold</b>")
        assert [client.recv()["order_response"] for _ in added] == added
        removed = sim.remove_order(SUBACCOUNT_A, added[0]["order_id"])
        assert client.recv()["order_response"] == removed
        sim.add_orders(ACCOUNT_A.user_id, 1)  # the primary book: not this session's
        client.expect_nothing()


def _state(simulator: Simulator) -> list:
    keys = [ACCOUNT_A.user_id, SUBACCOUNT_A, ACCOUNT_B.user_id]
    return [(simulator.open_orders(k), simulator.active_twaps(k)) for k in keys]


def test_same_seed_and_steps_give_the_same_books():
    first = Simulator([ACCOUNT_A, ACCOUNT_B], seed=99, epoch=EPOCH)
    second = Simulator([ACCOUNT_A, ACCOUNT_B], seed=99, epoch=EPOCH)
    other = Simulator([ACCOUNT_A, ACCOUNT_B], seed=100, epoch=EPOCH)
    assert _state(first) == _state(second)
    assert first.step(250) == second.step(120) + second.step(130)
    assert _state(first) == _state(second)
    other.step(250)
    assert _state(other) != _state(first)


def test_books_stay_near_their_size_over_a_long_run():
    simulator = Simulator([ACCOUNT_A], seed=5, epoch=EPOCH)
    for _ in range(10):
        simulator.step(500)
        size = len(simulator.open_orders(ACCOUNT_A.user_id))
        assert 15 <= size <= 46
        assert 1 <= len(simulator.active_twaps(ACCOUNT_A.user_id)) <= 6


def test_twaps_progress_and_finish():
    simulator = Simulator([ACCOUNT_A], seed=21, epoch=EPOCH)
    start = {t["twap_id"]: t for t in simulator.active_twaps(ACCOUNT_A.user_id)}
    simulator.step(400)
    now = {t["twap_id"]: t for t in simulator.active_twaps(ACCOUNT_A.user_id)}
    assert set(start) - set(now), "some TWAP should have finished and left the active list"
    assert set(now) - set(start), "new TWAPs should have started"
    for twap_id in set(start) & set(now):
        assert now[twap_id]["filled_quantity"] >= start[twap_id]["filled_quantity"]


def test_advance_twap_runs_each_slice_then_removes_it(sim: Simulator):
    [twap] = sim.add_twaps(ACCOUNT_B.user_id, 1, total_num_orders=3, total_quantity=1.5, filled_quantity=0.0,
                           average_fill_price=0.0, client_twap_id="<i>x</i>")  # fmt: skip
    assert twap in sim.active_twaps(ACCOUNT_B.user_id)
    one = sim.advance_twap(ACCOUNT_B.user_id, twap["twap_id"])
    assert one is not None
    assert one["filled_quantity"] == 0.5
    assert one["average_fill_price"] > 0
    two = sim.advance_twap(ACCOUNT_B.user_id, twap["twap_id"])
    assert two is not None
    assert two["filled_quantity"] == 1.0
    assert sim.advance_twap(ACCOUNT_B.user_id, twap["twap_id"]) is None
    assert twap["twap_id"] not in {t["twap_id"] for t in sim.active_twaps(ACCOUNT_B.user_id)}
    with authed(sim, ACCOUNT_B) as client:
        twaps = client.orders()["all_orders_response"]["twaps"]
    assert twap["twap_id"] not in {t["twap_id"] for t in twaps}


def test_pace_runs_activity_in_the_background():
    with Simulator([ACCOUNT_A], seed=4, epoch=EPOCH, pace=40.0, close_timeout=1.0) as simulator:
        with authed(simulator, ACCOUNT_A) as client:
            _subscribe(client, "order_responses")
            pushes = [client.recv(PATIENT) for _ in range(3)]
            simulator.pace = 0
        assert all("order_response" in p for p in pushes)


def test_unknown_account_key_is_a_key_error(sim: Simulator):
    with pytest.raises(KeyError):
        sim.open_orders("nobody")
    assert sim.open_orders(ACCOUNT_A.public_key) == sim.open_orders(ACCOUNT_A.user_id)
