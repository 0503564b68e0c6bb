"""Who is subscribed to what, per book, and publishing pushes to them.

A session subscribes to channels of the book it logged in to (`order_responses`, `fills`, `positions`,
`balances`, `stop_orders`). Only `order_responses` carries pushes today (`publish_orders`); a channel that
gains pushes publishes them with `publish` to `sessions(book_id, channel)`. Used on the loop thread only.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from .book import Push
from .connection import Session
from .state import ExchangeState

CHANNELS = frozenset({"order_responses", "fills", "positions", "balances", "stop_orders"})
ORDER_CHANNEL = "order_responses"


class Subscriptions:
    """Sessions per (book, channel)."""

    def __init__(self, state: ExchangeState) -> None:
        self._state = state
        self._sessions: dict[tuple[str, str], set[Session]] = {}

    def subscribe(self, session: Session, book_id: str, channel: str) -> None:
        session.channels.add(channel)
        self._sessions.setdefault((book_id, channel), set()).add(session)

    def unsubscribe(self, session: Session, book_id: str, channel: str) -> None:
        session.channels.discard(channel)
        self._sessions.get((book_id, channel), set()).discard(session)

    def drop(self, session: Session, book_id: str) -> None:
        """Forget a closed session's subscriptions."""
        for channel in session.channels:
            self._sessions.get((book_id, channel), set()).discard(session)

    def sessions(self, book_id: str, channel: str) -> list[Session]:
        return list(self._sessions.get((book_id, channel), ()))

    def publish(self, book_id: str, channel: str, frame: bytes) -> None:
        for session in self.sessions(book_id, channel):
            session.enqueue(frame)

    def publish_orders(self, pushes: Iterable[Push]) -> None:
        """Send each order change as an `order_response` to its book's subscribers (none under `drop_pushes`)."""
        if self._state.faults.drop_pushes:
            return
        for push in pushes:
            if self._sessions.get((push.book_id, ORDER_CHANNEL)):
                self.publish(push.book_id, ORDER_CHANNEL, orjson.dumps({"order_response": push.order}))
