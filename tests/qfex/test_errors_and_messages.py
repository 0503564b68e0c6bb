"""Error frames of both shapes, the exception family, the allow-list and frame classification."""

from __future__ import annotations

import pytest

from orders.qfex import (
    ALLOWED_MESSAGE_TYPES,
    AccountActionRequired,
    AuthenticationRejected,
    ConnectionFailed,
    ConnectionLost,
    ExchangeError,
    ForbiddenMessage,
    InvalidParameter,
    PagingIncomplete,
    ProtocolError,
    QfexError,
    QfexTimeout,
    RateLimited,
)
from orders.qfex.errors import is_error_frame, parse_error_frame
from orders.qfex.messages import (
    check_outgoing_text,
    classify,
    decode_incoming,
    encode_outgoing,
    get_user_orders_message,
    subscribe_message,
)
from orders.qfex.records import loads

TRADING_TYPES = [
    "cancel_on_disconnect",
    "cancel_order",
    "add_order",
    "modify_order",
    "close_position",
    "cancel_all_orders",
    "add_twap",
    "cancel_stop_order",
    "modify_stop_order",
    "set_user_leverage",
    "get_order",  # read-only, but not on the list yet: refused until someone adds it deliberately
]


def nested(code, message=None, incoming=None, **extra):
    body = {"error_code": code, "message": message, **extra}
    if incoming is not None:
        body["incoming_message"] = {"type": incoming, "params": {}}
    return {"err": body}


def flat(kind, code, message=None, incoming=None, **extra):
    frame = {"type": kind, "error_code": code, "message": message, **extra}
    if incoming is not None:
        frame["incoming_message"] = {"type": incoming}
    return frame


@pytest.mark.parametrize(
    "frame",
    [
        nested("InvalidParameter", "bad limit", "get_user_orders"),
        flat("error", "InvalidParameter", "bad limit", "get_user_orders"),
        flat("Err", "InvalidParameter", "bad limit", "get_user_orders"),
        flat("err", "InvalidParameter", "bad limit", "get_user_orders"),
    ],
)
def test_both_error_shapes_parse_the_same(frame):
    assert is_error_frame(frame)
    error = parse_error_frame(frame)
    assert error.error_code == "InvalidParameter"
    assert error.message == "bad limit"
    assert error.incoming_type == "get_user_orders"


def test_odd_error_frames_are_read_defensively():
    assert parse_error_frame({"err": "something broke"}).message == "something broke"
    assert parse_error_frame({"err": "something broke"}).error_code == "Unknown"
    assert parse_error_frame({"err": None}).error_code == "Unknown"
    assert parse_error_frame({"err": {"error_code": 5, "incoming_message": "get_user_orders"}}).incoming_type is None
    assert parse_error_frame({"err": {"error_code": "X", "message": "x" * 5000}}).message.endswith("…")
    assert not is_error_frame({"type": "auth", "result": "success"})


@pytest.mark.parametrize(
    ("extra", "message", "expected"),
    [
        ({"retry_after": 1.5}, None, 1.5),
        ({"retry_after": "2"}, None, 2.0),
        ({"retry_after_secs": 3}, None, 3.0),
        ({"retry_after_ms": 1500}, None, 1.5),
        ({}, "Rate limit exceeded, retry after 1.5 s", 1.5),
        ({}, "Rate limit exceeded; retry after 250ms", 0.25),
        ({}, "retry_after=4 seconds", 4.0),
        ({}, "Rate limit exceeded", None),
        ({"retry_after": -1}, None, None),
        ({"retry_after": {"s": 1}}, None, None),
        ({"retry_after": True}, None, None),
        ({"retry_after": "soon"}, "retry after 2 s", 2.0),
    ],
)
def test_rate_limit_hint_is_parsed_defensively(extra, message, expected):
    for frame in (
        nested("RateLimited", message, "get_user_orders", **extra),
        flat("error", "RateLimited", message, **extra),
    ):
        exc = parse_error_frame(frame).to_exception(during="get_user_orders")
        assert isinstance(exc, RateLimited)
        assert exc.retry_after == expected


def test_error_codes_map_to_exception_classes():
    def exc_for(code, during="get_user_orders"):
        return parse_error_frame(nested(code, "text")).to_exception(during=during)

    assert type(exc_for("InvalidParameter")) is InvalidParameter
    assert type(exc_for("InvalidJSONFormat")) is InvalidParameter
    assert type(exc_for("PermissionDenied", during="auth")) is AuthenticationRejected
    assert type(exc_for("InvalidParameter", during="auth")) is AuthenticationRejected
    assert type(exc_for("RateLimited", during="auth")) is RateLimited
    other = exc_for("ServerError")
    assert type(other) is ExchangeError
    assert other.error_code == "ServerError"
    assert other.message == "text"
    # On a read, these need a person to act in QFEX's web app: one typed exception (issue 13, part 10).
    assert type(exc_for("PermissionDenied")) is AccountActionRequired


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("KycRequired", "identity verification"),
        ("TncRequired", "terms and conditions"),
        ("PermissionDenied", "read permission"),
    ],
)
def test_account_actions_on_a_read_are_one_typed_exception(code, words):
    error = parse_error_frame(nested(code, "please verify")).to_exception(during="get_user_orders")
    assert isinstance(error, AccountActionRequired)
    assert isinstance(error, ExchangeError)  # callers catching exchange errors still catch it
    assert (error.error_code, error.message) == (code, "please verify")
    assert words in error.user_message
    assert "QFEX's web app" in error.user_message


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        ('{"type": "get_user_orders", "params": {}}', "get_user_orders"),  # JSON text: parsed
        ('{"type": "auth"}', "auth"),
        ("get_user_orders", None),  # not JSON: unknown
        ("[1, 2]", None),  # JSON, but not an object
        ('{"type": 7}', None),
        ("{" * 100_000, None),  # hostile: never crashes
    ],
)
def test_incoming_message_given_as_a_string(incoming, expected):
    frame = {"err": {"error_code": "KycRequired", "message": "m", "incoming_message": incoming}}
    assert parse_error_frame(frame).incoming_type == expected


