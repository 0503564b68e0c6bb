"""The read-only messages the simulated exchange answers, one handler each.

A handler is a method of `ReadHandlers` decorated with `@handles("message_type")`: the decorator is the
route (`ROUTES`), and `ALLOWED_TYPES` (the read-only allow-list) is `auth` plus every routed type. A new
read-only message (`get_user_trades`, say) is one decorated method; a new push channel is a name in
`subscriptions.CHANNELS`. Handlers run on the loop thread after `Dispatcher` has decoded the message,
recorded it, checked the session logged in and charged the rate budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from . import frames
from .book import PAGE_CAP, page_reply
from .connection import PartialThenReset, Session
from .state import ExchangeState
from .subscriptions import CHANNELS, Subscriptions

Handler = Callable[["ReadHandlers", Session, dict[str, object]], Awaitable[None]]
ROUTES: dict[str, Handler] = {}


def handles(*msg_types: str) -> Callable[[Handler], Handler]:
    """Route these message types to the decorated `ReadHandlers` method."""

    def register(handler: Handler) -> Handler:
        for msg_type in msg_types:
            ROUTES[msg_type] = handler
        return handler

    return register


class ReadHandlers:
    """Answers to an authenticated session's read-only messages."""

    def __init__(self, state: ExchangeState, subscriptions: Subscriptions) -> None:
        self._state = state
        self._subscriptions = subscriptions

    async def handle(self, session: Session, msg_type: str, message: dict[str, object]) -> bool:
        """Answer a routed message; False when its type has no handler here."""
        handler = ROUTES.get(msg_type)
        if handler is None:
            return False
        await handler(self, session, message)
        return True

    def _error(self, code: str, text: str, message: dict[str, object]) -> bytes:
        return frames.error_reply(self._state.faults, code, text, message)

    def _send_unrelated_frames(self, session: Session) -> None:
        """F8: frames a client must skip while it waits for its answer."""
        assert session.account is not None
        assert session.book_id is not None
        with self._state.lock:
            stale = self._state.market.stale_order(session.book_id)
        session.envelopes_sent += 1
        for frame in frames.unrelated_frames(
            session.account.user_id, session.connection_id, session.envelopes_sent, stale
        ):
            session.enqueue(frame)

    @handles("subscribe", "unsubscribe")
    async def subscribe(self, session: Session, message: dict[str, object]) -> None:
        assert session.book_id is not None
        params = message.get("params")
        channels = params.get("channels") if isinstance(params, dict) else None
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            text = "params.channels must be a non-empty list of channel names"
            session.enqueue(self._error("InvalidJSONFormat", text, message))
            return
        unknown = sorted({c for c in channels if c not in CHANNELS})
        if unknown:
            session.enqueue(self._error("InvalidParameter", f"unknown channel(s): {', '.join(unknown)}", message))
            return
        if self._state.faults.unrelated_frames:
            self._send_unrelated_frames(session)
        subscribing = message["type"] == "subscribe"
        for channel in channels:
            if subscribing:
                self._subscriptions.subscribe(session, session.book_id, channel)
            else:
                self._subscriptions.unsubscribe(session, session.book_id, channel)
            session.enqueue(orjson.dumps({"subscribed" if subscribing else "unsubscribed": channel}))

    @handles("get_user_orders")
    async def get_user_orders(self, session: Session, message: dict[str, object]) -> None:
        assert session.book_id is not None
        params = message.get("params")
        params = {} if params is None else params
        if not isinstance(params, dict):
            session.enqueue(self._error("InvalidJSONFormat", "params must be an object", message))
            return
        numbers = {}
        for name, default in (("limit", PAGE_CAP), ("offset", 0)):
            value = params.get(name)
            if value is None:
                value = default
            elif isinstance(value, bool) or not isinstance(value, int):
                session.enqueue(self._error("InvalidJSONFormat", f"params.{name} must be an integer", message))
                return
            elif value < 0:
                session.enqueue(self._error("InvalidParameter", f"params.{name} must be 0 or more", message))
                return
            numbers[name] = value
        symbol = params.get("symbol")
        if symbol is not None and not isinstance(symbol, str):
            session.enqueue(self._error("InvalidJSONFormat", "params.symbol must be a string", message))
            return

        state = self._state
        faults = state.faults
        delay = faults.reply_delay + state.page_latency
        if delay > 0:
            await asyncio.sleep(delay)
        if session.closing:
            return
        if faults.read_error_code:
            text = f"{faults.read_error_code}: act on this account in the web app before reading it"
            session.enqueue(self._error(faults.read_error_code, text, message))
            return
        limit = min(numbers["limit"], faults.page_cap, PAGE_CAP)
        offset = numbers["offset"]
        if faults.unrelated_frames:
            self._send_unrelated_frames(session)
        with state.lock:
            book = state.market.books[session.book_id]
            if faults.oversized_reply_bytes > 0 and not (faults.malformed_json or faults.wrong_schema):
                selected = book.select(limit, offset, symbol, state.page_order)
                reply = frames.padded_reply(page_reply("current", *selected), faults.oversized_reply_bytes)
            else:
                reply = book.page_bytes(faults.response_shape, limit, offset, symbol, state.page_order)
        if faults.drop_mid_reply:
            session.enqueue(PartialThenReset(reply))
            session.closing = True
            return
        if faults.malformed_json:
            reply = frames.MALFORMED_REPLY
        elif faults.wrong_schema:
            reply = frames.WRONG_SCHEMA_REPLY
        if faults.orders_array != "present":
            reply = frames.without_orders_array(reply, null=faults.orders_array == "null")
        session.enqueue(reply)
        if faults.duplicate_replies:
            session.enqueue(reply)
        if faults.page_mutation > 0:
            with state.lock:
                pushes = state.market.churn(session.book_id, faults.page_mutation)
            self._subscriptions.publish_orders(pushes)
