"""The socket layer under :class:`~orders.qfex.session.QfexSession`, built on websocket-client.

What this adds to websocket-client, and why:

* **Deadlines, not just per-call timeouts.** We open the TCP (and TLS) socket ourselves and hand it to
  websocket-client. The socket class re-arms its timeout to "time left until the deadline" before
  every ``recv``/``send``, so a server that trickles one byte per second cannot stretch a handshake
  or a reply past the session's timeout. Our own socket also means environment proxies are not used:
  the client talks straight to the configured host.
* **No redirects.** ``redirect_limit=0``; a 3xx handshake answer becomes :class:`ConnectionFailed`.
  The handshake answer is also size-capped (:data:`HANDSHAKE_BYTES`), because websocket-client reads
  header lines and error bodies without a bound.
* **A true pre-read size cap.** websocket-client reads a frame as header, length, mask, payload
  (``frame_buffer``). Our subclass checks the announced length right after reading it and refuses
  an oversized message, a binary frame or an over-long control frame *before* the payload is read,
  so nothing big is ever buffered. Fragmented messages are capped on their running total.
* **The allow-list again at the lowest send.** ``send_frame`` (which every websocket-client send
  path ends in) refuses binary or fragmented data frames and any text frame whose JSON ``type`` is
  outside ``ALLOWED_MESSAGE_TYPES``.
* **The endpoint policy at connect time.** Given an :class:`~orders.qfex.policy.EndpointPolicy`,
  :func:`_open_tcp` refuses a host or port the policy does not list before resolving it, and every
  address the name resolved to that is loopback, private or link-local unless listed itself (S22:
  DNS rebinding cannot turn an allowed name into a path to the server's own network).
* **No trace logging of frames.** Connecting refuses to run while websocket-client's trace mode is
  on, because trace mode would log the auth frame (with its signature).

Not covered: DNS resolution (``getaddrinfo``) has no timeout in the standard library; a numeric
host or a working resolver is assumed.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import struct
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websocket
from websocket import ABNF

from .errors import (
    ConnectionFailed,
    ConnectionLost,
    ForbiddenMessage,
    InvalidURL,
    ProtocolError,
    QfexTimeout,
    shorten,
)
from .messages import check_outgoing_text
from .policy import EndpointNotAllowed, EndpointPolicy

HANDSHAKE_BYTES = 64 * 1024  # the whole HTTP answer to the upgrade request, headers and any error body
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_CONTROL_PAYLOAD = 125  # RFC 6455 §5.5


class _HandshakeTooLarge(OSError):
    pass


class FrameRejected(Exception):
    """A frame refused from its header alone (size or type); its payload was not read."""


if TYPE_CHECKING:
    _SocketBase = socket.socket  # what the mixin is mixed into, for the type checker
else:
    _SocketBase = object


class _DeadlineMixin(_SocketBase):
    """Socket mixin: every ``recv``/``send`` times out at ``deadline`` (a ``time.monotonic()`` value)."""

    deadline: float | None = None
    read_budget: int | None = None  # bytes still allowed to be read; None = unlimited

    def _arm(self) -> None:
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline passed")
            self.settimeout(remaining)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._arm()
        if self.read_budget is not None:
            if self.read_budget <= 0:
                raise _HandshakeTooLarge("handshake answer too large")
            bufsize = min(bufsize, self.read_budget)
        data = super().recv(bufsize, flags)
        if self.read_budget is not None:
            self.read_budget -= len(data)
        return data

    def send(self, data: Any, flags: int = 0) -> int:
        self._arm()
        return super().send(data, flags)


class _DeadlineSocket(_DeadlineMixin, socket.socket):
    pass


# The mixin's recv(bufsize, flags) stands in for both socket.socket's and SSLSocket's (recv(buflen, flags)).
class _DeadlineSSLSocket(_DeadlineMixin, ssl.SSLSocket):  # type: ignore[misc]
    pass


class _CappedFrameBuffer(websocket.frame_buffer):
    """websocket-client's frame reader, refusing a frame from its header before reading the payload."""

    def __init__(self, recv_fn: Any, max_message_bytes: int) -> None:
        # UTF-8 is validated by bytes.decode in C instead of websocket-client's slower pure-Python check.
        super().__init__(recv_fn, skip_utf8_validation=True)
        self.max_message_bytes = max_message_bytes
        self._message_bytes = 0

    def recv_length(self) -> None:
        super().recv_length()
        assert self.header is not None  # recv_header, which sets it, has run
        opcode = self.header[4]  # (fin, rsv1, rsv2, rsv3, opcode, has_mask, length_bits)
        length = self.length or 0
        if opcode >= 0x8:
            if length > _MAX_CONTROL_PAYLOAD:
                raise FrameRejected(f"control frame of {length} bytes")
            return
        if opcode == ABNF.OPCODE_BINARY:
            raise FrameRejected("binary frame (QFEX sends JSON text)")
        if opcode == ABNF.OPCODE_TEXT:
            self._message_bytes = 0
        self._message_bytes += length
        if self._message_bytes > self.max_message_bytes:
            raise FrameRejected(
                f"message of at least {self._message_bytes} bytes exceeds the {self.max_message_bytes} byte limit"
            )


