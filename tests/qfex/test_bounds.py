"""S24: hostile exchange data is refused record by record, without building huge numbers or strings.

A 10-byte JSON number such as ``1e10000000`` would become a ten-million-digit string on the page; a text
field could be megabytes. Such a record keeps only its id and says why it was refused; the rest of the
book is unaffected, and each reason is logged once, never with the value.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest

from orders.live.rows import build_order_rows, order_row, twap_row
from orders.qfex import records
from orders.qfex.records import OutOfBounds, loads, parse_order, parse_orders_page, parse_twap

GOOD = '{"order_id": "ok-1", "symbol": "AAPL-USD", "price": 187.25, "quantity": 10, "quantity_remaining": 4}'


@pytest.fixture(autouse=True)
def _fresh_log_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "_logged_reasons", set())


@pytest.mark.parametrize(
    ("number", "words"),
    [
        ("1e10000000", "beyond 10^±30"),
        ("1E-31", "beyond 10^±30"),
        ("1" * 41, "more than 40 significant digits"),
        ("0." + "1" * 41, "more than 40 significant digits"),
        ("9" * 5000, "more than 40 significant digits"),
        ("1e99999999999999999999", "beyond 10^±30"),
    ],
)
def test_out_of_bounds_numbers_are_never_built(number: str, words: str) -> None:
    started = time.process_time()
    parsed = loads('{"price": ' + number + "}")["price"]
    assert isinstance(parsed, OutOfBounds)
    assert words in parsed.reason
    assert time.process_time() - started < 1.0  # nothing ten million digits long was made


@pytest.mark.parametrize("number", ["187.25", "0.00000001", "1e30", "-1E-30", "1764030000123456789", "0e999", "0"])
def test_numbers_within_bounds_are_exact_decimals(number: str) -> None:
    assert loads(number) == Decimal(number)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("price", "1e10000000", "a number beyond 10^±30 in field 'price'"),
        ("client_order_id", '"' + "x" * 257 + '"', "a text longer than 256 characters in field 'client_order_id'"),
        ("note", '"' + "y" * 300 + '"', "a text longer than 256 characters in a field"),
        ("blob", "[" + ",".join(['"' + "z" * 200 + '"'] * 50) + "]", "a record larger than 8 KiB"),
        ("nested", '{"deep": [1e400]}', "a number beyond 10^±30"),
    ],
)
def test_a_record_out_of_bounds_becomes_a_refused_row(field: str, value: str, words: str) -> None:
    order = parse_order(loads('{"order_id": "bad-1", "symbol": "AAPL-USD", "' + field + '": ' + value + "}"))
    assert order.refused is not None
    assert words in order.refused
    assert order.raw == {"order_id": "bad-1", "refused": order.refused}  # nothing big is kept
    row = order_row(order, 7, "Desk A main")
    assert row is not None
    assert (row["id"], row["account"], row["account_label"], row["refused"]) == (
        "bad-1",
        7,
        "Desk A main",
        order.refused,
    )
    normal = order_row(parse_order(loads(GOOD)), 7, "Desk A main")
    assert normal is not None
    assert set(row) == set(normal) | {"refused"}  # the same shape, marked
    assert all(value is None for key, value in row.items() if key not in ("id", "account", "account_label", "refused"))


def test_a_refused_twap_is_marked_too() -> None:
    twap = parse_twap(loads('{"twap_id": "t-1", "total_quantity": 1e10000000}'))
    row = twap_row(twap, 3, "Desk")
    assert row is not None
    assert row["id"] == "t-1"
    assert "beyond" in row["refused"]
    assert row["total_quantity"] is None


def test_the_rest_of_the_book_still_shows_and_each_reason_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="orders.qfex.records")
    bad = ['{"order_id": "bad-' + str(n) + '", "price": 1e10000000}' for n in range(5)]
    text = '{"all_orders_response": {"orders": [' + ",".join([GOOD, *bad]) + "]}}"
    page = parse_orders_page(loads(text))
    rows = build_order_rows(page.orders, 1, "A").rows
    assert rows["ok-1"]["price"] == "187.25"
    assert all(rows[f"bad-{n}"]["refused"] for n in range(5))
    refusals = [r for r in caplog.records if "refused a record" in r.getMessage()]
    assert len(refusals) == 1  # once per distinct reason, not per record
    assert "10000000" not in caplog.text  # never the value


def test_a_refused_record_without_a_usable_id_is_left_out_with_a_logged_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="orders.qfex.records")
    page = parse_orders_page(loads('{"all_orders_response": {"orders": [{"order_id": "' + "i" * 300 + '"}]}}'))
    assert build_order_rows(page.orders, 1, "A").rows == {}
    assert "no usable id" in caplog.text
    assert "i" * 300 not in caplog.text


@pytest.mark.parametrize("body", ['{"twaps": []}', '{"orders": null, "twaps": []}'])
def test_a_reply_without_orders_is_an_empty_page_with_a_warning(body: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="orders.qfex.records")
    page = parse_orders_page(loads('{"all_orders_response": ' + body + "}"))
    assert (page.orders, page.received) == ([], 0)
    assert "no orders array" in caplog.text
