"""The live WebSocket consumer: ``/ws/accounts/<id>/`` and ``/ws/accounts/all/``.

Message shapes are documented in :mod:`orders.live.protocol`. The consumer is thin: it authenticates
the socket, checks access through :mod:`orders.accounts.access`, joins each account's group, sends the cached
snapshot (its parts, back to back), asks the feed for a refresh, and relays the feed's pre-encoded messages.

Refusals (the origin was already checked by :mod:`orders.live.routing`): the socket is accepted and closed
at once with 4001 (no valid session) or 4004 (no such account — identical for another team's
account), before anything reaches the feed, so the page can tell "log in again" from "not found".

While connected, access is re-checked every ``QFEXDASH_ACCESS_RECHECK_SECONDS`` (:mod:`orders.live.access`):
a logout, a password change (session hash), a deactivation or an expired session closes with 4001;
losing access to an account closes with 4003; a re-check that fails unexpectedly closes with 4001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from orders.live import metrics
from orders.live import protocol as lp
from orders.live.access import OK, AccessWatch, recheck_seconds
from orders.live.feed import MESSAGE_TYPE, current_feed, get_feed, group_name
from orders.live.limits import BACKLOG_SCOPE_KEY, FrameGate, ResyncLimiter, SocketCounter

logger = logging.getLogger(__name__)


# Channel-layer group memberships expire (settings.CHANNEL_LAYER_GROUP_EXPIRY, one hour): a socket
# renews its own this often, so a page left open for days keeps receiving, while the memberships of a
# process that died vanish within the hour instead of a day.
GROUP_REJOIN_SECONDS = 600.0

_open_sockets = SocketCounter()

# --- the consumer ---------------------------------------------------------------------------------


class AccountStreamConsumer(AsyncWebsocketConsumer):
    """One browser socket watching one account (``account_id`` in the URL) or all visible accounts."""

    async def connect(self) -> None:
        self.sent: dict[int, int] = {}  # account → seq of the last snapshot/diff sent to this socket
        # account → (seq, stamp) of the newest status this socket has (a snapshot's or a status message's)
        self.status_sent: dict[int, tuple[int, float]] = {}
        # Accounts whose messages to this socket skipped a seq since its last snapshot (a full inbox
        # dropped some): the page will ask for a snapshot, and must get one.
        self.missing: set[int] = set()
        self.joined: set[int] = set()
        self.closing = False
        # Held while the parts of a snapshot go out, so no diff or status of the account (relayed by
        # feed_message) and no other snapshot (the re-check task joins accounts) lands between them.
        self.send_lock = asyncio.Lock()
        self.recheck_task: asyncio.Task[None] | None = None
        self.feed_tasks: set[asyncio.Task[None]] = set()
        self.resyncs = ResyncLimiter()
        self.resyncs_due: set[int] = set()  # accounts whose resync is answered when its window ends
        self.counted: Any = None  # the user id this socket counts against, once accepted
        self.max_backlog = settings.QFEXDASH_WS_MAX_BACKLOG_BYTES
        self.gate = FrameGate(settings.QFEXDASH_WS_MAX_FRAME_BYTES, settings.QFEXDASH_WS_RATE)
        route = self.scope.get("url_route", {}).get("kwargs", {})
        self.single: int | None = route.get("account_id")

        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self._refuse(lp.CLOSE_NOT_AUTHENTICATED)
            return
        self.user = user
        self.access = AccessWatch(user, self.scope["session"], self.single)
        verdict = await self.access.verdict(fresh=True)
        if verdict.outcome != OK:
            await self._refuse(lp.CLOSE_NOT_AUTHENTICATED)
            return
        if self.single is not None and self.single not in verdict.visible:
            await self._refuse(lp.CLOSE_NO_SUCH_ACCOUNT)
            return
        if not _open_sockets.try_open(user.pk, settings.QFEXDASH_WS_MAX_SOCKETS_PER_USER):
            await self._refuse(lp.CLOSE_TOO_MANY_SOCKETS)
            return
        self.counted = user.pk
        metrics.socket_opened()
        accounts = sorted(verdict.visible)
        await self.accept()
        feed = get_feed()
        for account in accounts:
            await self._join(account)
        # Data younger than one interval is fresh enough for a newcomer: the viewer count then does
        # not change how often QFEX is asked (P3); the reconcile tick refreshes it soon anyway.
        for account in accounts:
            await feed.refresh(account, max_age=feed.config.reconcile_seconds)
        self.recheck_task = asyncio.get_running_loop().create_task(self._recheck_loop())

    async def _refuse(self, code: int) -> None:
        # Accept-then-close so the browser sees the code; nothing is sent in between.
        self.closing = True
        await self.accept()
        await self.close(code=code)

    async def _join(self, account: int) -> None:
        feed = get_feed()
        await self.channel_layer.group_add(group_name(account), self.channel_name)
        self.joined.add(account)
        await feed.watch(account, self.channel_name, self._from_feed)
        await self._send_snapshot(account)

    async def _send_snapshot(self, account: int, *, only_if_newer: bool = False) -> None:
        async with self.send_lock:
            seq, stamp, texts = await get_feed().snapshot_messages(account)
            if only_if_newer and seq <= self.sent.get(account, -1):
                return  # this socket already has these rows (statuses do not count: they carry none)
            self.sent[account] = seq
            self.status_sent[account] = (seq, stamp)
            self.missing.discard(account)
            self.resyncs.sent(account)
            for text in texts:
                await self._send_text(text)

    async def _send_text(self, text: str) -> None:
        """Send one frame; a socket that closed meanwhile is not an error (its disconnect is on its way)."""
        if self.closing:
            return
        probe = self.scope.get(BACKLOG_SCOPE_KEY)
        backlog = probe() if probe is not None else None
        if backlog is not None and backlog > self.max_backlog:
            # The browser stopped reading: close rather than buffer without limit (it reconnects when it can).
            logger.warning("closing a live socket whose browser stopped reading (%d bytes unread)", backlog)
            await self._close_with(lp.CLOSE_TOO_SLOW)
            return
        try:
            await self.send(text_data=text)
        except Exception as exc:
            if not _is_closed_socket_error(exc):
                raise
            self.closing = True

    async def _rejoin_groups(self) -> None:
        for account in sorted(self.joined):
            try:
                await self.channel_layer.group_add(group_name(account), self.channel_name)
            except Exception:
                logger.warning("could not renew a group membership; will retry", exc_info=True)
                return

    async def _leave_all(self) -> None:
        joined, self.joined = self.joined, set()
        self.sent.clear()
        self.status_sent.clear()
        feed = current_feed()  # a feed already shut down has nothing to forget
        for account in joined:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(group_name(account), self.channel_name)
            if feed is not None:
                await feed.unwatch(account, self.channel_name)

    async def _close_with(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        await self._leave_all()
        await self.close(code=code)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._uncount()  # also when the server drops the instance without a disconnect

    def _uncount(self) -> None:
        if getattr(self, "counted", None) is not None:
            _open_sockets.close(self.counted)
            metrics.socket_closed()
            self.counted = None

    async def disconnect(self, code: int) -> None:
        self.closing = True
        self._uncount()
        task = getattr(self, "recheck_task", None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for feed_task in list(getattr(self, "feed_tasks", ())):
            feed_task.cancel()
        if getattr(self, "joined", None):
            await self._leave_all()

    # --- browser → server -------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        refusal = self.gate.refusal(text_data, bytes_data, time.monotonic())
        if refusal is not None:
            await self._error(refusal.code, refusal.message)
            if refusal.close_code is not None:
                await self._close_with(refusal.close_code)
            return
        assert text_data is not None  # binary frames are refused by the gate
        try:
            message = lp.parse_client_message(text_data)
        except lp.BadClientMessage as exc:
            await self._error(exc.code, exc.message)
            return
        accounts = self._targets(message.account)
        if accounts is None:
            await self._error(lp.BAD_MESSAGE, "That account is not on this stream.", message.account)
            return
        if message.type == lp.REFRESH:
            feed = get_feed()
            for account in accounts:
                await feed.refresh(account)
        else:
            for account in accounts:
                self._resync(account)

    def _resync(self, account: int) -> None:
        """Answer a resync: at most once per account every few seconds, never when the socket already
        holds the account's current state (S29)."""
        if account in self.resyncs_due:
            return  # already answered when its window ends
        feed = current_feed()
        if account not in self.missing and feed is not None and self.sent.get(account) == feed.position(account)[0]:
            return  # it has every row already: nothing a snapshot would add
        self.resyncs_due.add(account)
        self._spawn(self._answer_resync(account, self.resyncs.wait(account)))

    async def _answer_resync(self, account: int, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self.resyncs_due.discard(account)
        if account in self.joined and not self.closing:
            await self._send_snapshot(account)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.feed_tasks.add(task)
        task.add_done_callback(self.feed_tasks.discard)

    def _targets(self, account: int | None) -> list[int] | None:
        if account is None:
            return sorted(self.joined)
        return [account] if account in self.joined else None

    async def _error(self, code: str, message: str, account: int | None = None) -> None:
        if self.single is not None:
            account = self.single
        await self._send_text(lp.encode(lp.error_message(account, code, message)))

    # --- feed → browser ---------------------------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, minus its database-thread hop for the feed's diffs and statuses.

        Channels runs ``close_old_connections`` in its database thread before every handler. For
        ``feed.message`` — one per update per socket, a thousand at once on a busy process — that is a
        thread round trip for a handler that never touches the database (design.md P4).
        """
        if message.get("type") == MESSAGE_TYPE:
            await self.feed_message(message)
            return
        await super().dispatch(message)

    def _from_feed(self, message: dict[str, Any]) -> None:
        """The feed's direct word to this socket (see ``Feed.watch``): handled like a channel message."""
        if not self.closing:
            self._spawn(self.dispatch(message))

    async def feed_resnapshot(self, event: dict[str, Any]) -> None:
        """The feed's word that this process's copy of the account changed more than diffs carry (a
        follower's mirror was just filled, or a change too big for diffs): a socket whose snapshot is
        older gets a new one; the others already have it."""
        account = event["account"]
        if account in self.joined and not self.closing:
            await self._send_snapshot(account, only_if_newer=True)

    async def feed_message(self, event: dict[str, Any]) -> None:
        account = event["account"]
        async with self.send_lock:
            last = self.sent.get(account)
            if last is None or self.closing:
                return
            if event["kind"] == lp.DIFF:
                if event["seq"] <= last:
                    return  # already part of the snapshot this socket got
                if event["seq"] != last + 1:
                    self.missing.add(account)
                self.sent[account] = event["seq"]
            else:
                if event["seq"] > last:
                    self.missing.add(account)  # a status ahead of the rows this socket has
                key = (event["seq"], float(event.get("stamp") or 0.0))
                if key <= self.status_sent.get(account, (-1, 0.0)):
                    return  # older than the state this socket already shows (e.g. queued before its snapshot)
                self.status_sent[account] = key
            await self._send_text(event["text"])

    # --- access re-check --------------------------------------------------------------------------

    async def _recheck_loop(self) -> None:
        """Re-check access every interval. Fails closed: an error it cannot explain closes the socket
        (4001, so the page checks whether it is still signed in) rather than leaving it unchecked."""
        try:
            await self._recheck_forever()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("access re-check failed; closing the socket")
            await self._close_with(lp.CLOSE_NOT_AUTHENTICATED)

    async def _recheck_forever(self) -> None:
        interval = recheck_seconds()
        # Spread the re-checks of sockets that connected together.
        await asyncio.sleep(interval * random.uniform(0.5, 1.0))  # noqa: S311  (load spreading only)
        rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS
        while not self.closing:
            if time.monotonic() >= rejoin_at:
                rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS
                await self._rejoin_groups()
            verdict = await self.access.verdict()
            if verdict.outcome != OK:
                await self._close_with(lp.CLOSE_NOT_AUTHENTICATED)
                return
            if self.joined - verdict.visible:
                await self._close_with(lp.CLOSE_FORBIDDEN)
                return
            if self.single is None:
                for account in sorted(verdict.visible - self.joined):
                    await self._join(account)  # an account the user was just given
                    await get_feed().refresh(account)
            await asyncio.sleep(interval)


def _is_closed_socket_error(exc: BaseException) -> bool:
    """Daphne (autobahn) raises ``Disconnected`` when a frame is sent on a socket that just closed."""
    return type(exc).__name__ == "Disconnected" or "closed protocol" in str(exc)
