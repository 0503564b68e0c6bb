"""The live protocol's builders and the parsing of browser frames."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from orders.live import protocol as lp
from orders.live.rows import order_rows, twap_rows
from orders.qfex.records import parse_order, parse_twap
from orders.simulator import SimAccount, Simulator


def test_messages_have_the_documented_shapes() -> None:
    status = lp.Status(
        "stale", "QFEX did not answer within 10 s", 1764030000.12, 1764030010.0, since=1764029990.0, failures=3
    )
    status_fields = {
        "state": "stale",
        "reason": status.reason,
        "action": "",
        "as_of": 1764030000.12,
        "since": 1764029990.0,
        "next_retry_at": 1764030010.0,
        "failures": 3,
    }
    closed = [{"id": "c", "outcome": "filled"}]
    snapshot = orjson.loads(
        lp.encode(lp.snapshot_message(7, 42, 1764030000.12, status, [{"id": "a"}], [], closed=closed))
    )
    assert snapshot == {
        "type": "snapshot",
        "account": 7,
        "seq": 42,
        "as_of": 1764030000.12,
        "part": 1,
        "parts": 1,
        "status": status_fields,
        "totals": {"orders": 1, "twaps": 0, "closed": 1},
        "orders": [{"id": "a"}],
        "twaps": [],
        "closed": closed,
    }
    assert lp.Status.from_dict(snapshot["status"]) == status
    diff = orjson.loads(lp.encode(lp.diff_message(7, 43, 1.5, upsert_orders=[{"id": "b"}], remove_twaps=["t"])))
    assert diff == {
        "type": "diff",
        "account": 7,
        "seq": 43,
        "as_of": 1.5,
        "upsert": {"orders": [{"id": "b"}], "twaps": []},
        "remove": {"orders": [], "twaps": ["t"], "closed": []},
        "closed": [],
    }
    assert orjson.loads(lp.encode(lp.status_message(7, 43, status))) == {
        "type": "status",
        "account": 7,
        "seq": 43,
        **status_fields,
    }
    assert orjson.loads(lp.encode(lp.error_message(None, lp.TOO_LARGE, "too big"))) == {
        "type": "error",
        "account": None,
        "code": "too_large",
        "message": "too big",
    }


MIB = 1024 * 1024


def _sim_rows(orders: int, twaps: int) -> tuple[list[dict], list[dict]]:
    """Realistic rows: the simulator's book (never started: no sockets) through the client's parser."""
    sim = Simulator(accounts=[SimAccount(public_key="pk", secret="sk", orders=orders, twaps=twaps)], seed=1)
    order_map = order_rows([parse_order(o) for o in sim.open_orders("pk")], 7, "Desk A main")
    twap_map = twap_rows([parse_twap(t) for t in sim.active_twaps("pk")], 7, "Desk A main")
    return list(order_map.values()), list(twap_map.values())


def test_a_4000_order_snapshot_goes_in_parts_under_the_size_limit() -> None:
    orders, twaps = _sim_rows(4000, 3)
    status = lp.Status("live", "", 1764030000.12)
    assert len(lp.encode(lp.snapshot_message(7, 42, 1.5, status, orders, twaps)).encode()) > MIB  # the bug
    texts = [lp.encode(m) for m in lp.snapshot_messages(7, 42, 1.5, status, orders, twaps, rows_per_message=500)]
    assert len(texts) >= 8
    parts = [orjson.loads(text) for text in texts]
    for index, (text, part) in enumerate(zip(texts, parts, strict=True), start=1):
        assert len(text.encode()) < MIB
        assert (part["part"], part["parts"], part["seq"], part["account"], part["as_of"]) == (
            index,
            len(texts),
            42,
            7,
            1.5,
        )
        assert part["status"] == status.as_dict()
        assert len(part["orders"]) + len(part["twaps"]) <= 500
    assert {part["totals"]["orders"] for part in parts} == {4000}
    # Reassembled in order, the parts are the rows, in their order.
    assert [row for part in parts for row in part["orders"]] == orjson.loads(orjson.dumps(orders))
    assert [row for part in parts for row in part["twaps"]] == orjson.loads(orjson.dumps(twaps))


def _decoded(messages: list[dict]) -> list[dict]:
    """Messages as a browser receives them (rows are pre-encoded fragments until then)."""
    return [orjson.loads(lp.encode(message)) for message in messages]


@pytest.mark.parametrize(
    ("orders", "twaps", "expected"),
    [(0, 0, [(0, 0)]), (3, 2, [(3, 2)]), (8, 2, [(8, 2)]), (9, 2, [(8, 2), (1, 0)]), (2, 12, [(0, 10), (2, 2)])],
)
def test_snapshot_parts_carry_twaps_then_orders_up_to_the_row_limit(orders: int, twaps: int, expected: list) -> None:
    messages = _decoded(
        lp.snapshot_messages(
            7, 1, None, lp.Status("live"), [{"id": str(n)} for n in range(orders)], [{"id": "t"}] * twaps, 10
        )
    )
    assert [(len(m["orders"]), len(m["twaps"])) for m in messages] == expected
    assert [(m["part"], m["parts"]) for m in messages] == [(i, len(expected)) for i in range(1, len(expected) + 1)]
    assert {tuple(m["totals"].items()) for m in messages} == {(("orders", orders), ("twaps", twaps), ("closed", 0))}


def test_every_message_stays_under_512_kib_whatever_the_rows_weigh() -> None:
    """S24: messages are split by bytes as well as by rows (500 rows of 4 KiB would be 2 MiB)."""
    heavy = [{"id": str(n), "client_order_id": "x" * 4000} for n in range(1500)]
    closed = [{"id": f"c{n}", "reason": "y" * 3000} for n in range(500)]
    snapshot = lp.snapshot_messages(7, 1, 1.0, lp.Status("live"), heavy, [], 500, closed=closed)
    texts = [lp.encode(message) for message in snapshot]
    assert max(len(text.encode()) for text in texts) <= lp.MAX_MESSAGE_BYTES
    parts = [orjson.loads(text) for text in texts]
    assert [row["id"] for part in parts for row in part["orders"]] == [row["id"] for row in heavy]
    assert [row["id"] for part in parts for row in part["closed"]] == [row["id"] for row in closed]
    diffs = lp.diff_messages(7, 10, 1.0, upsert_orders=heavy, remove_orders=["a"], closed=closed)
    diff_texts = [lp.encode(message) for message in diffs]
    assert max(len(text.encode()) for text in diff_texts) <= lp.MAX_MESSAGE_BYTES
    assert [orjson.loads(text)["seq"] for text in diff_texts] == list(range(10, 10 + len(diffs)))


def test_a_row_too_large_for_any_message_is_replaced_by_a_refused_row() -> None:
    monster = {"id": "big", "account": 7, "account_label": "Desk", "client_order_id": "z" * 200_000}
    (message,) = _decoded(lp.diff_messages(7, 3, 1.0, upsert_orders=[monster, {"id": "ok"}]))
    assert message["upsert"]["orders"] == [
        {"id": "big", "account": 7, "account_label": "Desk", "refused": "This record is too large to show."},
        {"id": "ok"},
    ]


def test_a_large_change_becomes_consecutive_diffs_that_apply_to_the_same_rows() -> None:
    before = {str(n): {"id": str(n), "v": 0} for n in range(1000)}
    upserts: list[dict[str, Any]] = [{"id": str(n), "v": 1} for n in range(0, 1000, 2)]
    upserts += [{"id": f"new{n}"} for n in range(300)]
    removes = [str(n) for n in range(1, 1000, 4)]
    twap_upserts = [{"id": "t1"}]
    messages = _decoded(
        lp.diff_messages(
            7, 43, 2.5, upsert_orders=upserts, upsert_twaps=twap_upserts, remove_orders=removes, rows_per_message=400
        )
    )
    assert [m["seq"] for m in messages] == [43, 44, 45]
    rows, twaps = dict(before), {}
    for message in messages:
        assert (message["type"], message["account"], message["as_of"]) == ("diff", 7, 2.5)
        assert "part" not in message
        size = sum(len(message[k][kind]) for k in ("upsert", "remove") for kind in ("orders", "twaps"))
        assert size <= 400
        for row in message["upsert"]["orders"]:
            rows[row["id"]] = row
        for row in message["upsert"]["twaps"]:
            twaps[row["id"]] = row
        for row_id in message["remove"]["orders"]:
            del rows[row_id]
    whole = {**before, **{row["id"]: row for row in upserts}}
    for row_id in removes:
        del whole[row_id]
    assert rows == whole
    assert twaps == {"t1": {"id": "t1"}}
    small = _decoded(lp.diff_messages(7, 43, 2.5, remove_twaps=["t"], rows_per_message=400))
    assert small == _decoded([lp.diff_message(7, 43, 2.5, remove_twaps=["t"])])


def test_a_withdrawn_closed_row_travels_in_remove_closed_and_splits_like_any_list() -> None:
    """One Closed row per order id: a complete read that lists the order again withdraws its row."""
    (one,) = _decoded(lp.diff_messages(7, 5, 1.0, upsert_orders=[{"id": "a"}], withdraw_closed=["a"]))
    assert one["remove"] == {"orders": [], "twaps": [], "closed": ["a"]}
    closed = [{"id": f"c{n}"} for n in range(5)]
    withdrawn = [f"w{n}" for n in range(5)]
    parts = _decoded(lp.diff_messages(7, 5, 1.0, closed=closed, withdraw_closed=withdrawn, rows_per_message=3))
    assert [m["seq"] for m in parts] == [5, 6, 7, 8]
    assert [row["id"] for m in parts for row in m["closed"]] == [row["id"] for row in closed]
    assert [row_id for m in parts for row_id in m["remove"]["closed"]] == withdrawn


def test_decimals_are_encoded_as_exact_strings() -> None:
    assert lp.encode({"p": Decimal("187.250")}) == '{"p":"187.250"}'
    assert lp.encode({"p": Decimal("1E+3")}) == '{"p":"1000"}'


def test_anything_else_is_refused_by_the_encoder() -> None:
    with pytest.raises(TypeError):
        lp.encode({"x": object()})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type": "refresh"}', lp.ClientMessage("refresh")),
        ('{"type": "resync"}', lp.ClientMessage("resync")),
        ('{"type": "resync", "account": 7}', lp.ClientMessage("resync", 7)),
    ],
)
def test_valid_client_messages(text: str, expected: lp.ClientMessage) -> None:
    assert lp.parse_client_message(text) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", lp.BAD_MESSAGE),
        ("[1, 2]", lp.BAD_MESSAGE),
        ('"refresh"', lp.BAD_MESSAGE),
        ("{}", lp.BAD_MESSAGE),
        ('{"type": 5}', lp.BAD_MESSAGE),
        ('{"type": "cancel_order"}', lp.UNKNOWN_TYPE),
        ('{"type": "resync", "account": "7"}', lp.BAD_MESSAGE),
        ('{"type": "resync", "account": true}', lp.BAD_MESSAGE),
    ],
)
def test_invalid_client_messages(text: str, code: str) -> None:
    with pytest.raises(lp.BadClientMessage) as caught:
        lp.parse_client_message(text)
    assert caught.value.code == code
    assert caught.value.message