class _GuardedWebSocket(websocket.WebSocket):
    def __init__(self, *, max_message_bytes: int, **options: Any) -> None:
        super().__init__(skip_utf8_validation=True, **options)
        self.frame_buffer = _CappedFrameBuffer(self._recv, max_message_bytes)

    def send_frame(self, frame: ABNF) -> int:
        # Every websocket-client send path (send, send_text, send_bytes, send_binary) ends here.
        if frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
            if frame.opcode != ABNF.OPCODE_TEXT or not frame.fin:
                raise ForbiddenMessage("refused to send a binary or fragmented frame")
            check_outgoing_text(frame.data)
        return super().send_frame(frame)


def url_with_api_key(url: str, public_key: str) -> str:
    """``url`` with ``api_key=<public key>`` in its query (other parameters kept, an old api_key replaced).

    Raises :class:`InvalidURL` (a ``ValueError`` and a ``ConnectionFailed``) for an unusable URL.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a malformed port
    except (ValueError, TypeError, AttributeError):
        raise InvalidURL("the QFEX URL cannot be parsed") from None
    if parts.scheme not in ("ws", "wss"):
        raise InvalidURL("the QFEX URL must start with ws:// or wss://")
    if not parts.hostname:
        raise InvalidURL("the QFEX URL has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidURL("the QFEX URL must not contain user credentials")
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "api_key"]
    query.append(("api_key", public_key))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))


def url_for_logs(url: str) -> str:
    """The URL without its query string (which carries the public key): scheme, host, port and path."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class Transport:
    """One open WebSocket. Every operation ends by ``deadline`` or raises a ``QfexError``."""

    def __init__(self, ws: _GuardedWebSocket, sock: _DeadlineMixin, timeout: float) -> None:
        self._ws = ws
        self._sock = sock
        self._timeout = timeout
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        timeout: float,
        max_message_bytes: int,
        user_agent: str,
        ca_file: str | None = None,
        policy: EndpointPolicy | None = None,
    ) -> Transport:
        if websocket.isEnabledForTrace():
            raise ConnectionFailed(
                "websocket-client trace mode is on; refusing to send credentials that it would log",
                user_message="Connecting to QFEX was refused because debug tracing is on; switch it off.",
            )
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        host = parts.hostname or ""
        port = parts.port or (443 if secure else 80)
        deadline = time.monotonic() + timeout
        tcp = _open_tcp(host, port, deadline, policy)
        sock: _DeadlineSocket | _DeadlineSSLSocket = tcp
        ws: _GuardedWebSocket | None = None
        try:
            if secure:
                sock = _start_tls(tcp, host, deadline, ca_file)
            sock.deadline = deadline
            sock.read_budget = HANDSHAKE_BYTES
            ws = _GuardedWebSocket(max_message_bytes=max_message_bytes)
            ws.connect(  # type: ignore[no-untyped-call]  # websocket-client leaves connect unannotated
                url,
                socket=sock,
                timeout=timeout,
                redirect_limit=0,
                suppress_origin=True,
                header=[f"User-Agent: {user_agent}"],
            )
            sock.read_budget = None
            return cls(ws, sock, timeout)
        except BaseException as exc:
            sock.close()
            if isinstance(exc, Exception):
                raise _handshake_error(exc, ws) from None
            raise

    # -- sending -----------------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        """Write one text frame. The allow-list is checked again on the frame itself."""
        self._sock.deadline = time.monotonic() + self._timeout
        try:
            self._ws.send(text)
        except websocket.WebSocketTimeoutException:
            raise QfexTimeout("sending to QFEX timed out") from None
        except (websocket.WebSocketConnectionClosedException, OSError) as exc:
            raise ConnectionLost(f"connection lost while sending ({type(exc).__name__})") from None

    # -- receiving ---------------------------------------------------------------------------------

    def receive(self, deadline: float) -> str:
        """The next text message (pings are answered inside). Raises QfexTimeout at ``deadline``."""
        while (text := self.receive_frame(deadline)) is None:
            pass
        return text

    def receive_frame(self, deadline: float) -> str | None:
        """The next frame: a text message, or None for a ping (answered) or a pong. A reader that must
        not wait past what has arrived uses this, so a ping never keeps it waiting for a message."""
        self._sock.deadline = deadline
        try:
            opcode, frame = self._ws.recv_data_frame(control_frame=True)
        except websocket.WebSocketTimeoutException:
            raise QfexTimeout("no message from QFEX before the deadline") from None
        except FrameRejected as exc:
            raise ProtocolError(f"QFEX sent a frame the client refuses: {exc}") from None
        except (websocket.WebSocketProtocolException, websocket.WebSocketPayloadException) as exc:
            raise ProtocolError(f"invalid WebSocket frame: {shorten(exc, 120)}") from None
        except (websocket.WebSocketConnectionClosedException, OSError) as exc:
            raise ConnectionLost(f"connection lost ({type(exc).__name__})") from None
        if opcode in (ABNF.OPCODE_PING, ABNF.OPCODE_PONG):
            return None
        if opcode == ABNF.OPCODE_CLOSE:
            raise ConnectionLost(f"QFEX closed the connection{_close_detail(frame.data)}")
        if opcode != ABNF.OPCODE_TEXT:  # binary frames are refused from their header already
            raise ProtocolError(f"unexpected WebSocket opcode {opcode}")
        try:
            text: str = frame.data.decode("utf-8")  # websocket-client's ABNF.data is untyped
        except UnicodeDecodeError:
            raise ProtocolError("QFEX sent a text frame that is not UTF-8") from None
        return text

    def data_ready(self) -> bool:
        """True if bytes are waiting on the socket now (never blocks)."""
        if self._ws.sock is None:
            return False
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return True
        return bool(self._selector.select(0))

    # -- closing -----------------------------------------------------------------------------------

    def close(self, grace: float) -> None:
        """Close the WebSocket (waiting up to ``grace`` seconds for the server's close frame) and the socket."""
        try:
            if grace > 0:
                self._sock.deadline = time.monotonic() + grace
                self._ws.close(timeout=grace)
        except Exception:  # noqa: S110 -- closing is best effort; the socket is closed below regardless
            pass
        finally:
            self._ws.shutdown()  # type: ignore[no-untyped-call]  # websocket-client leaves it unannotated
            self._sock.close()
            self._selector.close()

    @property
    def socket(self) -> socket.socket:
        return self._sock


