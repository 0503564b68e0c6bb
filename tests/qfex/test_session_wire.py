"""QfexSession against a scripted loopback server: handshake, frames, reply matching, limits, secrets.

The simulator covers exchange behaviour; these scripts produce the byte-level cases it cannot
(redirects, frames announcing huge lengths, binary and fragmented frames, trickled handshakes).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import logging
import ssl
import threading
import time

import pytest
import websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websocket import ABNF

from orders.qfex import (
    AuthenticationRejected,
    ConnectionFailed,
    ConnectionLost,
    Credentials,
    ExchangeError,
    ForbiddenMessage,
    PagingIncomplete,
    ProtocolError,
    QfexSession,
    QfexTimeout,
    RateLimited,
    fetch_open_orders,
)

from .conftest import wait_until
from .scripted_server import BINARY, CONT, PING, PONG, TEXT, ClientGone, Conn, ScriptedServer

SECRET = "qfex_secret_wire_do_not_leak"
CREDS = Credentials("qfex_pub_wire", SECRET)
ORDER = {"order_id": "o-1", "symbol": "AAPL-USD", "status": "ACK", "price": 1.25, "quantity": 2}


def page(*order_ids: str) -> dict:
    return {"all_orders_response": {"orders": [{**ORDER, "order_id": i} for i in order_ids], "twaps": []}}


def session(server: ScriptedServer, timeout: float = 3.0, **kwargs) -> QfexSession:
    return QfexSession(server.url, CREDS, timeout=timeout, **kwargs)


# -- handshake and auth ------------------------------------------------------------------------------


def test_connect_puts_the_public_key_in_the_url_and_signs_auth():
    seen: dict = {}

    def script(conn: Conn) -> None:
        seen["auth"] = conn.expect_auth(SECRET)
        seen["path"], seen["headers"] = conn.path, conn.headers
        conn.wait_closed()

    with ScriptedServer(script) as server:
        with QfexSession(server.url + "/trade?x=1&api_key=stale", CREDS, timeout=3) as qfex:
            assert not qfex.closed
        assert qfex.closed
        assert wait_until(server.done.is_set)
    assert seen["path"] == "/trade?x=1&api_key=qfex_pub_wire"
    assert seen["headers"]["user-agent"].startswith("qfexdash/")
    assert "origin" not in seen["headers"]
    hmac_block = seen["auth"]["params"]["hmac"]
    assert hmac_block["public_key"] == "qfex_pub_wire"
    assert isinstance(hmac_block["unix_ts"], int)
    assert "account_id" not in seen["auth"]["params"]


def test_api_key_is_url_encoded():
    seen: dict = {}

    def script(conn: Conn) -> None:
        conn.expect_auth()
        seen["path"] = conn.path
        conn.wait_closed()

    with ScriptedServer(script) as server, QfexSession(server.url, Credentials("qfex pub&x=1", SECRET), timeout=3):
        pass
    assert seen["path"] == "/?api_key=qfex+pub%26x%3D1"


def test_each_connect_uses_a_fresh_nonce_and_the_injected_clock():
    nonces: list[str] = []
    stamps: list[int] = []

    def script(conn: Conn) -> None:
        hmac_block = conn.expect_auth(SECRET)["params"]["hmac"]
        nonces.append(hmac_block["nonce"])
        stamps.append(hmac_block["unix_ts"])
        conn.wait_closed()

    with ScriptedServer(script) as server:
        qfex = session(server, clock=lambda: 1767225600.9, account_id="sub-1")
        qfex.connect()
        with pytest.raises(RuntimeError):
            qfex.connect()
        qfex.close()
        qfex.close()  # idempotent
        qfex.connect()  # reconnect after close: a new auth
        qfex.close()
        assert wait_until(lambda: len(nonces) == 2)
    assert nonces[0] != nonces[1]
    assert stamps == [1767225600, 1767225600]


def test_subaccount_is_sent_in_auth():
    seen: dict = {}

    def script(conn: Conn) -> None:
        seen["auth"] = conn.expect_auth(SECRET)
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server, account_id="0b0f7d5e-0000-4000-8000-000000000001"):
        pass
    assert seen["auth"]["params"]["account_id"] == "0b0f7d5e-0000-4000-8000-000000000001"


def test_legacy_auth_success_shape():
    legacy = {"type": "auth", "result": "success"}
    with ScriptedServer(lambda c: (c.expect_auth(reply=legacy), c.wait_closed())) as server, session(server) as qfex:
        assert not qfex.closed


@pytest.mark.parametrize(
    "reply",
    [
        {"authenticated": False},
        {"type": "auth", "result": "failure"},
        {"err": {"error_code": "PermissionDenied", "message": "bad signature", "incoming_message": {"type": "auth"}}},
        {"err": {"error_code": "PermissionDenied", "message": "unknown key"}},
        {"type": "error", "error_code": "PermissionDenied", "message": "revoked"},
        {"type": "Err", "error_code": "InvalidParameter", "message": "timestamp out of range"},
    ],
)
def test_auth_failures_are_authentication_rejected(reply):
    with ScriptedServer(lambda c: (c.expect_auth(reply=reply), c.wait_closed())) as server:
        qfex = session(server)
        with pytest.raises(AuthenticationRejected) as raised:
            qfex.connect()
        assert qfex.closed
    assert SECRET not in str(raised.value)


def test_error_for_another_request_during_auth_is_ignored():
    def script(conn: Conn) -> None:
        conn.accept()
        conn.recv_json()
        conn.send_json({"err": {"error_code": "InvalidParameter", "incoming_message": {"type": "get_user_orders"}}})
        conn.send_json({"balance_response": {"deposit": 1}})
        conn.send_json({"authenticated": True})
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        assert not qfex.closed


def test_close_before_the_auth_reply_is_connection_lost_not_rejection():
    def script(conn: Conn) -> None:
        conn.accept()
        conn.recv_json()
        conn.send_close(1008, "policy")
        conn.wait_closed()

    with ScriptedServer(script) as server, pytest.raises(ConnectionLost) as raised:
        session(server).connect()
    assert not isinstance(raised.value, AuthenticationRejected)
    assert "1008" in str(raised.value)


def test_tcp_drop_before_the_auth_reply_is_connection_lost():
    def script(conn: Conn) -> None:
        conn.accept()
        conn.recv_json()

    with ScriptedServer(script) as server, pytest.raises(ConnectionLost):
        session(server).connect()


def test_silent_auth_times_out_within_the_timeout():
    release = threading.Event()

    def script(conn: Conn) -> None:
        conn.accept()
        conn.recv_json()
        release.wait(10)

    with ScriptedServer(script) as server:
        started = time.monotonic()
        with pytest.raises(QfexTimeout):
            session(server, timeout=0.5).connect()
        elapsed = time.monotonic() - started
        release.set()
    assert elapsed < 5  # about the 0.5 s timeout, never the 10 s the server would wait


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed(status):
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send_raw(f"HTTP/1.1 {status} Moved\r\nLocation: {url}/elsewhere\r\nContent-Length: 0\r\n\r\n".encode())
        conn.wait_closed(2)

    with ScriptedServer(script) as server:
        url = server.url
        with pytest.raises(ConnectionFailed) as raised:
            session(server).connect()
        assert wait_until(server.done.is_set)
        assert server.connections == 1  # the Location was never visited
    assert raised.value.status == status
    assert "redirect" in raised.value.user_message


def test_http_error_status_is_connection_failed():
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send_raw(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")

    with ScriptedServer(script) as server, pytest.raises(ConnectionFailed) as raised:
        session(server).connect()
    assert raised.value.status == 503


def test_endless_handshake_headers_are_cut_off():
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send_raw(b"HTTP/1.1 101 Switching Protocols\r\n")
        for i in range(400):
            conn.send_raw(f"X-Filler-{i}: {'y' * 1000}\r\n".encode())

    with ScriptedServer(script) as server, pytest.raises(ConnectionFailed, match="exceeds"):
        session(server).connect()


def test_trickled_handshake_hits_the_deadline_not_just_the_per_read_timeout():
    release = threading.Event()

    def script(conn: Conn) -> None:
        conn.read_request()
        for byte in b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" * 10:
            if release.wait(0.05):  # one byte every 50 ms: each read is far inside the timeout
                return
            conn.send_raw(bytes([byte]))

    with ScriptedServer(script) as server:
        started = time.monotonic()
        with pytest.raises(QfexTimeout):
            session(server, timeout=0.5).connect()
        elapsed = time.monotonic() - started
        release.set()
    assert elapsed < 5


def test_connection_refused_is_connection_failed():
    with ScriptedServer(lambda c: None) as server:
        port = server.port
    with pytest.raises(ConnectionFailed):
        QfexSession(f"ws://127.0.0.1:{port}", CREDS, timeout=1).connect()


@pytest.mark.parametrize("url", ["http://127.0.0.1", "ws://", "wss://user:pw@host/", "ftp://x", "ws://h:99999", 5])
def test_bad_urls_are_refused_up_front(url):
    with pytest.raises(ValueError, match="URL") as raised:
        QfexSession(url, CREDS)
    assert isinstance(raised.value, ConnectionFailed)  # callers catching QfexError see it too
    assert "URL" in raised.value.user_message


def test_trace_mode_blocks_connecting_before_anything_is_sent():
    with ScriptedServer(lambda c: None) as server:
        websocket.enableTrace(True, handler=logging.NullHandler())
        try:
            with pytest.raises(ConnectionFailed, match="trace"):
                session(server).connect()
        finally:
            websocket.enableTrace(False)
        assert server.connections == 0


# -- frames and size caps ----------------------------------------------------------------------------


def serve_one_reply(send_reply) -> ScriptedServer:
    """A server that authenticates, waits for get_user_orders and runs ``send_reply(conn)``."""

    def script(conn: Conn) -> None:
        conn.expect_auth(SECRET)
        assert conn.recv_json()["type"] == "get_user_orders"
        send_reply(conn)
        conn.wait_closed(5)

    return ScriptedServer(script)


def test_frame_announcing_a_huge_payload_is_refused_from_its_header():
    # Only the header is sent: a client that waited for the payload would time out instead.
    with serve_one_reply(lambda c: c.send_frame(TEXT, b"", announce=1 << 40)) as server:
        qfex = session(server, timeout=5)
        qfex.connect()
        with pytest.raises(ProtocolError, match="exceeds"):
            qfex.get_user_orders()
        assert qfex.closed


def test_message_over_the_cap_is_a_protocol_error():
    big = json.dumps(page(*[f"id-{i}" for i in range(200)]))
    with (
        serve_one_reply(lambda c: c.send_text(big)) as server,
        session(server, max_message_bytes=4096) as qfex,
        pytest.raises(ProtocolError),
    ):
        qfex.get_user_orders()


def test_fragmented_message_is_capped_on_its_total():
    def send(conn: Conn) -> None:
        conn.send_frame(TEXT, b" " * 3000, fin=False)
        conn.send_frame(CONT, b" " * 3000, fin=False)
        conn.send_frame(CONT, b"{}", fin=True)

    with (
        serve_one_reply(send) as server,
        session(server, max_message_bytes=4096) as qfex,
        pytest.raises(ProtocolError, match="exceeds"),
    ):
        qfex.get_user_orders()


def test_fragmented_reply_within_the_cap_is_assembled():
    text = json.dumps(page("a", "b")).encode()

    def send(conn: Conn) -> None:
        conn.send_frame(TEXT, text[:10], fin=False)
        conn.send_frame(PING, b"hi")
        conn.send_frame(CONT, text[10:20], fin=False)
        conn.send_frame(CONT, text[20:], fin=True)

    with serve_one_reply(send) as server, session(server) as qfex:
        orders, _ = qfex.get_user_orders()
    assert [o.order_id for o in orders] == ["a", "b"]


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.send_frame(BINARY, b'{"all_orders_response": {"orders": []}}'),
        lambda c: c.send_text('{"all_orders_response": {"orders": [}'),
        lambda c: c.send_frame(TEXT, b'{"all_orders_response": "\xff\xfe"}'),
        lambda c: c.send_text('{"all_orders_response": "not an object"}'),
        lambda c: c.send_text("[1, 2, 3]"),
        lambda c: c.send_frame(PING, b"x" * 200),
    ],
    ids=["binary", "malformed-json", "not-utf8", "wrong-schema", "not-an-object", "long-ping"],
)
def test_bad_replies_are_protocol_errors_and_close_the_session(send):
    with serve_one_reply(send) as server:
        qfex = session(server)
        qfex.connect()
        with pytest.raises(ProtocolError):
            qfex.get_user_orders()
        assert qfex.closed


def test_pings_are_answered_while_waiting():
    seen: dict = {}

    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_frame(PING, b"are-you-there")
        seen["pong"] = conn.recv_frame()
        conn.send_json(page("a"))
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        orders, _ = qfex.get_user_orders()
    assert seen["pong"] == (PONG, b"are-you-there")
    assert [o.order_id for o in orders] == ["a"]


# -- reply matching ----------------------------------------------------------------------------------


def test_pushes_unrelated_frames_and_foreign_errors_while_waiting():
    def send(conn: Conn) -> None:
        conn.send_json({"order_response": {**ORDER, "order_id": "push-1", "status": "FILLED"}})
        conn.send_json({"balance_response": {"deposit": 5}})
        conn.send_json({"position_response": {"symbol": "AAPL-USD"}})
        conn.send_json({"fill_response": {"trade_id": "t"}})
        conn.send_json({"type": "subscribed", "connection_id": "c", "message_id": 3, "channel": "v4", "contents": []})
        conn.send_json({"ack": {"incoming_message": {"type": "cancel_all_orders"}}})
        conn.send_json({"subscribed": "order_responses"})
        conn.send_json({"err": {"error_code": "InvalidParameter", "incoming_message": {"type": "subscribe"}}})
        conn.send_json({"unknown_thing": [1, 2]})
        conn.send_json({"order_response": {**ORDER, "order_id": "push-2"}})
        conn.send_json(page("a", "b"))

    with serve_one_reply(send) as server, session(server) as qfex:
        orders, _ = qfex.get_user_orders()
        assert [o.order_id for o in orders] == ["a", "b"]
        pushes = qfex.wait_for_pushes(0)
        assert [p.order_id for p in pushes] == ["push-1", "push-2"]
        assert pushes[0].status == "FILLED"
        assert qfex.wait_for_pushes(0.2) == []
        assert not qfex.closed


def test_error_without_incoming_message_fails_the_waiting_request_and_session_stays_usable():
    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_json({"err": {"error_code": "ServerError", "message": "engine hiccup", "incoming_message": None}})
        conn.recv_json()
        conn.send_json(
            {"type": "error", "error_code": "RateLimited", "message": "Rate limit exceeded, retry after 1.5 s"}
        )
        conn.recv_json()
        conn.send_json(page("a"))
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        with pytest.raises(ExchangeError) as raised:
            qfex.get_user_orders()
        assert raised.value.error_code == "ServerError"
        with pytest.raises(RateLimited) as limited:
            qfex.get_user_orders()
        assert limited.value.retry_after == 1.5
        assert not qfex.closed
        assert [o.order_id for o in qfex.get_user_orders()[0]] == ["a"]


def test_stale_duplicate_already_received_is_drained_before_the_next_request():
    duplicate_sent = threading.Event()

    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_json(page("old"))
        conn.send_json(page("old"))  # a duplicate, already on its way when the client reads the first
        duplicate_sent.set()
        conn.recv_json()
        conn.send_json(page("new"))
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        assert [o.order_id for o in qfex.get_user_orders()[0]] == ["old"]
        assert duplicate_sent.wait(5)
        assert wait_until(qfex._transport.data_ready)  # the duplicate is in the client's socket buffer
        assert [o.order_id for o in qfex.get_user_orders()[0]] == ["new"]  # same request, fresh answer


def test_late_duplicate_of_the_previous_page_is_not_taken_for_the_next_page():
    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_json(page("a", "b"))
        conn.recv_json()
        conn.send_json(page("a", "b"))  # the duplicate arrives only after the next request
        conn.send_json(page("c"))
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        assert [o.order_id for o in qfex.get_user_orders(limit=2)[0]] == ["a", "b"]
        assert [o.order_id for o in qfex.get_user_orders(limit=2, offset=2)[0]] == ["c"]


def test_subscribe_waits_for_every_channel():
    def script(conn: Conn) -> None:
        conn.expect_auth()
        message = conn.recv_json()
        assert message == {"type": "subscribe", "params": {"channels": ["order_responses", "fills"]}}
        conn.send_json({"subscribed": "fills"})
        conn.send_json({"order_response": {"order_id": "early"}})
        conn.send_json({"subscribed": "order_responses"})
        assert conn.recv_json()["type"] == "unsubscribe"
        conn.send_json({"unsubscribed": "fills"})
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        qfex.subscribe(["order_responses", "fills", "order_responses"])
        assert [p.order_id for p in qfex.wait_for_pushes(0)] == ["early"]
        qfex.unsubscribe(["fills"])


def test_reply_timeout_closes_the_session_and_its_socket():
    closed_by_client = threading.Event()

    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        with contextlib.suppress(ClientGone, OSError):
            conn.recv_frame(10)  # the client's close frame or EOF, not a new request
        closed_by_client.set()

    with ScriptedServer(script) as server:
        qfex = session(server, timeout=0.5)
        qfex.connect()
        with pytest.raises(QfexTimeout):
            qfex.get_user_orders()
        assert qfex.closed
        assert closed_by_client.wait(5)
        with pytest.raises(ConnectionLost):
            qfex.get_user_orders()  # a closed session says so instead of hanging


def test_drop_while_waiting_is_connection_lost():
    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_raw(b"\x81\x7e\x10\x00" + b"{" * 100)  # part of a 4 KiB frame, then the TCP connection ends

    with ScriptedServer(script) as server:
        qfex = session(server)
        qfex.connect()
        with pytest.raises(ConnectionLost):
            qfex.get_user_orders()
        assert qfex.closed


# -- the allow-list at every layer -------------------------------------------------------------------


def test_forbidden_messages_never_reach_the_socket_whatever_the_path():
    received: list[dict] = []

    def script(conn: Conn) -> None:
        received.append(conn.expect_auth())
        try:
            while True:
                message = conn.recv_json()
                received.append(message)
                if message["type"] == "get_user_orders":
                    conn.send_json(page("a"))
        except (ClientGone, OSError):
            pass

    cod = {"type": "cancel_on_disconnect", "params": {"cancel_on_disconnect": True}}
    cod_text = json.dumps(cod)
    with ScriptedServer(script) as server:
        with session(server) as qfex:
            transport = qfex._transport
            ws = transport._ws
            attempts = [
                lambda: qfex._send(cod),
                lambda: qfex._send({"type": "cancel_order", "params": {"order_id": "x", "symbol": "AAPL-USD"}}),
                lambda: qfex._send({"type": "add_order", "params": {}}),
                lambda: qfex._send({"type": "modify_order", "params": {}}),
                lambda: qfex._send({"type": "close_position", "params": {}}),
                lambda: qfex._send({"type": "cancel_all_orders", "params": {}}),
                lambda: qfex._send({"type": "add_twap", "params": {}}),
                lambda: transport.send_text(cod_text),
                lambda: ws.send(cod_text),
                lambda: ws.send_text(cod_text),
                lambda: ws.send_bytes(cod_text.encode()),
                lambda: ws.send_binary(cod_text.encode()),
                lambda: ws.send_frame(ABNF.create_frame(cod_text, ABNF.OPCODE_TEXT)),
                lambda: ws.send_frame(ABNF.create_frame('{"type":"get_user_orders"', ABNF.OPCODE_TEXT, fin=0)),
                lambda: ws.send_frame(ABNF.create_frame("}", ABNF.OPCODE_CONT)),
            ]
            for attempt in attempts:
                with pytest.raises(ForbiddenMessage):
                    attempt()
            assert not qfex.closed
            assert [o.order_id for o in qfex.get_user_orders()[0]] == ["a"]  # the session still works
        assert wait_until(server.done.is_set)
    assert [m["type"] for m in received] == ["auth", "get_user_orders"]


# -- secrets -----------------------------------------------------------------------------------------


def test_no_secret_or_signature_in_logs_errors_or_reprs(caplog):
    signatures: list[str] = []

    def script(conn: Conn) -> None:
        auth = conn.expect_auth(SECRET)
        signatures.append(auth["params"]["hmac"]["signature"])
        conn.recv_json()
        conn.send_json({"order_response": ORDER})
        conn.send_json({"err": {"error_code": "ServerError", "message": "oops"}})
        conn.recv_json()
        conn.send_text("{broken")

    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("websocket").setLevel(logging.DEBUG)
        try:
            with ScriptedServer(script) as server:
                qfex = session(server)
                texts.append(repr(qfex))
                qfex.connect()
                texts.append(repr(qfex))
                for call in (qfex.get_user_orders, qfex.get_user_orders):
                    with pytest.raises(Exception) as raised:  # noqa: PT011 -- any failure; we read its text
                        call()
                    texts += [str(raised.value), repr(raised.value), raised.value.user_message]
                qfex.close()
        finally:
            logging.getLogger("websocket").setLevel(logging.NOTSET)
    assert signatures
    everything = caplog.text + "\n".join(texts) + "".join(str(r.args) for r in caplog.records)
    assert "QFEX session open" in caplog.text  # the logs were captured
    for secret in (SECRET, signatures[0]):
        assert secret not in everything


# -- TLS ---------------------------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qfex-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return str(cert_path), context


def test_wss_with_a_trusted_certificate(tls_files):
    ca_file, context = tls_files

    def script(conn: Conn) -> None:
        conn.expect_auth(SECRET)
        conn.recv_json()
        conn.send_json(page("secure"))
        conn.wait_closed()

    with ScriptedServer(script, tls=context) as server:
        assert server.url.startswith("wss://")
        with session(server, ca_file=ca_file) as qfex:
            assert [o.order_id for o in qfex.get_user_orders()[0]] == ["secure"]


def test_wss_with_an_untrusted_certificate_is_refused(tls_files):
    _ca_file, context = tls_files
    with ScriptedServer(lambda c: c.expect_auth(), tls=context) as server, pytest.raises(ConnectionFailed) as raised:
        session(server).connect()
    assert "certificate" in raised.value.user_message


# -- paging edge cases -------------------------------------------------------------------------------


def test_paging_gives_up_on_a_book_that_never_holds_still():
    def script(conn: Conn) -> None:
        conn.expect_auth()
        serial = 0
        with contextlib.suppress(ClientGone, OSError):
            while True:
                limit = conn.recv_json()["params"]["limit"]
                conn.send_json(page(*[f"fresh-{serial}-{i}" for i in range(limit)]))  # never an order seen before
                serial += 1

    with ScriptedServer(script) as server, session(server) as qfex:
        with pytest.raises(PagingIncomplete):
            fetch_open_orders(qfex, page_size=10, max_requests=12)
        assert not qfex.closed


def test_a_learned_cap_is_forgotten_when_the_server_sends_more():
    book = [f"o{i}" for i in range(25)]

    def script(conn: Conn) -> None:
        conn.expect_auth()
        with contextlib.suppress(ClientGone, OSError):
            while True:
                params = conn.recv_json()["params"]
                cap = 5 if conn_state["capped"] else 1000
                conn.send_json(page(*book[params["offset"] : params["offset"] + min(cap, params["limit"])]))

    conn_state = {"capped": True}
    with ScriptedServer(script) as server, session(server) as qfex:
        assert [o.order_id for o in fetch_open_orders(qfex, page_size=20).orders] == book
        assert qfex.page_limits.cap == 5
        conn_state["capped"] = False
        assert [o.order_id for o in fetch_open_orders(qfex, page_size=20).orders] == book
        assert qfex.page_limits.cap is None


# -- late duplicates and pages that do not advance (issue 18) -------------------------------------------


def test_a_late_duplicate_of_the_last_reads_only_page_is_not_taken_for_the_next_reads_first():
    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_json(page("a", "b"))
        conn.recv_json()  # the next read asks the same page again…
        conn.send_json(page("a", "b"))  # …and a late copy of the last answer arrives first
        conn.send_json(page("a", "c"))  # the genuine answer: "b" was cancelled, "c" placed
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        assert [o.order_id for o in qfex.get_user_orders()[0]] == ["a", "b"]
        assert [o.order_id for o in qfex.get_user_orders()[0]] == ["a", "c"]


def test_the_same_answer_to_the_same_request_is_taken_when_nothing_follows_it():
    """An unchanged book answers a repeated read byte for byte: held a moment, then taken (no timeout)."""

    def script(conn: Conn) -> None:
        conn.expect_auth()
        for _ in range(3):
            conn.recv_json()
            conn.send_json(page("a", "b"))
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server, timeout=5.0) as qfex:
        for _ in range(3):
            assert [o.order_id for o in qfex.get_user_orders()[0]] == ["a", "b"]
        assert not qfex.closed


def test_a_late_duplicate_of_an_older_page_of_another_request_is_not_taken():
    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_json(page("a", "b"))
        conn.recv_json()
        conn.send_json(page("c", "d"))
        conn.recv_json()
        conn.send_json(page("a", "b"))  # a copy of the answer two requests ago
        conn.send_json(page("e"))
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        assert [o.order_id for o in qfex.get_user_orders(limit=2)[0]] == ["a", "b"]
        assert [o.order_id for o in qfex.get_user_orders(limit=2, offset=2)[0]] == ["c", "d"]
        assert [o.order_id for o in qfex.get_user_orders(limit=2, offset=4)[0]] == ["e"]


def test_a_genuine_answer_identical_to_another_offsets_earlier_answer_is_taken():
    """The first order was cancelled: page 1 now holds what the last read's probe of offset 1 held."""

    def script(conn: Conn) -> None:
        conn.expect_auth()
        conn.recv_json()
        conn.send_json(page("a", "b"))
        conn.recv_json()
        conn.send_json(page("b"))
        conn.recv_json()
        conn.send_json(page("b"))
        conn.wait_closed()

    with ScriptedServer(script) as server, session(server) as qfex:
        assert [o.order_id for o in qfex.get_user_orders()[0]] == ["a", "b"]
        assert [o.order_id for o in qfex.get_user_orders(offset=1)[0]] == ["b"]
        assert [o.order_id for o in qfex.get_user_orders()[0]] == ["b"]
        assert not qfex.closed


