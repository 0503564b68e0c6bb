"""One authenticated connection to the QFEX trade WebSocket: auth, subscribe, ``get_user_orders``, pushes.

Matching replies. QFEX replies carry no request id; a reply is recognised only by its top-level key
(docs/qfex-protocol.md §3.2). So the session keeps one request in flight and, while waiting, sorts every
incoming frame:

* the expected reply key → the answer;
* ``order_response`` pushes → handed to :attr:`QfexSession.on_push` as they are read (by whichever
  thread reads: the one waiting for a reply, or the one calling :meth:`QfexSession.read_available`),
  or, without a callback, buffered for :meth:`QfexSession.wait_for_pushes`;
* error frames (``{"err": …}`` or the old flat ``{"type": "error", …}``) → raised as typed exceptions,
  unless their ``incoming_message.type`` names a different request (then they belong to something
  else and are ignored);
* anything else (balances, positions, fills, the legacy envelope, ``ack``, unknown keys, replies of
  another kind) → ignored, logged at debug by key names only.

Stale replies. Because a duplicated or late reply looks exactly like a fresh one, before sending each
request the session drains whatever frames are already waiting on the socket, without blocking:
pushes are kept, everything else is discarded as stale. The session remembers a digest of every
``get_user_orders`` reply it took (the last ``_PAGE_REPLY_MEMORY``). A non-empty reply byte-identical to
one of them is either a late duplicate with the genuine answer behind it (a late copy of the last read's
only page must not pass for the next read's first) or a genuine answer that happens to match — the
same book read again, or a list that shifted so that another offset now holds what this one held. It is
held for a short grace (twice the session's usual reply time, at least ``_MIN_DUPLICATE_GRACE``) and a
reply that follows within it is taken instead; if none does, the held one is the answer.

A request that times out closes the session, so its late answer can never be taken for the next one.

After a :class:`QfexTimeout`, :class:`ConnectionLost` or :class:`ProtocolError` the session is
closed; after an :class:`ExchangeError` (including ``RateLimited``) it stays usable.

Secrets: the auth message is built, sent and dropped inside :meth:`QfexSession.connect`; it is never
logged and no exception quotes it. One session is used by one thread at a time; it starts no threads.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import AuthenticationRejected, ConnectionLost, ErrorFrame, ProtocolError, QfexTimeout, shorten
from .messages import (
    LEGACY_AUTH_REPLY,
    Incoming,
    channel_list,
    classify,
    decode_incoming,
    describe,
    encode_outgoing,
    get_user_orders_message,
    subscribe_message,
    unsubscribe_message,
)
from .policy import EndpointPolicy
from .records import Order, Page, Twap, parse_order, parse_orders_page
from .signing import Credentials, auth_message, new_nonce
from .transport import Transport, url_for_logs, url_with_api_key

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "qfexdash/0.1 (read-only dashboard; websocket-client)"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_BUFFERED_PUSHES = 10_000  # pushes are only hints to refresh; beyond this the oldest are dropped
_DRAIN_FRAME_GRACE = 0.05  # how long the non-blocking drain lets one already-arriving frame complete
_DRAIN_MAX_FRAMES = 1_000
_CLOSE_GRACE = 1.0
_KEEP_WAITING = object()
_ORDER_REPLY_KEYS = ("all_orders_response", "user_orders")
_PAGE_REPLY_MEMORY = 1_024  # digests of page replies remembered per connection (two reads of a 500-page book)
_MIN_DUPLICATE_GRACE = 0.05  # seconds a reply identical to an earlier page reply is held, at least


@dataclass
class PageLimits:
    """What this session has learned about the server's page size (used by ``fetch_open_orders``)."""

    largest: int = 0  # the longest page the server ever returned: its page cap is at least this
    cap: int | None = None  # a cap below the asked limit, learned from a short page that had more orders after it


