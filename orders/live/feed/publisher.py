"""How one account's changes and statuses leave this process, in seq order.

Every change (a push's, a reconcile's) becomes diffs with consecutive seqs at once, on the loop, and
every status a status message; both are queued and sent by one task per account, so they reach the
channel layer in the order their seqs were given out. A change too big for a few messages (a 10 000-
order book's first fetch) is not sent as diffs: the seq jumps by one and this process's viewers are
told to take a fresh snapshot (other pages see the jump and resync), so the loop never encodes
megabytes at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from orders.live import protocol as lp

from .state import AccountState, Change

logger = logging.getLogger("orders.live.feed")

RESNAPSHOT = "feed.resnapshot"  # handled by consumers' feed_resnapshot()


class Publisher:
    """``send(payload, share)`` delivers one message (``share``: a status to write to Redis as well);
    ``tell_viewers(message)`` reaches this process's viewers directly."""

    def __init__(
        self,
        state: AccountState,
        rows_per_message: int,
        send: Callable[[dict[str, Any], bool], Awaitable[None]],
        tell_viewers: Callable[[dict[str, Any]], None],
        published: Callable[[float], None] | None = None,
    ) -> None:
        self.state = state
        self.rows_per_message = rows_per_message
        self._send = send
        self._tell_viewers = tell_viewers
        self._published = published  # seconds from a push's arrival to its diff leaving
        self._outbox: asyncio.Queue[tuple[dict[str, Any], bool, float | None] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self, name: str) -> None:
        if self._task is None or self._task.done():
            self._outbox = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def stop(self, timeout: float) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._outbox.put_nowait(None)
            await asyncio.wait([task], timeout=timeout)

    def change(self, change: Change, as_of: float | None, arrived: float | None = None) -> None:
        """Publish a change; ``arrived`` is when the push that made it arrived (``time.monotonic()``)."""
        if not change:
            return
        state = self.state
        if change.rows > 2 * self.rows_per_message:
            state.reserve_seqs(1)  # no diff for this one: pages see the jump and take a snapshot
            self.status(state.status)
            self._tell_viewers({"type": RESNAPSHOT, "account": state.account_id})
            return
        messages = lp.diff_messages(
            state.account_id,
            state.seq + 1,
            as_of,
            upsert_orders=change.upsert_orders,
            upsert_twaps=change.upsert_twaps,
            remove_orders=change.remove_orders,
            remove_twaps=change.remove_twaps,
            closed=change.closed,
            withdraw_closed=change.withdraw_closed,
            rows_per_message=self.rows_per_message,
        )
        first = state.reserve_seqs(len(messages))
        for offset, message in enumerate(messages):
            self._queue(lp.DIFF, first + offset, lp.encode(message), None, arrived)

    def status(self, status: lp.Status) -> None:
        state = self.state
        state.set_status(status)
        if status.as_of is not None and (state.data_as_of is None or status.as_of > state.data_as_of):
            state.data_as_of = status.as_of
        text = lp.encode(lp.status_message(state.account_id, state.seq, status))
        self._queue(lp.STATUS, state.seq, text, state.status_stamp, None)

    def _queue(self, kind: str, seq: int, text: str, stamp: float | None, arrived: float | None) -> None:
        payload: dict[str, Any] = {"account": self.state.account_id, "seq": seq, "kind": kind, "text": text}
        if stamp is not None:
            payload["stamp"] = stamp
        self._outbox.put_nowait((payload, kind == lp.STATUS, arrived))

    async def _run(self) -> None:
        while (item := await self._outbox.get()) is not None:
            payload, share, arrived = item
            try:
                await self._send(payload, share)
            except Exception:  # a broken channel layer must not stop the account; viewers resync later
                logger.warning("account %s: could not publish a message", self.state.account_id, exc_info=True)
                continue
            if arrived is not None and self._published is not None:
                self._published(time.monotonic() - arrived)
