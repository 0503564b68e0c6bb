"""Limits on what one browser may cost the server (S15, S29): frames, sockets per user, resyncs, unread output.

- :class:`FrameGate` — the frames a browser may send: at most ``QFEXDASH_WS_RATE`` per 10 s (more is
  refused with ``rate_limited``; as many again refused in a window is abuse: close 4008), at most
  ``QFEXDASH_WS_MAX_FRAME_BYTES`` each (close 4009), text only.

- :class:`SocketCounter` — open live sockets per user in this process; the next one over
  ``QFEXDASH_WS_MAX_SOCKETS_PER_USER`` is refused with close code 4029. Per process: with several
  server processes behind a proxy the bound is per process, which is what protects each one's memory.
- :class:`ResyncLimiter` — a ``resync`` is answered at most once per account per socket every
  ``RESYNC_SECONDS`` (a later one is answered when the window ends, not dropped), and not at all when
  the socket already holds the account's current state: a page that never reads cannot make the
  server re-send whole snapshots in a loop.
- :func:`transport_backlog` — how many bytes Daphne still holds for a socket because its browser is
  not reading them; past ``QFEXDASH_WS_MAX_BACKLOG_BYTES`` the consumer closes the socket (4013)
  instead of buffering without limit. (ASGI has no back-pressure signal; Daphne's Twisted transport
  is asked directly, through the server's ``send`` that :class:`BacklogProbeMiddleware` keeps in the
  scope; under any other server the backlog is simply not measured.)
"""

from __future__ import annotations

import functools
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orders.live import protocol as lp

RESYNC_SECONDS = 5.0
RATE_WINDOW_SECONDS = 10.0


class FrameLimiter:
    """At most ``limit`` frames per ``window`` seconds; more rejected frames than that in a window is abuse."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._accepted: deque[float] = deque()
        self._rejected: deque[float] = deque()

    def check(self, now: float) -> str:
        """``"ok"``, ``"limited"`` (drop this frame) or ``"abuse"`` (close the socket)."""
        for times in (self._accepted, self._rejected):
            while times and times[0] <= now - self.window:
                times.popleft()
        if len(self._accepted) < self.limit:
            self._accepted.append(now)
            return "ok"
        self._rejected.append(now)
        return "abuse" if len(self._rejected) > self.limit else "limited"


@dataclass(frozen=True)
class Refusal:
    """Why a browser frame is not handled: the error to send, and the close to follow (None: stay open)."""

    code: str
    message: str
    close_code: int | None = None


class FrameGate:
    """What one socket lets through, frame by frame, before the frame is parsed."""

    def __init__(self, max_frame_bytes: int, rate: int) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.limiter = FrameLimiter(rate, RATE_WINDOW_SECONDS)

    def refusal(self, text: str | None, data: bytes | None, now: float) -> Refusal | None:
        verdict = self.limiter.check(now)
        if verdict == "abuse":
            return Refusal(lp.RATE_LIMITED, "Too many messages; closing this connection.", lp.CLOSE_POLICY)
        if verdict == "limited":
            return Refusal(lp.RATE_LIMITED, "Too many messages; this one was ignored.")
        size = len(text) if text is not None else len(data or b"")
        if size > self.max_frame_bytes or (text is not None and len(text.encode()) > self.max_frame_bytes):
            return Refusal(lp.TOO_LARGE, f"Messages must be at most {self.max_frame_bytes} bytes.", lp.CLOSE_TOO_LARGE)
        if text is None:
            return Refusal(lp.BAD_MESSAGE, "Binary messages are not understood.")
        return None


class SocketCounter:
    """Open sockets per user id, in this process (the consumer runs on one event loop)."""

    def __init__(self) -> None:
        self._open: Counter[Any] = Counter()

    def try_open(self, user_id: Any, limit: int) -> bool:
        if self._open[user_id] >= limit:
            return False
        self._open[user_id] += 1
        return True

    def close(self, user_id: Any) -> None:
        self._open[user_id] -= 1
        if self._open[user_id] <= 0:
            del self._open[user_id]

    def count(self, user_id: Any) -> int:
        return self._open[user_id]


class ResyncLimiter:
    """When a socket may next be sent a snapshot of an account it asked for."""

    def __init__(self, seconds: float = RESYNC_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last: dict[int, float] = {}

    def sent(self, account: int) -> None:
        """A snapshot of ``account`` went out (a resync's, or one the server sent by itself)."""
        self._last[account] = self._clock()

    def wait(self, account: int) -> float:
        """Seconds until a resync of ``account`` may be answered (0: now)."""
        last = self._last.get(account)
        return 0.0 if last is None else max(0.0, last + self.seconds - self._clock())


BACKLOG_SCOPE_KEY = "qfexdash.backlog"


class BacklogProbeMiddleware:
    """Outermost WebSocket middleware: keeps the server's own ``send`` reachable from the consumer as
    ``scope["qfexdash.backlog"]()`` (inner middleware, e.g. Channels' sessions, wrap ``send``)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        probe = functools.partial(transport_backlog, send)
        return await self.inner(dict(scope, **{BACKLOG_SCOPE_KEY: probe}), receive, send)


def transport_backlog(send: Any) -> int | None:
    """Bytes written to the socket's transport and not yet taken by the peer; None when unknown.

    Daphne hands a consumer ``functools.partial(server.handle_reply, protocol)`` as its ``send``; the
    protocol's Twisted transport holds the bytes the browser has not read yet.
    """
    if not isinstance(send, functools.partial) or not send.args:
        return None
    transport = getattr(send.args[0], "transport", None)
    data = getattr(transport, "dataBuffer", None)
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    return len(data) - int(getattr(transport, "offset", 0)) + int(getattr(transport, "_tempDataLen", 0))
