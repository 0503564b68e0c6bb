"""What the latency benchmarks rely on: a push for every change of an open order, the log of when each
push was produced, and pages listed by latest update (so orders move between pages while a client reads)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from orders.management.commands.qfex_simulator import build_simulator
from orders.simulator import SimAccount, Simulator
from orders.simulator.book import ORDER_FIELDS
from orders.simulator.market import ORDER_EVENT_SHARE

from .conftest import ACCOUNT_A, ACCOUNT_B, EPOCH, PATIENT, SUBACCOUNT_A, authed

# The kinds of change an open order goes through, told apart as a client following QFEX's pushes would.
KINDS = ("new", "partial_fill", "full_fill", "modify", "cancel")


def _subscribe(client: Any) -> None:
    client.send({"type": "subscribe", "params": {"channels": ["order_responses"]}})
    assert client.recv() == {"subscribed": "order_responses"}


def _kind(order: dict[str, Any]) -> str:
    status, remaining = order["status"], order["quantity_remaining"]
    if status == "ACK":
        return "new"
    if status == "MODIFIED":
        return "modify"
    if status == "FILLED":
        return "partial_fill" if remaining > 0 else "full_fill"
    assert status == "CANCELLED", order
    return "cancel"


def _assert_qfex_shape(frame: dict[str, Any]) -> None:
    assert list(frame) == ["order_response"]
    order = frame["order_response"]
    assert tuple(order) == ORDER_FIELDS
    for name in ("quantity", "price", "take_profit", "stop_loss", "quantity_remaining", "update_time"):
        assert type(order[name]) in (int, float), (name, order)
    for name in ("order_id", "symbol", "status", "side", "type", "time_in_force", "user_id", "client_order_id"):
        assert isinstance(order[name], str), (name, order)
    assert (order["trade_id"] is not None) == (order["status"] == "FILLED")


# --- pushes ---------------------------------------------------------------------------------------------


def test_the_background_pace_pushes_every_kind_of_change_in_qfex_shape():
    account = SimAccount(public_key="qfex_pub_pace", secret="qfex_secret_pace_0001", orders=40, twaps=0)
    with Simulator([account], seed=3, epoch=EPOCH, close_timeout=1.0) as sim, authed(sim, account) as client:
        _subscribe(client)
        sim.pace = 200.0
        seen: Counter[str] = Counter()
        frames = []
        deadline = time.monotonic() + PATIENT
        while set(seen) != set(KINDS) and time.monotonic() < deadline:
            frame = client.recv()
            frames.append(frame)
            _assert_qfex_shape(frame)
            seen[_kind(frame["order_response"])] += 1
        sim.pace = 0
    assert set(seen) == set(KINDS), seen
    # Every push received was produced by the market and noted in the event log, in the same order.
    noted = [(e.order_id, e.status, e.quantity_remaining) for e in sim.order_events()]
    received = [(f["order_response"]["order_id"], f["order_response"]["status"],
                 f["order_response"]["quantity_remaining"]) for f in frames]  # fmt: skip
    assert noted[: len(received)] == received


def test_a_partial_fill_keeps_the_order_open_and_a_full_fill_or_cancel_ends_it(sim: Simulator):
    with authed(sim, ACCOUNT_A) as client:
        _subscribe(client)
        pushed = [c for c in sim.step(300) if c["user_id"] == ACCOUNT_A.user_id]
        frames = [client.recv() for _ in pushed]
    open_ids = {o["order_id"] for o in sim.open_orders(ACCOUNT_A.user_id)}
    last: dict[str, dict[str, Any]] = {}
    for frame in frames:
        _assert_qfex_shape(frame)
        last[frame["order_response"]["order_id"]] = frame["order_response"]
    says_open = {
        order_id
        for order_id, order in last.items()
        if order["status"] in ("ACK", "MODIFIED") or (order["status"] == "FILLED" and order["quantity_remaining"] > 0)
    }
    # Every order whose last push said "gone" is gone; every pushed order still open was last said open.
    assert not (set(last) - says_open) & open_ids
    assert open_ids & set(last) <= says_open
    # The rest of "said open" are orders modified since: they live on under a new id (a MODIFIED push).
    modifies = sum(1 for frame in frames if frame["order_response"]["status"] == "MODIFIED")
    assert len(says_open - open_ids) <= modifies


def test_twap_slices_push_nothing(sim: Simulator):
    [twap] = sim.active_twaps(ACCOUNT_B.user_id)[:1]
    with authed(sim, ACCOUNT_B) as client:
        _subscribe(client)
        before = len(sim.order_events())
        sim.advance_twap(ACCOUNT_B.user_id, twap["twap_id"])
        client.expect_nothing()
    assert len(sim.order_events()) == before


# --- the event log ---------------------------------------------------------------------------------------


def test_every_push_is_logged_when_it_is_produced_whoever_causes_it(sim: Simulator):
    with authed(sim, ACCOUNT_A, account_id=SUBACCOUNT_A) as client:
        _subscribe(client)
        start = time.monotonic_ns()
        added = sim.add_orders(SUBACCOUNT_A, 2)
        removed = sim.remove_order(SUBACCOUNT_A, added[0]["order_id"])
        stepped = [c for c in sim.step(40) if c["user_id"] == SUBACCOUNT_A]
        expected = [*added, removed, *stepped]
        got = [client.recv()["order_response"] for _ in expected]
        sim.faults.page_mutation = 1  # F12: the churn after a page (one cancel, one new order) is logged too
        assert "all_orders_response" in client.orders(limit=2)
        sim.faults.page_mutation = 0
        got += [client.recv()["order_response"] for _ in range(2)]
        received_at = time.monotonic_ns()
    events = sim.order_events(start, SUBACCOUNT_A)
    assert [(e.order_id, e.status, e.quantity_remaining) for e in events] == [
        (o["order_id"], o["status"], o["quantity_remaining"]) for o in got
    ]
    assert got[: len(expected)] == expected
    assert [o["status"] for o in got[len(expected) :]] == ["CANCELLED", "ACK"]
    assert all(e.book_id == SUBACCOUNT_A for e in events)
    times = [e.t_ns for e in events]
    assert times == sorted(times)
    assert start <= times[0]
    assert times[-1] <= received_at
    serials = [e.serial for e in events]
    assert serials == sorted(serials)
    assert len(set(serials)) == len(serials)
    assert all(abs(e.wall - time.time()) < 60 for e in events)


def test_the_event_log_filters_by_time_and_account_and_keeps_the_latest(sim: Simulator):
    sim.add_orders(ACCOUNT_B.public_key, 1)
    middle = time.monotonic_ns()
    sim.add_orders(ACCOUNT_A.user_id, 1)
    sim.add_orders(ACCOUNT_B.user_id, 1)
    assert len(sim.order_events(middle)) == 2
    assert [e.book_id for e in sim.order_events(middle, ACCOUNT_B.public_key)] == [ACCOUNT_B.user_id]
    small = Simulator([ACCOUNT_B], seed=1, epoch=EPOCH, event_log_size=5)
    small.step(100)
    kept = small.order_events()
    assert len(kept) == 5
    assert kept[-1].serial - kept[0].serial == 4
    with pytest.raises(ValueError, match="event_log_size"):
        Simulator([ACCOUNT_B], event_log_size=0)


def test_order_event_share_is_what_the_pace_yields():
    account = SimAccount(public_key="qfex_pub_share", secret="qfex_secret_share_01", orders=50, twaps=2)
    simulator = Simulator([account], seed=8, epoch=EPOCH, event_log_size=100_000)
    simulator.step(20_000)
    share = len(simulator.order_events()) / 20_000
    assert abs(share - ORDER_EVENT_SHARE) < 0.02, (share, ORDER_EVENT_SHARE)


# --- page order ------------------------------------------------------------------------------------------


def _page_ids(client: Any, limit: int, offset: int) -> list[str]:
    return [o["order_id"] for o in client.orders(limit=limit, offset=offset)["all_orders_response"]["orders"]]


def test_pages_keep_insertion_order_by_default(sim: Simulator):
    assert sim.page_order == "insertion"
    before = [o["order_id"] for o in sim.open_orders(ACCOUNT_A.user_id)]
    with authed(sim, ACCOUNT_A) as client:
        assert _page_ids(client, 1000, 0) == before
        sim.add_orders(ACCOUNT_A.user_id, 1)
        assert _page_ids(client, 1000, 0)[: len(before)] == before  # a new order goes last


def test_updated_order_lists_the_latest_change_first_and_moves_orders_between_pages():
    simulator = Simulator([ACCOUNT_A], seed=11, epoch=EPOCH, close_timeout=1.0, page_order="updated")
    with simulator as sim, authed(sim, ACCOUNT_A) as client:
        listed = sim.open_orders(ACCOUNT_A.user_id)
        times = [o["update_time"] for o in listed]
        assert times == sorted(times, reverse=True)
        assert _page_ids(client, 1000, 0) == [o["order_id"] for o in listed]
        # Run events until an order beyond the first page of 10 is partly filled, or any order is modified
        # (which gives it a new id): either way the order stays open with a new update time.
        change = None
        for _ in range(500):
            beyond_first_page = {o["order_id"] for o in sim.open_orders(ACCOUNT_A.user_id)[10:]}
            pushed = [c for c in sim.step(1) if c["user_id"] == ACCOUNT_A.user_id]
            if pushed and (
                pushed[0]["status"] == "MODIFIED"
                or (
                    pushed[0]["status"] == "FILLED"
                    and pushed[0]["quantity_remaining"] > 0
                    and pushed[0]["order_id"] in beyond_first_page
                )
            ):
                change = pushed[0]
                break
        assert change is not None, "no partial fill or modify of a resting order in 500 events"
        assert _page_ids(client, 10, 0)[0] == change["order_id"]  # it jumped to offset 0
        assert sim.open_orders(ACCOUNT_A.user_id)[0]["order_id"] == change["order_id"]
        new = sim.add_orders(ACCOUNT_A.user_id, 1)[0]
        assert _page_ids(client, 1, 0) == [new["order_id"]]


def test_page_order_can_be_switched_at_run_time_and_is_checked(sim: Simulator):
    insertion = [o["order_id"] for o in sim.open_orders(ACCOUNT_A.user_id)]
    with authed(sim, ACCOUNT_A) as client:
        sim.page_order = "updated"
        updated = _page_ids(client, 1000, 0)
        assert sorted(updated) == sorted(insertion)
        assert updated != insertion
        sim.page_order = "insertion"
        assert _page_ids(client, 1000, 0) == insertion
    with pytest.raises(ValueError, match="page_order must be one of insertion, updated"):
        sim.page_order = "random"
    with pytest.raises(ValueError, match="page_order"):
        Simulator([ACCOUNT_A], page_order="newest")


def test_the_command_sets_the_page_order():
    assert build_simulator({"port": 0, "fault": [], "page_order": "updated"}).page_order == "updated"
    assert build_simulator({"port": 0, "fault": []}).page_order == "insertion"
