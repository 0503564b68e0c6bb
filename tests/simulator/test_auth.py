"""HMAC authentication as QFEX checks it (docs/qfex-protocol.md §2), every refusal reason, and the deadline."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from orders.simulator import SimAccount, Simulator

from .conftest import (
    ACCOUNT_A,
    ACCOUNT_B,
    SUBACCOUNT_A,
    auth_message,
    authed,
    connect,
    sign,
    wait_until,
)


def test_signature_matches_the_protocol_test_vector():
    # V1 of docs/qfex-protocol.md §2.7, so the helpers below sign exactly as QFEX expects.
    assert (
        sign("qfex_secret_test_0001", "00112233445566778899aabbccddeeff", 1760545414)
        == "641fc06a4d74e4401ab25d6fddc1f633e3af39ef5dccb9736f4de04d122584e4"
    )


def test_auth_success_current_shape_and_primary_book(sim: Simulator):
    with connect(sim, ACCOUNT_A.public_key) as client:
        assert client.auth(ACCOUNT_A) == {"authenticated": True}
        reply = client.orders()
    ids = [o["order_id"] for o in reply["all_orders_response"]["orders"]]
    assert ids == [o["order_id"] for o in sim.open_orders(ACCOUNT_A.user_id)]
    assert {o["user_id"] for o in reply["all_orders_response"]["orders"]} == {ACCOUNT_A.user_id}


def test_auth_success_legacy_shape(sim: Simulator):
    sim.faults.auth_success_shape = "legacy"
    with connect(sim) as client:  # no ?api_key= at all: the query parameter is optional
        assert client.auth(ACCOUNT_A) == {"type": "auth", "result": "success"}


def test_account_id_selects_the_subaccount_book(sim: Simulator):
    with authed(sim, ACCOUNT_A, account_id=SUBACCOUNT_A) as client, connect(sim):
        orders = client.orders()["all_orders_response"]["orders"]
        wait_until(lambda: sim.connection_count == 2, what="the second connection to register")
        assert sim.authenticated_connections() == 1
        assert sim.authenticated_connections(SUBACCOUNT_A) == 1
        assert sim.authenticated_connections(ACCOUNT_A.user_id) == 0
    assert orders
    assert [o["order_id"] for o in orders] == [o["order_id"] for o in sim.open_orders(SUBACCOUNT_A)]
    assert {o["user_id"] for o in orders} == {SUBACCOUNT_A}


def test_timestamp_just_inside_the_window_is_accepted(sim: Simulator):
    with authed(sim, unix_ts=int(time.time()) - 290):
        pass


def _refusal(sim: Simulator, message: dict, api_key: str | None = ACCOUNT_A.public_key) -> tuple[dict, int | None]:
    """Send one auth message; return the error body and the close code that followed."""
    with connect(sim, api_key) as client:
        reply = client.request(message)
        code, _ = client.recv_close()
    assert set(reply) == {"err"}, reply
    assert reply["err"]["error_code"] == "PermissionDenied"
    assert reply["err"]["incoming_message"] == {"type": "auth"}
    return reply["err"], code


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("bad_signature", "invalid signature"),
        ("wrong_secret", "invalid signature"),
        ("uppercase_signature", "invalid signature"),
        ("unknown_key", "unknown or revoked API key"),
        ("ts_float", "unix_ts must be an integer"),
        ("ts_string", "unix_ts must be an integer"),
        ("ts_milliseconds", "300 s away"),
        ("ts_future", "300 s away"),
        ("ts_past", "300 s away"),
        ("nonce_not_hex", "nonce must be a hex string"),
        ("nonce_too_long", "nonce must be a hex string"),
        ("nonce_empty", "nonce must be a hex string"),
        ("foreign_account_id", "account_id is not a subaccount"),
        ("primary_as_account_id", "account_id is not a subaccount"),
        ("legacy_api_key_form", "no longer accepted"),
        ("jwt_form", "JWT authentication is not supported"),
    ],
)
def test_each_auth_failure_is_refused_with_its_reason_and_closed(sim: Simulator, case: str, reason: str):
    now = int(time.time())
    messages = {
        "bad_signature": auth_message(ACCOUNT_A, signature="0" * 64),
        "wrong_secret": auth_message(ACCOUNT_A, secret=ACCOUNT_B.secret),
        "uppercase_signature": _uppercased(auth_message(ACCOUNT_A)),
        "unknown_key": auth_message(_renamed(ACCOUNT_A, "qfex_pub_nobody")),
        "ts_float": auth_message(ACCOUNT_A, unix_ts=float(now)),
        "ts_string": auth_message(ACCOUNT_A, unix_ts=str(now)),
        "ts_milliseconds": auth_message(ACCOUNT_A, unix_ts=now * 1000),
        "ts_future": auth_message(ACCOUNT_A, unix_ts=now + 330),
        "ts_past": auth_message(ACCOUNT_A, unix_ts=now - 330),
        "nonce_not_hex": auth_message(ACCOUNT_A, nonce="not-hex-nonce"),
        "nonce_too_long": auth_message(ACCOUNT_A, nonce="ab" * 51),
        "nonce_empty": auth_message(ACCOUNT_A, nonce=""),
        "foreign_account_id": auth_message(ACCOUNT_A, account_id=ACCOUNT_B.user_id),
        "primary_as_account_id": auth_message(ACCOUNT_A, account_id=ACCOUNT_A.user_id),
        "legacy_api_key_form": {"type": "auth", "params": {"api_key": ACCOUNT_A.public_key}},
        "jwt_form": {"type": "auth", "params": {"jwt": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}},
    }
    api_key = None if case == "unknown_key" else ACCOUNT_A.public_key
    err, code = _refusal(sim, messages[case], api_key)
    assert reason in err["message"]
    assert code == 1008
    assert sim.request_count("auth") == 1


def test_nonce_hex_of_exactly_100_chars_is_accepted(sim: Simulator):
    with authed(sim, nonce="ab" * 50):
        pass


def test_reused_nonce_is_refused_per_key(sim: Simulator):
    nonce = "00112233445566778899aabbccddeeff"
    with authed(sim, ACCOUNT_A, nonce=nonce):
        pass
    err, _ = _refusal(sim, auth_message(ACCOUNT_A, nonce=nonce))
    assert "nonce already used" in err["message"]
    # The same nonce is still fresh for another key.
    with authed(sim, ACCOUNT_B, nonce=nonce):
        pass


def test_badly_signed_attempt_does_not_burn_the_nonce(sim: Simulator):
    nonce = "feedfacefeedfacefeedfacefeedface"
    _refusal(sim, auth_message(ACCOUNT_A, nonce=nonce, signature="f" * 64))
    with authed(sim, ACCOUNT_A, nonce=nonce):
        pass


def test_revoked_key_is_refused_and_its_open_sessions_are_closed(sim: Simulator):
    client = authed(sim, ACCOUNT_A)
    sim.revoke(ACCOUNT_A.public_key)
    code, reason = client.recv_close()
    client.close()
    assert (code, reason) == (1008, "API key revoked")
    err, _ = _refusal(sim, auth_message(ACCOUNT_A))
    assert err["message"] == "unknown or revoked API key"
    sim.unrevoke(ACCOUNT_A.public_key)
    with authed(sim, ACCOUNT_A):
        pass


def test_query_api_key_must_match_the_signed_key(sim: Simulator):
    err, _ = _refusal(sim, auth_message(ACCOUNT_A), api_key=ACCOUNT_B.public_key)
    assert "api_key query parameter" in err["message"]


def test_reject_auth_fault_refuses_a_correct_signature(sim: Simulator):
    sim.faults.reject_auth = True
    err, code = _refusal(sim, auth_message(ACCOUNT_A))
    assert err["message"] == "authentication rejected"
    assert code == 1008


def test_failure_style_authenticated_false(sim: Simulator):
    sim.faults.auth_failure_style = "authenticated_false"
    with connect(sim) as client:
        assert client.request(auth_message(ACCOUNT_A, signature="0" * 64)) == {"authenticated": False}
        assert client.recv_close()[0] == 1008


def test_failure_style_close_sends_no_frame(sim: Simulator):
    sim.faults.auth_failure_style = "close"
    with connect(sim) as client:
        client.send(auth_message(ACCOUNT_A, signature="0" * 64))
        assert client.recv_close() == (1008, "authentication failed")
        assert client.received == []


def test_flat_error_shape(sim: Simulator):
    sim.faults.error_shape = "flat"
    with connect(sim) as client:
        reply = client.request(auth_message(ACCOUNT_A, signature="0" * 64))
    assert reply["type"] == "error"
    assert reply["error_code"] == "PermissionDenied"
    assert reply["message"] == "invalid signature"
    assert reply["incoming_message"] == {"type": "auth"}


def test_command_before_auth_is_permission_denied_and_not_executed(sim: Simulator):
    with connect(sim) as client:
        reply = client.request({"type": "get_user_orders", "params": {"limit": 5}})
        assert reply["err"]["error_code"] == "PermissionDenied"
        assert reply["err"]["incoming_message"] == {"type": "get_user_orders", "params": {"limit": 5}}
        # The connection stays usable: authenticating now works.
        assert client.auth(ACCOUNT_A) == {"authenticated": True}


def test_second_auth_is_already_authenticated_and_keeps_the_session(sim: Simulator):
    with authed(sim, ACCOUNT_A) as client:
        reply = client.request(auth_message(ACCOUNT_A))
        assert reply["err"]["error_code"] == "AlreadyAuthenticated"
        assert "all_orders_response" in client.orders(limit=1)


def test_no_auth_within_the_deadline_closes_the_connection(sim: Simulator):
    sim.faults.auth_deadline = 0.5
    with connect(sim) as client:
        assert client.recv_close() == (1008, "authentication timeout")


def test_authenticated_connection_outlives_the_deadline(sim: Simulator):
    sim.faults.auth_deadline = 0.3
    with authed(sim) as client:
        client.expect_nothing(0.6)
        assert "all_orders_response" in client.orders(limit=1)


def test_no_secret_or_signature_in_frames_logs_or_records(sim: Simulator, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    good = auth_message(ACCOUNT_A)
    bad_signature = "ab" * 32
    with connect(sim, ACCOUNT_A.public_key) as client:
        client.request(auth_message(ACCOUNT_A, signature=bad_signature))
        client.recv_close()
        frames = list(client.received)
    with connect(sim, ACCOUNT_A.public_key) as client:
        client.request(good)
        client.request(auth_message(ACCOUNT_A))  # AlreadyAuthenticated echo
        client.request({"type": "add_order", "params": {"hmac": good["params"]["hmac"], "secret": ACCOUNT_A.secret}})
        frames += client.received
    everything = "\n".join(
        [*frames, caplog.text, repr(sim.received_log), repr(sim.forbidden_received), repr(sim), repr(ACCOUNT_A)]
    )
    for needle in (ACCOUNT_A.secret, bad_signature, good["params"]["hmac"]["signature"]):
        assert needle not in everything
    assert sim.forbidden_received[-1]["params"] == {"hmac": "[redacted]", "secret": "[redacted]"}


def _uppercased(message: dict) -> dict:
    message["params"]["hmac"]["signature"] = message["params"]["hmac"]["signature"].upper()
    return message


def _renamed(account: SimAccount, public_key: str) -> SimAccount:
    return replace(account, public_key=public_key)
