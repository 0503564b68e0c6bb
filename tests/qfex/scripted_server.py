"""A tiny scripted WebSocket server on loopback, for frame-level cases the simulator cannot produce.

Each accepted connection is handed to ``script(conn)`` on the server thread; the script decides
what the "exchange" does byte by byte (redirects, binary frames, frames announcing a huge length,
legacy reply shapes, duplicates, …). It is a real server over real sockets, not a mock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from typing import Any

from orders.qfex.signing import sign

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class ClientGone(Exception):
    pass


class Conn:
    """The server side of one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.request_line = ""
        self.headers: dict[str, str] = {}

    # -- HTTP ---------------------------------------------------------------------------------------

    def read_request(self, timeout: float = 10.0) -> None:
        self.sock.settimeout(timeout)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ClientGone
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        self.request_line, *lines = head.split("\r\n")
        self.headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}

    @property
    def path(self) -> str:
        return self.request_line.split(" ")[1]

    def accept(self) -> None:
        """Read the upgrade request and answer 101."""
        self.read_request()
        key = self.headers["sec-websocket-key"]
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode(), usedforsecurity=False).digest()).decode()
        self.send_raw(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # -- frames -------------------------------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True, announce: int | None = None) -> None:
        """Send one unmasked frame; ``announce`` overrides the length written in the header."""
        length = len(payload) if announce is None else announce
        head = bytes([(0x80 if fin else 0) | opcode])
        if length < 126:
            head += bytes([length])
        elif length < 1 << 16:
            head += bytes([126]) + struct.pack("!H", length)
        else:
            head += bytes([127]) + struct.pack("!Q", length)
        self.send_raw(head + payload)

    def send_text(self, text: str) -> None:
        self.send_frame(TEXT, text.encode())

    def send_json(self, value: Any) -> None:
        self.send_text(json.dumps(value))

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(CLOSE, struct.pack("!H", code) + reason.encode())

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ClientGone
            data += chunk
        return data

    def recv_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        self.sock.settimeout(timeout)
        b1, b2 = self._read_exact(2)
        length = b2 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read_exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read_exact(8))[0]
        mask = self._read_exact(4) if b2 & 0x80 else b"\0\0\0\0"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read_exact(length)))
        return b1 & 0x0F, payload

    def recv_json(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next client text message (pongs skipped); raises ClientGone on close."""
        while True:
            opcode, payload = self.recv_frame(timeout)
            if opcode == TEXT:
                return json.loads(payload)
            if opcode == CLOSE:
                raise ClientGone

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Answer the client's close (if any) and wait until it hangs up."""
        try:
            while True:
                opcode, _ = self.recv_frame(timeout)
                if opcode == CLOSE:
                    self.send_close()
        except (ClientGone, OSError):
            pass

    # -- a minimal QFEX -----------------------------------------------------------------------------

    def expect_auth(self, secret: str | None = None, reply: Any = None) -> dict[str, Any]:
        """Accept, read the auth message, check its signature if ``secret`` is given, and answer."""
        self.accept()
        message = self.recv_json()
        assert message["type"] == "auth"
        hmac_block = message["params"]["hmac"]
        if secret is not None:
            assert hmac_block["signature"] == sign(secret, hmac_block["nonce"], hmac_block["unix_ts"])
        self.send_json({"authenticated": True} if reply is None else reply)
        return message


class ScriptedServer:
    """Serves connections one after another on 127.0.0.1, each with ``script(conn)`` on one thread."""

    def __init__(self, script: Callable[[Conn], None], *, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.errors: list[BaseException] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="scripted-ws-server", daemon=True)
        self.done = threading.Event()

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "scripted server thread did not stop"
        self._listener.close()
        os.close(self._stop_r)
        os.close(self._stop_w)
        if self.errors and exc[0] is None:
            raise self.errors[0]

    def _serve(self) -> None:
        while True:
            watched: list[socket.socket | int] = [self._listener, self._stop_r]
            ready, _, _ = select.select(watched, [], [])
            if self._stop_r in ready:
                return
            sock, _ = self._listener.accept()
            # Without this, Nagle's algorithm holds back a second small frame until the client ACKs the first.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections += 1
            try:
                if self.tls is not None:
                    sock.settimeout(10)
                    sock = self.tls.wrap_socket(sock, server_side=True)
                self.script(Conn(sock))
            except (ClientGone, ConnectionError, ssl.SSLError, TimeoutError):
                pass
            except BaseException as exc:  # surfaced to the test on exit
                self.errors.append(exc)
            finally:
                sock.close()
                self.done.set()
