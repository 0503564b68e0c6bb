"""How the fuzzer talks to the server: in process (channels' ``WebsocketCommunicator``) or over a real socket.

Both give a :class:`Transport` with the same four operations, so :mod:`tests.security.fuzz_browser` runs
the same frames and checks against the ASGI app in a test and against a running Daphne by hand.
A ``Connect`` is ``async (path) -> Transport``; it raises :class:`Refused` when the handshake is refused
(a socket accepted only to be closed at once shows up as a close on the first ``receive``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tests.security.fuzz_frames import Frame

DAPHNE_MESSAGE_LIMIT = 1024 * 1024  # Daphne's default --websocket_max_message_size / frame size


@dataclass(frozen=True)
class Incoming:
    """One thing from the server: a text frame, a binary frame, or the close (with its code)."""

    text: str | None = None
    data: bytes | None = None
    close: int | None = None


class Refused(Exception):
    """The server refused the handshake, or accepted it only to close at once (``code``)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"connection refused (code {code})")
        self.code = code


class Transport(Protocol):
    # Frames over this many bytes are refused by the WebSocket layer before the app sees them (None: no limit).
    message_limit: int | None
    # Whether invalid UTF-8 can be put in a text frame (only over a real socket).
    raw_text: bool

    async def send(self, frame: Frame) -> None: ...

    async def receive(self, timeout: float) -> Incoming:
        """The next thing from the server; raises ``TimeoutError`` after ``timeout`` seconds of nothing."""
        ...

    async def close(self) -> None: ...


Connect = Callable[[str], Awaitable[Transport]]


# --- in process ------------------------------------------------------------------------------------


class CommunicatorTransport:
    """The real ASGI app driven through channels' test communicator (frames go straight to the consumer)."""

    message_limit: int | None = None
    raw_text: bool = False

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator
        self.closed = False

    async def send(self, frame: Frame) -> None:
        # send_input, not send_to: send_to refuses empty frames, which a browser can send.
        if frame.data is not None:
            await self.communicator.send_input({"type": "websocket.receive", "bytes": frame.data})
        else:
            await self.communicator.send_input({"type": "websocket.receive", "text": frame.text or ""})

    async def receive(self, timeout: float) -> Incoming:
        # Not receive_output(timeout): on a timeout it cancels the application, and the fuzzer goes on
        # using the socket (or closes it cleanly) after reporting a missing answer.
        communicator = self.communicator
        queue = communicator.output_queue
        if not queue.empty():
            output = queue.get_nowait()
        elif communicator.future.done():
            communicator.future.result()  # the consumer raised: let it surface
            return Incoming(close=1006)  # it ended without closing the socket
        else:
            getter = asyncio.ensure_future(queue.get())
            ended = communicator.future
            done, _ = await asyncio.wait({getter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
                if ended.done():
                    return await self.receive(timeout)
                raise TimeoutError
            output = getter.result()
        if output["type"] == "websocket.close":
            self.closed = True
            return Incoming(close=output.get("code", 1000))
        if output["type"] != "websocket.send":
            raise AssertionError(f"unexpected ASGI message {output['type']!r}")
        return Incoming(text=output.get("text"), data=output.get("bytes"))

    async def close(self) -> None:
        # Tell the consumer the socket is gone (as Daphne does) and wait for it to finish; an exception the
        # consumer raised surfaces here.
        if not self.communicator.future.done():
            await self.communicator.disconnect(timeout=10)
        elif not self.communicator.future.cancelled():
            self.communicator.future.result()


def communicator_connector(
    application: Any, session_key: str | None, *, origin: str = "http://testserver", host: str = "testserver"
) -> Connect:
    """A ``Connect`` that opens in-process sockets as the browser of ``session_key`` would."""
    from channels.testing import WebsocketCommunicator

    headers = [(b"host", host.encode()), (b"origin", origin.encode())]
    if session_key is not None:
        headers.append((b"cookie", f"sessionid={session_key}".encode()))

    async def connect(path: str) -> Transport:
        communicator = WebsocketCommunicator(application, path, headers=list(headers))
        accepted, code = await communicator.connect(timeout=15)
        if not accepted:
            await communicator.wait(timeout=10)
            raise Refused(code)
        return CommunicatorTransport(communicator)

    return connect


# --- over a real socket ----------------------------------------------------------------------------


class WebSocketsTransport:
    """A real WebSocket client (the ``websockets`` library) talking to a running server."""

    raw_text = True

    def __init__(self, connection: Any, message_limit: int | None) -> None:
        self.connection = connection
        self.message_limit = message_limit

    async def send(self, frame: Frame) -> None:
        from websockets.exceptions import ConnectionClosed

        # The server may close while a big frame is still going out; the close shows up in receive().
        with contextlib.suppress(ConnectionClosed, ConnectionError):
            if frame.raw_text:
                await self.connection.send(frame.data, text=True)  # invalid UTF-8 in a text frame
            elif frame.data is not None:
                await self.connection.send(frame.data, text=False)
            else:
                await self.connection.send(frame.text or "", text=True)

    async def receive(self, timeout: float) -> Incoming:
        from websockets.exceptions import ConnectionClosed

        try:
            async with asyncio.timeout(timeout):
                message = await self.connection.recv()
        except ConnectionClosed as closed:
            return Incoming(close=closed.rcvd.code if closed.rcvd is not None else 1006)
        if isinstance(message, bytes):
            return Incoming(data=message)
        return Incoming(text=message)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.connection.close(), 10)


def websocket_connector(
    base_url: str, session_key: str | None, *, origin: str, message_limit: int | None = DAPHNE_MESSAGE_LIMIT
) -> Connect:
    """A ``Connect`` for a running server at ``base_url`` (``ws://127.0.0.1:8000``); paths are appended."""
    from websockets.asyncio.client import connect as ws_connect
    from websockets.exceptions import InvalidStatus

    headers = {"Cookie": f"sessionid={session_key}"} if session_key else {}

    async def connect(path: str) -> Transport:
        try:
            connection = await ws_connect(
                base_url.rstrip("/") + path,
                origin=origin,  # type: ignore[arg-type]
                additional_headers=headers,
                max_size=None,
                compression=None,
                ping_interval=None,
                open_timeout=15,
                close_timeout=5,
            )
        except InvalidStatus as refused:
            raise Refused(refused.response.status_code) from None
        return WebSocketsTransport(connection, message_limit)

    return connect