def test_exception_family():
    for cls in (
        AuthenticationRejected,
        RateLimited,
        InvalidParameter,
        QfexTimeout,
        ConnectionFailed,
        ConnectionLost,
        ProtocolError,
        ExchangeError,
        ForbiddenMessage,
        PagingIncomplete,
    ):
        assert issubclass(cls, QfexError)
    assert issubclass(InvalidParameter, ExchangeError)
    assert issubclass(RateLimited, ExchangeError)


@pytest.mark.parametrize(
    "exc",
    [
        AuthenticationRejected("x"),
        RateLimited(1.5),
        RateLimited(None),
        InvalidParameter("InvalidParameter", "bad"),
        ExchangeError("ServerError", "boom"),
        ExchangeError("SomethingNew"),
        QfexTimeout("x"),
        ConnectionFailed("x"),
        ConnectionLost("x"),
        ProtocolError("x"),
        ForbiddenMessage("x"),
        PagingIncomplete("x"),
    ],
)
def test_every_error_has_a_plain_user_message(exc):
    assert exc.user_message
    assert exc.user_message[0].isupper()
    assert exc.user_message.endswith(".")
    assert "\n" not in exc.user_message


def test_auth_rejection_message_is_the_trader_sentence():
    assert AuthenticationRejected().user_message == (
        "QFEX rejected the API key or its signature — check the key pair and that this server's clock is right."
    )
    assert "1.5 s" in RateLimited(1.5).user_message


def test_allow_list_is_exactly_the_read_only_types():
    assert frozenset({"auth", "subscribe", "unsubscribe", "get_user_orders"}) == ALLOWED_MESSAGE_TYPES


@pytest.mark.parametrize("kind", TRADING_TYPES)
def test_trading_messages_cannot_be_encoded(kind):
    with pytest.raises(ForbiddenMessage):
        encode_outgoing({"type": kind, "params": {"cancel_on_disconnect": True}})
    with pytest.raises(ForbiddenMessage):
        check_outgoing_text(f'{{"type": "{kind}", "params": {{}}}}')


@pytest.mark.parametrize("text", ["not json", "[]", '{"params": {}}', '{"type": 5}', b"\xff\xfe"])
def test_frames_without_an_allowed_type_are_refused(text):
    with pytest.raises(ForbiddenMessage):
        check_outgoing_text(text)


def test_allowed_messages_encode_compactly():
    assert encode_outgoing(subscribe_message(["order_responses"])) == (
        '{"type":"subscribe","params":{"channels":["order_responses"]}}'
    )
    assert get_user_orders_message(limit=10, offset=20, symbol="AAPL-USD") == {
        "type": "get_user_orders",
        "params": {"limit": 10, "offset": 20, "symbol": "AAPL-USD"},
    }


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"limit": 1001}, {"limit": True}, {"limit": 1.5}, {"offset": -1}, {"symbol": ""}, {"symbol": 5}],
)
def test_get_user_orders_parameters_are_validated(kwargs):
    with pytest.raises(ValueError, match=r"limit|offset|symbol"):
        get_user_orders_message(**kwargs)


@pytest.mark.parametrize(
    ("text", "kind", "key"),
    [
        ('{"authenticated": true}', "reply", "authenticated"),
        ('{"authenticated": false}', "reply", "authenticated"),
        ('{"type": "auth", "result": "success"}', "reply", "auth_result"),
        ('{"subscribed": "order_responses"}', "reply", "subscribed"),
        ('{"all_orders_response": {"orders": []}}', "reply", "all_orders_response"),
        ('{"user_orders": [], "count": 0}', "reply", "user_orders"),
        ('{"order_response": {"order_id": "a"}}', "push", "order_response"),
        ('{"err": {"error_code": "ServerError"}}', "error", None),
        ('{"type": "error", "error_code": "ServerError"}', "error", None),
        ('{"balance_response": {"deposit": 1}}', "other", None),
        ('{"position_response": {}}', "other", None),
        ('{"fill_response": {}}', "other", None),
        ('{"ack": {"incoming_message": {}}}', "other", None),
        (
            '{"type": "subscribed", "connection_id": "c", "message_id": 1, "channel": "v4_balances", "contents": []}',
            "other",
            None,
        ),
        ('{"brand_new_thing": 1}', "other", None),
    ],
)
def test_incoming_frames_are_classified_by_top_level_key(text, kind, key):
    incoming = classify(loads(text))
    assert incoming.kind == kind
    assert incoming.key == key


@pytest.mark.parametrize("text", ["{", "[1, 2]", "5", '"text"', '{"a": NaN}', "[" * 100000])
def test_non_objects_and_malformed_json_are_protocol_errors(text):
    with pytest.raises(ProtocolError):
        decode_incoming(text)
