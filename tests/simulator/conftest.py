"""Fixtures and a bare websocket-client toolkit for talking to the simulator over loopback.

Deliberately independent of the project's protocol client (`orders/qfex`): these tests pin down what the
simulator sends, byte for byte where it matters.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from orders.simulator import SimAccount, Simulator

ACCOUNT_A = SimAccount(
    public_key="qfex_pub_test_a",
    secret="qfex_secret_test_a_0001",
    user_id="a1a1a1a1-0000-4000-8000-00000000000a",
    subaccounts=("5ab5ab5a-0000-4000-8000-0000000000a1",),
    orders=30,
    twaps=3,
    subaccount_orders=6,
    subaccount_twaps=1,
)
ACCOUNT_B = SimAccount(
    public_key="qfex_pub_test_b",
    secret="qfex_secret_test_b_0002",
    user_id="b2b2b2b2-0000-4000-8000-00000000000b",
    orders=12,
    twaps=1,
)
SUBACCOUNT_A = ACCOUNT_A.subaccounts[0]
EPOCH = 1_790_000_000.0
# Small so a test that waits for the *absence* of a frame stays quick; generous where we wait for one.
QUIET = 0.4
PATIENT = 10.0


def sign(secret: str, nonce: str, unix_ts: int) -> str:
    return hmac.new(secret.encode(), f"{nonce}:{unix_ts}".encode(), hashlib.sha256).hexdigest()


def auth_message(
    account: SimAccount,
    *,
    nonce: str | None = None,
    unix_ts: Any = None,
    signature: str | None = None,
    secret: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    nonce = secrets.token_hex(16) if nonce is None else nonce
    unix_ts = int(time.time()) if unix_ts is None else unix_ts
    if signature is None:
        signature = sign(secret or account.secret, nonce, int(unix_ts) if isinstance(unix_ts, int | float) else 0)
    params: dict[str, Any] = {
        "hmac": {"public_key": account.public_key, "nonce": nonce, "unix_ts": unix_ts, "signature": signature}
    }
    if account_id is not None:
        params["account_id"] = account_id
    return {"type": "auth", "params": params}


class Client:
    """A websocket-client connection with JSON helpers and a record of every text frame received."""

    def __init__(self, url: str, timeout: float = PATIENT) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, skip_utf8_validation=True)
        self.received: list[str] = []

    def send(self, message: Any) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv_text(self, timeout: float = PATIENT) -> str:
        self.ws.settimeout(timeout)
        opcode, data = self.ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_TEXT, f"expected a text frame, got opcode {opcode}"
        text = data.decode()
        self.received.append(text)
        return text

    def recv(self, timeout: float = PATIENT) -> Any:
        return json.loads(self.recv_text(timeout))

    def expect_nothing(self, timeout: float = QUIET) -> None:
        self.ws.settimeout(timeout)
        with pytest.raises(websocket.WebSocketTimeoutException):
            self.ws.recv_data()

    def request(self, message: Any, timeout: float = PATIENT) -> Any:
        self.send(message)
        return self.recv(timeout)

    def auth(self, account: SimAccount, **kwargs: Any) -> Any:
        return self.request(auth_message(account, **kwargs))

    def orders(self, timeout: float = PATIENT, **params: Any) -> Any:
        return self.request({"type": "get_user_orders", "params": params}, timeout)

    def recv_close(self, timeout: float = PATIENT) -> tuple[int | None, str]:
        """Read until the server's close frame; returns (code, reason). Text frames on the way are kept."""
        self.ws.settimeout(timeout)
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                if len(data) < 2:
                    return None, ""
                return int.from_bytes(data[:2], "big"), data[2:].decode()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self.received.append(data.decode())

    def close(self) -> None:
        # close() skips the socket when the server already closed the WebSocket; shutdown() never does.
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.ws.close(timeout=1)
        self.ws.shutdown()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(target: Simulator | str, api_key: str | None = None, timeout: float = PATIENT) -> Client:
    """Connect to a simulator (or a ws:// URL), with `?api_key=` when given."""
    url = target if isinstance(target, str) else target.url
    return Client(url + (f"/?api_key={api_key}" if api_key else ""), timeout)


def authed(target: Simulator | str, account: SimAccount = ACCOUNT_A, **kwargs: Any) -> Client:
    client = connect(target, account.public_key)
    reply = client.auth(account, **kwargs)
    assert reply == {"authenticated": True}, reply
    return client


def wait_until(predicate: Callable[[], bool], timeout: float = PATIENT, what: str = "condition") -> None:
    """Poll a condition until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        tick.wait(0.01)


def raw_upgrade(sim: Simulator) -> socket.socket:
    """Open a TCP connection and send a WebSocket upgrade request by hand; the caller reads the answer."""
    sock = socket.create_connection(("127.0.0.1", sim.port), timeout=PATIENT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{sim.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


def masked_text_frame(text: str) -> bytes:
    """A client-to-server text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = bytes((0x81, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + length.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_http_head(sock: socket.socket) -> bytes:
    """Read the HTTP response head (up to the blank line) byte by byte, so nothing after it is consumed."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    return head


def live_simulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "qfex-simulator" and t.is_alive()]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator([ACCOUNT_A, ACCOUNT_B], seed=11, epoch=EPOCH, close_timeout=1.0)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()
    assert not simulator.running
