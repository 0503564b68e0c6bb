"""One client connection of the simulated exchange: its WebSocket, its session state and its writer.

Everything a session sends (replies, pushes, a close, the F2 partial frame) goes through one queue drained
by `write_queue`, so frames leave in the order they were produced, whichever task or thread produced them
(other threads hand frames to the loop first, see `SimServer.call_on_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from . import frames
from .accounts import SimAccount
from .faults import Faults

logger = logging.getLogger("orders.simulator")

MAX_QUEUED_FRAMES = 10_000  # a client this far behind is cut off rather than buffered forever
CLOSE_POLICY = 1008
CLOSE_GOING_AWAY = 1001


class NoFrameLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets logs every frame, the auth frame's signature included, when its logger is at DEBUG.
    Reporting DEBUG as disabled keeps frames out of the logs whatever the logging configuration."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


class SimConnection(ServerConnection):
    """A server connection whose output can be switched off (F4) once the handshake is done."""

    faults: Faults | None = None  # set after the handshake, so the 101 response always goes out
    silent_forever = False

    def send_data(self) -> None:
        if self.silent_forever or (self.faults is not None and self.faults.silent):
            for data in self.protocol.data_to_send():
                if not data and self.transport.can_write_eof():
                    # The peer asked to close: end the TCP stream, still without sending a frame.
                    with contextlib.suppress(OSError):
                        self.transport.write_eof()
            return
        super().send_data()


@dataclass(frozen=True)
class CloseAfterQueue:
    """Queued after the last frame to send: close the WebSocket with this code and reason."""

    code: int
    reason: str


@dataclass(frozen=True)
class PartialThenReset:
    """F2: write half of this frame to the socket, then reset the TCP connection."""

    payload: bytes


QueueItem = bytes | CloseAfterQueue | PartialThenReset


class Session:
    """What the exchange knows about one connection: who logged in, onto which book, what it subscribed."""

    def __init__(self, ws: SimConnection, url_api_key: str | None, connection_id: str) -> None:
        self.ws = ws
        self.url_api_key = url_api_key
        self.connection_id = connection_id
        self.account: SimAccount | None = None
        self.book_id: str | None = None
        self.channels: set[str] = set()
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue()
        self.closing = False
        self.envelopes_sent = 0

    @property
    def authenticated(self) -> bool:
        return self.account is not None

    @property
    def public_key(self) -> str | None:
        """The key it logged in with, else the one its URL named (None when neither)."""
        return self.account.public_key if self.account is not None else self.url_api_key

    def enqueue(self, item: QueueItem) -> None:
        if self.closing:
            return
        if self.queue.qsize() >= MAX_QUEUED_FRAMES:
            self.closing = True
            logger.warning("simulator: dropping a client that stopped reading (%d frames queued)", MAX_QUEUED_FRAMES)
            reset(self.ws.transport)
            return
        self.queue.put_nowait(item)

    def close_after_queue(self, code: int, reason: str) -> None:
        self.enqueue(CloseAfterQueue(code, reason))
        self.closing = True


def reset(transport: asyncio.Transport) -> None:
    """Abort the TCP connection with a RST (SO_LINGER 0) rather than an orderly FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def query_api_key(request: Request | None) -> str | None:
    """The `?api_key=` of the upgrade request, as QFEX asks clients to send it."""
    if request is None:
        return None
    values = parse_qs(urlsplit(request.path).query).get("api_key")
    return values[0] if values else None


async def write_queue(session: Session) -> None:
    """Send the session's queued items in order until a close, a partial frame or the connection's end."""
    ws = session.ws
    try:
        while True:
            item = await session.queue.get()
            if isinstance(item, bytes):
                await ws.send(item, text=True)
            elif isinstance(item, CloseAfterQueue):
                await ws.close(item.code, item.reason)
                return
            else:
                await _send_partial_then_reset(ws, item.payload)
                return
    except ConnectionClosed:
        return


async def _send_partial_then_reset(ws: ServerConnection, payload: bytes) -> None:
    """F2: write the first half of the encoded frame straight to the transport, then reset the TCP."""
    header = frames.text_frame_header(len(payload))
    frame = header + payload
    ws.transport.write(frame[: max(len(frame) // 2, len(header) + 1)])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    # Let the bytes reach the socket first: abort() discards whatever is still buffered.
    while ws.transport.get_write_buffer_size() and loop.time() < deadline:
        await asyncio.sleep(0.005)
    reset(ws.transport)
