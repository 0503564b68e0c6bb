"""Every fault switch, observed from a raw client over loopback."""

from __future__ import annotations

import json
import socket

import pytest
import websocket

from orders.simulator import Faults, Simulator

from .conftest import (
    ACCOUNT_A,
    PATIENT,
    auth_message,
    authed,
    connect,
    masked_text_frame,
    raw_upgrade,
    read_http_head,
    wait_until,
)

# ----- F1: handshake refused or reset -----


def test_refused_handshake_is_http_503(sim: Simulator):
    sim.faults.refuse_handshake = True
    with pytest.raises(websocket.WebSocketBadStatusException) as caught:
        connect(sim)
    assert caught.value.status_code == 503
    assert sim.connection_count == 0
    assert sim.handshake_count == 1


def test_reset_handshake_resets_the_tcp_connection(sim: Simulator):
    sim.faults.reset_handshake = True
    sock = raw_upgrade(sim)
    with sock, pytest.raises(ConnectionResetError):
        # A RST, not an orderly close: recv raises instead of returning b"".
        sock.recv(1024)
    with pytest.raises((ConnectionError, websocket.WebSocketException)):
        connect(sim)
    sim.faults.reset_handshake = False
    with authed(sim):
        pass


def test_silent_handshake_never_answers_the_upgrade(sim: Simulator):
    sim.faults.silent_handshake = True
    sock = raw_upgrade(sim)
    with sock:
        sock.settimeout(0.4)
        with pytest.raises(TimeoutError):
            sock.recv(1024)
    wait_until(lambda: sim.handshake_count == 1, what="the upgrade request to be seen")


# ----- F2: part of a reply frame, then a reset -----


def test_drop_mid_reply_sends_a_partial_frame_then_resets(sim: Simulator):
    sim.faults.drop_mid_reply = True
    sock = raw_upgrade(sim)
    with sock:
        assert read_http_head(sock).startswith(b"HTTP/1.1 101")
        sock.sendall(masked_text_frame(json.dumps(auth_message(ACCOUNT_A))))
        assert _read_frame(sock) == b'{"authenticated":true}'
        sock.sendall(masked_text_frame('{"type":"get_user_orders","params":{}}'))
        header = _recv_exactly(sock, 2)
        assert header[0] == 0x81  # final text frame
        length = header[1] & 0x7F
        if length == 126:
            length = int.from_bytes(_recv_exactly(sock, 2), "big")
        elif length == 127:
            length = int.from_bytes(_recv_exactly(sock, 8), "big")
        received, error = _read_until_closed(sock)
    assert isinstance(error, ConnectionResetError)  # reset, not an orderly close
    assert 0 < len(received) < length
    assert received.startswith(b'{"all_orders_response":{"orders":[')


def test_drop_mid_reply_seen_by_websocket_client(sim: Simulator):
    with authed(sim) as client:
        sim.faults.drop_mid_reply = True
        client.send({"type": "get_user_orders", "params": {}})
        with pytest.raises((ConnectionError, websocket.WebSocketConnectionClosedException)):
            client.recv()
    wait_until(lambda: sim.connection_count == 0, what="the dropped connection to be gone")


# ----- F3: slow replies -----


def test_reply_delay_holds_back_the_reply(sim: Simulator):
    with authed(sim) as client:
        sim.faults.reply_delay = 1.0
        client.send({"type": "get_user_orders", "params": {"limit": 1}})
        client.expect_nothing(0.3)
        assert "all_orders_response" in client.recv(PATIENT)


def test_page_latency_delays_every_page():
    with Simulator([ACCOUNT_A], page_latency=0.8, close_timeout=1.0) as simulator, authed(simulator) as client:
        client.send({"type": "get_user_orders", "params": {"limit": 1}})
        client.expect_nothing(0.3)
        assert "all_orders_response" in client.recv(PATIENT)
        simulator.page_latency = 0
        assert "all_orders_response" in client.orders(limit=1)


# ----- F4: open but silent -----


def test_silent_connection_accepts_and_never_answers(sim: Simulator):
    sim.faults.silent = True
    with connect(sim) as client:
        client.send(auth_message(ACCOUNT_A))
        client.expect_nothing()
        wait_until(lambda: sim.connection_count == 1, what="the silent connection to register")
        sim.faults.silent = False
        client.send(auth_message(ACCOUNT_A))
        client.expect_nothing()  # a connection opened while silent stays silent
    assert sim.request_count("auth") == 0  # nothing was processed
    with authed(sim):  # new connections behave again
        pass


def test_silent_switched_on_mid_connection(sim: Simulator):
    with authed(sim) as client:
        client.send({"type": "subscribe", "params": {"channels": ["order_responses"]}})
        assert client.recv() == {"subscribed": "order_responses"}
        sim.faults.silent = True
        client.send({"type": "get_user_orders", "params": {"limit": 1}})
        sim.step(10)
        client.expect_nothing()
        sim.faults.silent = False
        assert "all_orders_response" in client.orders(limit=1)
    assert sim.request_count("get_user_orders") == 1  # the one sent while silent was ignored