def _open_tcp(host: str, port: int, deadline: float, policy: EndpointPolicy | None = None) -> _DeadlineSocket:
    """Resolve ``host`` and connect to the first address that answers, within ``deadline``.

    With a ``policy``, an unlisted host or port is refused before it is even resolved, and if any address
    it resolves to is refused by the policy nothing is connected to at all (``EndpointNotAllowed``).
    """
    if policy is not None and not policy.allows(host, port):
        raise EndpointNotAllowed(f"{shorten(host, 80)}:{port} is not listed in the endpoint policy")
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConnectionFailed(f"cannot resolve QFEX host {shorten(host, 80)!r}: {shorten(exc, 80)}") from None
    if policy is not None:
        for *_rest, address in addresses:
            policy.check_address(host, port, str(address[0]))
    last_error: OSError | None = None
    for family, kind, proto, _name, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = _DeadlineSocket(family, kind, proto)
        try:
            sock.settimeout(remaining)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(address)
            return sock
        except TimeoutError:
            sock.close()
            raise QfexTimeout("connecting to QFEX timed out") from None
        except OSError as exc:
            sock.close()
            last_error = exc
    if last_error is None:
        raise QfexTimeout("connecting to QFEX timed out")
    raise ConnectionFailed(f"cannot connect to QFEX: {type(last_error).__name__}: {shorten(last_error, 80)}")