def _paged(book: list[str], stale_answers: int) -> tuple[list[int], object]:
    """A server paging ``book``; the third request is answered ``stale_answers`` times with a stale copy of
    the first page (not byte-identical: its prices moved) before the genuine answer."""
    offsets: list[int] = []

    def script(conn: Conn) -> None:
        conn.expect_auth()
        with contextlib.suppress(ClientGone, OSError):
            while True:
                params = conn.recv_json()["params"]
                offsets.append(params["offset"])
                if len(offsets) in range(3, 3 + stale_answers):
                    stale = page(*book[: params["limit"]])
                    for item in stale["all_orders_response"]["orders"]:
                        item["price"] = 9.99
                    conn.send_json(stale)
                    continue
                conn.send_json(page(*book[params["offset"] : params["offset"] + params["limit"]]))

    return offsets, script


def test_a_full_page_of_orders_already_read_is_asked_again_not_taken_as_progress():
    book = [f"o{i:02d}" for i in range(25)]
    offsets, script = _paged(book, stale_answers=1)
    with ScriptedServer(script) as server, session(server) as qfex:
        snapshot = fetch_open_orders(qfex, page_size=10)
    assert [o.order_id for o in snapshot.orders] == book
    assert {str(o.price) for o in snapshot.orders} == {"1.25"}  # nothing of the stale copy was taken
    assert offsets[2] == offsets[3]  # the stalled page was asked again at the same offset


def test_a_page_that_again_brings_nothing_new_is_passed_without_taking_its_copies():
    """Twice nothing new at one offset: orders were inserted before it (or the exchange keeps repeating
    itself); paging moves on, proves its overlap again, and never takes the stale copies."""
    book = [f"o{i:02d}" for i in range(25)]
    offsets, script = _paged(book, stale_answers=2)
    with ScriptedServer(script) as server, session(server) as qfex:
        snapshot = fetch_open_orders(qfex, page_size=10)
    assert [o.order_id for o in snapshot.orders] == book
    assert {str(o.price) for o in snapshot.orders} == {"1.25"}
    assert offsets[2] == offsets[3]