# ----- F5: malformed, wrong schema, oversized -----


def test_malformed_json_reply(sim: Simulator):
    sim.faults.malformed_json = True
    with authed(sim) as client:
        client.send({"type": "get_user_orders", "params": {}})
        text = client.recv_text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_wrong_schema_reply(sim: Simulator):
    sim.faults.wrong_schema = True
    with authed(sim) as client:
        reply = client.orders()
    assert not isinstance(reply["all_orders_response"]["orders"], list)


def test_oversized_reply_has_exactly_the_requested_size(sim: Simulator):
    sim.faults.oversized_reply_bytes = 3_000_000
    with authed(sim) as client:
        client.send({"type": "get_user_orders", "params": {}})
        text = client.recv_text()
    assert len(text.encode()) == 3_000_000
    body = json.loads(text)["all_orders_response"]
    assert len(body["orders"]) == 30


# ----- F6 is covered in test_auth.py; F7 in test_ratelimit_and_forbidden.py -----
# ----- F8: duplicates and unrelated frames -----


def test_duplicate_replies(sim: Simulator):
    sim.faults.duplicate_replies = True
    with authed(sim) as client:
        client.send({"type": "get_user_orders", "params": {"limit": 3}})
        first, second = client.recv_text(), client.recv_text()
        client.expect_nothing()
    assert first == second
    assert len(json.loads(first)["all_orders_response"]["orders"]) == 3


def test_unrelated_frames_come_before_replies(sim: Simulator):
    sim.remove_order(ACCOUNT_A.user_id, sim.open_orders(ACCOUNT_A.user_id)[0]["order_id"])
    sim.faults.unrelated_frames = True
    with authed(sim) as client:
        client.send({"type": "get_user_orders", "params": {"limit": 2}})
        frames = [client.recv() for _ in range(5)]
    assert [next(iter(f)) for f in frames] == [
        "balance_response",
        "position_response",
        "type",
        "order_response",
        "all_orders_response",
    ]
    assert frames[2]["channel"] == "v4_balances"
    stale = frames[3]["order_response"]
    assert stale["order_id"] not in {o["order_id"] for o in sim.open_orders(ACCOUNT_A.user_id)}


# ----- F11, F12 -----


def test_max_lifetime_closes_the_connection(sim: Simulator):
    sim.faults.max_lifetime = 0.5
    with authed(sim) as client:
        assert client.recv_close() == (1001, "connection lifetime exceeded")


def test_page_mutation_changes_the_book_between_pages(sim: Simulator):
    sim.faults.page_mutation = 2
    with authed(sim) as client:
        client.send({"type": "subscribe", "params": {"channels": ["order_responses"]}})
        client.recv()
        before = sim.open_orders(ACCOUNT_A.user_id)
        first = client.orders(limit=10)["all_orders_response"]["orders"]
        pushes = [client.recv()["order_response"] for _ in range(4)]
        after = sim.open_orders(ACCOUNT_A.user_id)
    assert [o["order_id"] for o in first] == [o["order_id"] for o in before[:10]]
    assert sorted(p["status"] for p in pushes) == ["ACK", "ACK", "CANCELLED", "CANCELLED"]
    assert len(after) == len(before)
    assert {o["order_id"] for o in after} != {o["order_id"] for o in before}


# ----- switch validation -----


def test_fault_values_are_validated():
    faults = Faults()
    with pytest.raises(ValueError, match="true or false"):
        faults.silent = "yes"
    with pytest.raises(ValueError, match="0 or more"):
        faults.reply_delay = -1
    with pytest.raises(ValueError, match="one of"):
        faults.response_shape = "newest"
    with pytest.raises(ValueError, match="at most 1000"):
        faults.page_cap = 5000
    with pytest.raises(ValueError, match="unknown fault"):
        faults.set_from_text("nope", "1")
    faults.set_from_text("silent", "on")
    faults.set_from_text("reply_delay", "2.5")
    faults.set_from_text("page_mutation", "3")
    assert (faults.silent, faults.reply_delay, faults.page_mutation) == (True, 2.5, 3)
    faults.reset()
    assert faults == Faults()


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def _read_until_closed(sock: socket.socket) -> tuple[bytes, OSError | None]:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError as exc:
            return data, exc
        if not chunk:
            return data, None
        data += chunk


def _read_frame(sock: socket.socket) -> bytes:
    header = _recv_exactly(sock, 2)
    length = header[1] & 0x7F
    if length == 126:
        length = int.from_bytes(_recv_exactly(sock, 2), "big")
    elif length == 127:
        length = int.from_bytes(_recv_exactly(sock, 8), "big")
    return _recv_exactly(sock, length)