class QfexSession:
    """A connection to the QFEX trade WebSocket, read-only by construction.

    ``clock`` (Unix seconds) and ``nonce_factory`` are injectable for tests; ``ca_file`` adds a CA
    bundle for ``wss://`` servers with a private certificate. ``endpoint_policy`` limits where the
    session may connect (checked on the resolved address at connect time); None means anywhere, for
    callers that pass an operator's own URL.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        account_id: str | None = None,
        timeout: float = 10.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = new_nonce,
        ca_file: str | None = None,
        endpoint_policy: EndpointPolicy | None = None,
    ) -> None:
        if not isinstance(credentials, Credentials):
            raise TypeError("credentials must be a Credentials instance")
        if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if not isinstance(max_message_bytes, int) or max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be an int >= 1024")
        if not isinstance(user_agent, str) or not user_agent.isprintable():
            raise ValueError("user_agent must be printable text without line breaks")
        if account_id is not None and (not isinstance(account_id, str) or not account_id):
            raise ValueError("account_id must be a non-empty string or None")
        self._connect_url = url_with_api_key(url, credentials.public_key)
        self.url = url_for_logs(url)
        self._credentials = credentials
        self.account_id = account_id
        self.timeout = float(timeout)
        self.max_message_bytes = max_message_bytes
        self._user_agent = user_agent
        self.clock = clock
        self._nonce_factory = nonce_factory
        self._ca_file = ca_file
        self._endpoint_policy = endpoint_policy
        self._transport: Transport | None = None
        self._pushes: deque[Order] = deque()
        self.dropped_pushes = 0
        # Called with each push, in the reading thread, in the order the pushes arrived. It must be quick
        # and must not use the session (e.g. hand the order to an event loop with call_soon_threadsafe).
        self.on_push: Callable[[Order], None] | None = None
        self._page_replies = _PageReplies()
        self.page_limits = PageLimits()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<QfexSession {self.url} key={self._credentials.public_key!r} account={self.account_id!r} {state}>"

    # -- lifecycle ---------------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the socket and authenticate with a fresh nonce and timestamp. Leaves nothing open on failure."""
        if self._transport is not None:
            raise RuntimeError("this QfexSession is already connected")
        transport = Transport.open(
            self._connect_url,
            timeout=self.timeout,
            max_message_bytes=self.max_message_bytes,
            user_agent=self._user_agent,
            ca_file=self._ca_file,
            policy=self._endpoint_policy,
        )
        self._transport = transport
        self._pushes.clear()
        self._page_replies.clear()
        try:
            self._authenticate()
        except BaseException:
            self._transport = None
            transport.close(grace=0)
            raise
        logger.info("QFEX session open: %s account=%s", self.url, self.account_id or "primary")

    def close(self) -> None:
        """Close the connection; safe to call any number of times."""
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close(grace=min(self.timeout, _CLOSE_GRACE))
            logger.info("QFEX session closed: %s", self.url)

    @property
    def closed(self) -> bool:
        return self._transport is None

    def __enter__(self) -> QfexSession:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------------

    def subscribe(self, channels: list[str]) -> None:
        """Subscribe and wait for one ``{"subscribed": name}`` per channel."""
        names = channel_list(channels)
        self._request(subscribe_message(names), _ChannelAcks("subscribed", names))

    def unsubscribe(self, channels: list[str]) -> None:
        """Unsubscribe and wait for one ``{"unsubscribed": name}`` per channel."""
        names = channel_list(channels)
        self._request(unsubscribe_message(names), _ChannelAcks("unsubscribed", names))

    def get_user_orders(
        self, *, limit: int = 1000, offset: int = 0, symbol: str | None = None
    ) -> tuple[list[Order], list[Twap]]:
        """One page of open orders and the active TWAPs."""
        page = self.get_user_orders_page(limit=limit, offset=offset, symbol=symbol)
        return page.orders, page.twaps

    def get_user_orders_page(self, *, limit: int = 1000, offset: int = 0, symbol: str | None = None) -> Page:
        """Like :meth:`get_user_orders`, with the raw item count that paging needs."""
        message = get_user_orders_message(limit=limit, offset=offset, symbol=symbol)
        sent = time.monotonic()

        def on_reply(incoming: Incoming, text: str) -> Any:
            if incoming.key not in _ORDER_REPLY_KEYS:
                return _KEEP_WAITING
            return self._page_replies.judge(parse_orders_page(incoming.message), text, sent, self.timeout)

        page: Page = self._request(message, on_reply)
        limits = self.page_limits
        limits.largest = max(limits.largest, page.received)
        return page

    def wait_for_pushes(self, timeout: float) -> list[Order]:
        """``order_response`` pushes buffered so far, or the first ones within ``timeout`` (else ``[]``)."""
        transport = self._require_transport()
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            self._drain()
            while not self._pushes:
                try:
                    text = transport.receive(deadline)
                except QfexTimeout:
                    break
                incoming = classify(decode_incoming(text))
                if incoming.kind == "push":
                    self._buffer_push(incoming)
                elif incoming.kind == "error" and incoming.error is not None:
                    logger.warning(
                        "QFEX error with no request waiting: %s %s",
                        incoming.error.error_code,
                        incoming.error.message or "",
                    )
                else:
                    logger.debug("ignored frame while waiting for pushes: %s", describe(incoming.message))
            self._drain()
        except (ConnectionLost, ProtocolError):
            self._abort()
            raise
        pushes = list(self._pushes)
        self._pushes.clear()
        return pushes

    def read_available(self) -> int:
        """Read the frames already waiting on the socket, without blocking for new ones; the number read.

        For an idle session (no request in flight): pushes go to :attr:`on_push` (or the buffer), an
        error frame is logged, anything else is stale and dropped. Raises :class:`ConnectionLost` when
        the session ended (and :class:`ProtocolError` for a broken stream); the session is then closed.
        """
        self._require_transport()
        try:
            return self._drain()
        except (ConnectionLost, ProtocolError):
            self._abort()
            raise

    def fileno(self) -> int:
        """The socket's file descriptor, for a selector watching idle sessions (-1 when closed)."""
        transport = self._transport
        return -1 if transport is None else transport.socket.fileno()

    # -- internals ---------------------------------------------------------------------------------

    def _authenticate(self) -> None:
        message = auth_message(self._credentials, self.account_id, now=int(self.clock()), nonce=self._nonce_factory())

        def on_reply(incoming: Incoming, _text: str) -> Any:
            if incoming.key == "authenticated":
                if incoming.message["authenticated"] is True:
                    return True
                raise AuthenticationRejected("QFEX answered authenticated=false")
            if incoming.key == LEGACY_AUTH_REPLY:
                result = incoming.message.get("result")
                if result == "success":
                    return True
                raise AuthenticationRejected(f"QFEX answered auth result {shorten(result, 40)!r}")
            return _KEEP_WAITING

        # The message holds the signature: it goes straight to the socket and is dropped.
        self._send(message)
        del message
        self._await("auth", on_reply, time.monotonic() + self.timeout)

    def _request(self, message: dict[str, Any], on_reply: Callable[[Incoming, str], Any]) -> Any:
        self._require_transport()
        try:
            self._drain()
            self._send(message)
            return self._await(message["type"], on_reply, time.monotonic() + self.timeout)
        except (QfexTimeout, ConnectionLost, ProtocolError):
            # The stream can no longer be trusted to pair replies with requests.
            self._abort()
            raise

    def _send(self, message: dict[str, Any]) -> None:
        """The one place that writes a message: the allow-list is checked before anything is sent."""
        text = encode_outgoing(message)
        self._require_transport().send_text(text)

    def _await(self, request_type: str, on_reply: Callable[[Incoming, str], Any], deadline: float) -> Any:
        transport = self._require_transport()
        held: _Held | None = None  # an answer that may be a late duplicate: taken if nothing follows it
        while True:
            try:
                text = transport.receive(deadline if held is None else min(deadline, held.until))
            except QfexTimeout:
                if held is None:
                    raise
                return held.result
            incoming = classify(decode_incoming(text))
            if incoming.kind == "reply":
                result = on_reply(incoming, text)
                if isinstance(result, _Held):
                    held = result if held is None else _Held(result.result, held.until)  # the later copy
                    continue
                if result is not _KEEP_WAITING:
                    return result
                logger.debug("reply %s does not complete %s yet; waiting on", incoming.key, request_type)
            elif incoming.kind == "push":
                self._buffer_push(incoming)
            elif incoming.kind == "error" and incoming.error is not None:
                if _belongs_elsewhere(incoming.error, request_type):
                    continue
                raise incoming.error.to_exception(during=request_type)
            else:
                logger.debug("ignored frame while waiting for %s: %s", request_type, describe(incoming.message))

    def _drain(self) -> int:
        """Read frames that are already waiting, without blocking: keep pushes, drop stale replies."""
        transport = self._require_transport()
        for count in range(_DRAIN_MAX_FRAMES):
            if not transport.data_ready():
                return count
            try:
                text = transport.receive_frame(time.monotonic() + _DRAIN_FRAME_GRACE)
            except QfexTimeout:
                return count  # a frame still arriving; the next read resumes it where it stopped
            if text is None:
                continue  # a ping (answered) or a pong: never wait behind it for a message
            incoming = classify(decode_incoming(text))
            if incoming.kind == "push":
                self._buffer_push(incoming)
            elif incoming.kind == "error" and incoming.error is not None:
                logger.warning(
                    "QFEX error with no request waiting: %s %s", incoming.error.error_code, incoming.error.message or ""
                )
            else:
                logger.debug("discarded stale frame before a request: %s", describe(incoming.message))
        return _DRAIN_MAX_FRAMES

    def _buffer_push(self, incoming: Incoming) -> None:
        payload = incoming.message.get("order_response")
        if not isinstance(payload, dict):
            logger.warning("ignored an order_response push that is not an object")
            return
        order = parse_order(payload)
        if self.on_push is not None:
            self.on_push(order)
            return
        if len(self._pushes) >= MAX_BUFFERED_PUSHES:
            self._pushes.popleft()
            self.dropped_pushes += 1
        self._pushes.append(order)

    def _require_transport(self) -> Transport:
        if self._transport is None:
            raise ConnectionLost("the QFEX session is not connected")
        return self._transport

    def _abort(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close(grace=0)
            logger.info("QFEX session dropped after an error: %s", self.url)


def _belongs_elsewhere(error: ErrorFrame, request_type: str) -> bool:
    """An error frame whose ``incoming_message`` names another request is not ours: logged and ignored."""
    if error.incoming_type is None or error.incoming_type == request_type:
        return False
    logger.debug("ignored %s error for %s while waiting for %s", error.error_code, error.incoming_type, request_type)
    return True


class _PageReplies:
    """The page replies one connection took (digests of the last ``_PAGE_REPLY_MEMORY``) and how long
    fresh ones usually take: a reply identical to one of them is held (see the module docstring)."""

    def __init__(self) -> None:
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._seconds = 0.0  # a moving average of fresh replies' latency

    def clear(self) -> None:
        self._digests.clear()

    def judge(self, page: Page, text: str, sent: float, timeout: float) -> Page | _Held:
        """``page`` to take at once, or held for a grace when its text repeats an earlier reply's."""
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        now = time.monotonic()
        if page.received and digest in self._digests:
            logger.debug("a get_user_orders reply identical to an earlier one: held in case another follows")
            return _Held(page, now + min(timeout, max(_MIN_DUPLICATE_GRACE, 2 * self._seconds)))
        self._seconds = 0.8 * self._seconds + 0.2 * (now - sent)
        self._digests[digest] = None
        while len(self._digests) > _PAGE_REPLY_MEMORY:
            self._digests.popitem(last=False)
        return page


@dataclass(frozen=True)
class _Held:
    """A reply identical to an earlier page reply, held until ``until`` (monotonic) in case another follows."""

    result: Any
    until: float


class _ChannelAcks:
    """Reply matcher for subscribe/unsubscribe: done when every channel was acknowledged."""

    def __init__(self, key: str, names: list[str]) -> None:
        self.key = key
        self.waiting = set(names)

    def __call__(self, incoming: Incoming, _text: str) -> Any:
        if incoming.key != self.key:
            return _KEEP_WAITING
        value = incoming.message[self.key]
        for name in value if isinstance(value, list) else [value]:
            if isinstance(name, str):
                self.waiting.discard(name)
        return True if not self.waiting else _KEEP_WAITING