def _start_tls(sock: _DeadlineSocket, host: str, deadline: float, ca_file: str | None) -> _DeadlineSSLSocket:
    context = ssl.create_default_context(cafile=ca_file)
    context.sslsocket_class = _DeadlineSSLSocket
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        sock.close()
        raise QfexTimeout("connecting to QFEX timed out")
    sock.settimeout(remaining)
    try:
        # sslsocket_class above makes it a _DeadlineSSLSocket; the stubs say SSLSocket.
        return context.wrap_socket(sock, server_hostname=host)  # type: ignore[return-value]
    except TimeoutError:
        sock.close()
        raise QfexTimeout("TLS handshake with QFEX timed out") from None
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise ConnectionFailed(
            f"QFEX's TLS certificate was not accepted: {shorten(exc.verify_message or exc, 120)}",
            user_message="Could not connect to QFEX securely: its certificate was not accepted.",
        ) from None
    except OSError as exc:
        sock.close()
        raise ConnectionFailed(f"TLS handshake with QFEX failed: {shorten(exc, 120)}") from None


def _handshake_error(exc: Exception, ws: _GuardedWebSocket | None) -> Exception:
    """Map whatever went wrong during the upgrade to one of our exceptions."""
    if isinstance(exc, ConnectionFailed | QfexTimeout):
        return exc
    if isinstance(exc, websocket.WebSocketTimeoutException | TimeoutError):
        return QfexTimeout("the WebSocket handshake with QFEX timed out")
    if isinstance(exc, websocket.WebSocketBadStatusException):
        return ConnectionFailed(
            f"QFEX answered the WebSocket upgrade with HTTP {exc.status_code}", status=exc.status_code
        )
    status = getattr(getattr(ws, "handshake_response", None), "status", None)
    if status in _REDIRECT_STATUSES:
        return ConnectionFailed(
            f"QFEX answered the WebSocket upgrade with a redirect (HTTP {status}); redirects are not followed",
            status=status,
            user_message="The configured QFEX address redirects elsewhere, which the dashboard does not follow — "
            "check the URL.",
        )
    if isinstance(exc, _HandshakeTooLarge):
        return ConnectionFailed(f"QFEX's answer to the WebSocket upgrade exceeds {HANDSHAKE_BYTES} bytes")
    if isinstance(exc, websocket.WebSocketException | OSError):
        return ConnectionFailed(f"the WebSocket handshake with QFEX failed: {type(exc).__name__}: {shorten(exc, 120)}")
    return exc


def _close_detail(payload: bytes) -> str:
    if len(payload) < 2:
        return ""
    code = struct.unpack("!H", payload[:2])[0]
    reason = payload[2:].decode("utf-8", "replace")
    return f" (code {code}{', ' + shorten(reason, 80) if reason else ''})"
