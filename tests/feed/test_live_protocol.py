"""The live protocol's builders and the parsing of browser frames."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from orders import live_protocol as lp


def test_messages_have_the_documented_shapes() -> None:
    status = lp.Status("stale", "QFEX did not answer within 10 s; next try in 4 s.", 1764030000.12, 1764030010.0)
    snapshot = orjson.loads(lp.encode(lp.snapshot_message(7, 42, 1764030000.12, status, [{"id": "a"}], [])))
    assert snapshot == {
        "type": "snapshot",
        "account": 7,
        "seq": 42,
        "as_of": 1764030000.12,
        "status": {"state": "stale", "reason": status.reason, "as_of": 1764030000.12, "next_retry_at": 1764030010.0},
        "orders": [{"id": "a"}],
        "twaps": [],
    }
    diff = orjson.loads(lp.encode(lp.diff_message(7, 43, 1.5, upsert_orders=[{"id": "b"}], remove_twaps=["t"])))
    assert diff == {
        "type": "diff",
        "account": 7,
        "seq": 43,
        "as_of": 1.5,
        "upsert": {"orders": [{"id": "b"}], "twaps": []},
        "remove": {"orders": [], "twaps": ["t"]},
    }
    assert orjson.loads(lp.encode(lp.status_message(7, 43, status))) == {
        "type": "status",
        "account": 7,
        "seq": 43,
        "state": "stale",
        "reason": status.reason,
        "as_of": 1764030000.12,
        "next_retry_at": 1764030010.0,
    }
    assert orjson.loads(lp.encode(lp.error_message(None, lp.TOO_LARGE, "too big"))) == {
        "type": "error",
        "account": None,
        "code": "too_large",
        "message": "too big",
    }


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
