"""Rows of the live protocol from hand-built records, and snapshot diffing."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from orders.live import protocol as lp
from orders.live.rows import (
    build_order_rows,
    build_twap_rows,
    diff_rows,
    order_row,
    order_rows,
    percent,
    twap_row,
    twap_rows,
)
from orders.qfex import Order, Twap
from orders.qfex.records import loads, parse_order, parse_twap
from orders.simulator import SimAccount, Simulator


def test_order_row_matches_the_documented_example() -> None:
    order = parse_order(
        loads(
            '{"order_id": "o-1", "symbol": "AAPL-USD", "side": "BUY", "type": "LIMIT", "time_in_force": "GTC",'
            ' "price": 187.25, "quantity": 10, "quantity_remaining": 4, "take_profit": 0, "stop_loss": 0,'
            ' "status": "ACK", "client_order_id": "desk-7", "update_time": 1764030000.55}'
        )
    )
    assert order_row(order, 7, "Desk A main") == {
        "id": "o-1",
        "account": 7,
        "account_label": "Desk A main",
        "symbol": "AAPL-USD",
        "side": "BUY",
        "type": "LIMIT",
        "time_in_force": "GTC",
        "price": "187.25",
        "quantity": "10",
        "quantity_remaining": "4",
        "filled": "6",
        "fill_pct": "60",
        "notional": "1872.50",
        "take_profit": "0",
        "stop_loss": "0",
        "status": "ACK",
        "client_order_id": "desk-7",
        "order_id": "o-1",
        "update_time": 1764030000.55,
        "placed_at": None,  # partly filled: its update time is the fill's, not the placement's
    }


def test_an_unfilled_acknowledged_order_was_placed_at_its_update_time() -> None:
    order = parse_order(
        loads('{"order_id": "o", "status": "ACK", "quantity": 2, "quantity_remaining": 2, "update_time": 5}')
    )
    row = order_row(order, 1, "a")
    assert row is not None
    assert row["placed_at"] == 5.0
    modified = parse_order(
        loads('{"order_id": "o", "status": "MODIFIED", "quantity": 2, "quantity_remaining": 2, "update_time": 9}')
    )
    row = order_row(modified, 1, "a")
    assert row is not None
    assert row["placed_at"] is None


def test_decimals_stay_exact() -> None:
    # 0.1 + 0.2 style values and long fractions must not pick up float noise.
    order = parse_order(loads('{"order_id": "x", "price": 0.1, "quantity": 0.3, "quantity_remaining": 0.2}'))
    row = order_row(order, 1, "a")
    assert row is not None
    assert row["price"] == "0.1"
    assert row["filled"] == "0.1"
    assert row["notional"] == "0.03"
    assert row["fill_pct"] == "33.33"
    big = parse_order(loads('{"order_id": "y", "price": 1E+2, "quantity": 123456789.123456789}'))
    big_row = order_row(big, 1, "a")
    assert big_row is not None
    assert big_row["price"] == "100"  # no exponent notation
    assert big_row["quantity"] == "123456789.123456789"


def test_absent_inputs_give_null_derived_values() -> None:
    row = order_row(Order(order_id="z", symbol="NVDA-USD"), 3, "b")
    assert row is not None
    assert row["filled"] is None
    assert row["fill_pct"] is None
    assert row["notional"] is None
    assert row["update_time"] is None
    zero = order_row(Order(order_id="q", quantity=Decimal(0), quantity_remaining=Decimal(0)), 3, "b")
    assert zero is not None
    assert zero["fill_pct"] is None  # no division by zero


def test_records_without_an_id_are_skipped() -> None:
    assert order_row(Order(symbol="AAPL-USD"), 1, "a") is None
    assert twap_row(Twap(symbol="AAPL-USD"), 1, "a") is None
    assert order_rows([Order(symbol="AAPL-USD"), Order(order_id="k")], 1, "a").keys() == {"k"}


def test_html_in_exchange_strings_passes_through_as_data() -> None:
    text = '<img src=x onerror="alert(1)">&amp;'
    row = order_row(Order(order_id="h", client_order_id=text, symbol="<b>X</b>"), 1, "a")
    assert row is not None
    assert row["client_order_id"] == text
    assert orjson.loads(lp.encode({"row": row}))["row"]["client_order_id"] == text


def test_twap_row_with_derived_values() -> None:
    twap = parse_twap(
        loads(
            '{"twap_id": "t-1", "symbol": "NVDA-USD", "side": "SELL", "total_quantity": 100, "filled_quantity": 25,'
            ' "average_fill_price": 131.10, "total_num_orders": 8, "order_interval_secs": 60, "reduce_only": false,'
            ' "status": "RUNNING", "client_twap_id": "rebalance-1", "created_at": 1764029980.0,'
            ' "updated_at": "2025-11-25T00:20:00Z"}'
        )
    )
    row = twap_row(twap, 7, "Desk A main")
    assert row == {
        "id": "t-1",
        "account": 7,
        "account_label": "Desk A main",
        "symbol": "NVDA-USD",
        "side": "SELL",
        "total_quantity": "100",
        "filled_quantity": "25",
        "progress_pct": "25",
        "average_fill_price": "131.10",
        "total_num_orders": 8,
        "filled_num_orders": None,
        "order_interval_secs": 60,
        "estimated_end": 1764029980.0 + 7 * 60,
        "reduce_only": False,
        "status": "RUNNING",
        "client_twap_id": "rebalance-1",
        "twap_id": "t-1",
        "created_at": 1764029980.0,
        "updated_at": 1764030000.0,
    }


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [("6", "10", "60"), ("1", "3", "33.33"), ("2", "3", "66.66"), ("1", "8", "12.5"), ("0", "5", "0"),
     ("10", "10", "100"), ("9.999", "10", "99.99"), ("1", "0", None)],
)  # fmt: skip
def test_percent_is_cut_never_rounded_up(part: str, whole: str, expected: str | None) -> None:
    assert percent(Decimal(part), Decimal(whole)) == expected


def test_diff_rows() -> None:
    old = {"a": {"id": "a", "v": 1}, "b": {"id": "b", "v": 2}, "c": {"id": "c", "v": 3}}
    new = {"a": {"id": "a", "v": 1}, "b": {"id": "b", "v": 20}, "d": {"id": "d", "v": 4}}
    upserts, removes = diff_rows(old, new)
    assert upserts == [{"id": "b", "v": 20}, {"id": "d", "v": 4}]
    assert removes == ["c"]
    assert diff_rows(new, new) == ([], [])


def test_a_modify_with_a_new_id_is_a_remove_and_an_upsert() -> None:
    before = order_rows([Order(order_id="old", price=Decimal("10"), quantity=Decimal("1"))], 1, "a")
    after = order_rows([Order(order_id="new", price=Decimal("11"), quantity=Decimal("1"))], 1, "a")
    upserts, removes = diff_rows(before, after)
    assert [row["id"] for row in upserts] == ["new"]
    assert removes == ["old"]


# --- rebuilding only what changed (P2) ------------------------------------------------------------


def _parsed(items: list[dict]) -> list[Order]:
    return [parse_order(item) for item in loads(orjson.dumps(items))]


def test_rows_of_unchanged_records_are_reused_and_changed_ones_rebuilt() -> None:
    first = _parsed([{"order_id": "a", "price": 10, "quantity": 2}, {"order_id": "b", "price": 5, "quantity": 1}])
    built = build_order_rows(first, 1, "Desk")
    again = _parsed([{"order_id": "a", "price": 10, "quantity": 2}, {"order_id": "b", "price": 6, "quantity": 1}])
    rebuilt = build_order_rows(again, 1, "Desk", built)
    assert rebuilt.rows["a"] is built.rows["a"]  # same record as QFEX sent it: same row object
    assert rebuilt.rows["b"] is not built.rows["b"]
    assert rebuilt.rows["b"]["price"] == "6"
    assert rebuilt.rows == order_rows(again, 1, "Desk")
    upserts, removes = diff_rows(built.rows, rebuilt.rows)
    assert [row["id"] for row in upserts] == ["b"]
    assert removes == []


def test_a_renamed_account_rebuilds_every_row() -> None:
    records = _parsed([{"order_id": "a", "price": 10, "quantity": 2}])
    built = build_order_rows(records, 1, "Desk")
    renamed = build_order_rows(records, 1, "Desk A", built)
    assert renamed.rows["a"]["account_label"] == "Desk A"
    other_account = build_order_rows(records, 2, "Desk", built)
    assert other_account.rows["a"]["account"] == 2


def test_reusing_rows_gives_exactly_what_building_afresh_gives() -> None:
    """Through a few hundred simulated book changes (fills, cancels, new orders, TWAP slices)."""
    with Simulator(accounts=[SimAccount(public_key="pk", secret="sk", orders=200, twaps=20)], seed=11) as sim:
        orders = build_order_rows(_parsed(sim.open_orders("pk")), 3, "Desk")
        twaps = build_twap_rows([parse_twap(t) for t in loads(orjson.dumps(sim.active_twaps("pk")))], 3, "Desk")
        reused = 0
        for _ in range(60):
            sim.step(5)
            records = _parsed(sim.open_orders("pk"))
            twap_records = [parse_twap(t) for t in loads(orjson.dumps(sim.active_twaps("pk")))]
            next_orders = build_order_rows(records, 3, "Desk", orders)
            next_twaps = build_twap_rows(twap_records, 3, "Desk", twaps)
            assert next_orders.rows == order_rows(records, 3, "Desk")
            assert list(next_orders.rows) == list(order_rows(records, 3, "Desk"))  # same order, too
            assert next_twaps.rows == twap_rows(twap_records, 3, "Desk")
            reused += sum(1 for key, row in next_orders.rows.items() if orders.rows.get(key) is row)
            orders, twaps = next_orders, next_twaps
        assert reused > 60 * 150  # most of a 200-order book is unchanged after 5 events


def test_a_later_duplicate_id_still_wins_when_rows_are_reused() -> None:
    items = [{"order_id": "a", "price": 1, "quantity": 1}, {"order_id": "a", "price": 2, "quantity": 1}]
    built = build_order_rows(_parsed(items), 1, "Desk")
    again = build_order_rows(_parsed(items), 1, "Desk", built)
    assert built.rows["a"]["price"] == again.rows["a"]["price"] == "2"
