"""One thread reads every idle upstream session: no pool thread ever waits for pushes.

An upstream session is idle almost all the time: QFEX pushes a few ``order_response`` frames a second
at most, and the feed's own requests (the reconcile fetches) are seconds apart. Parking a pool thread
in a blocking read per watched account made latency grow with the number of accounts (12 accounts on
4 threads: a refresh waited 1.2 s for a thread). Instead, :class:`PushReader` keeps every session's
socket in one ``selectors`` selector, in one thread, and when a socket is readable reads the frames
already waiting (``QfexSession.read_available``): the session hands each push to its ``on_push``
callback, which puts it on the event loop. websocket-client stays the upstream connection; only who
reads it changes (docs/performance.md says why it was kept).

A session is used by one thread at a time. Each registered session has a :class:`Registration`
whose ``lock`` the reader takes (without waiting) before reading; a pool job that uses the session
(a fetch, closing it) holds the same lock for its whole duration, and calls :meth:`Registration.resume`
afterwards. While the lock is busy the reader stops watching that socket, so it never spins; ``resume``
puts it back and reads whatever arrived meanwhile (TLS may hold decrypted bytes the selector cannot see).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from orders.qfex import QfexSession

logger = logging.getLogger("orders.live.feed")

_REMOVE_WAIT_SECONDS = 5.0


class Registration:
    """One session watched by the reader. ``on_end`` is called from the reader thread when the session
    ends (QFEX closed it or sent garbage) with the exception that said so."""

    def __init__(self, reader: PushReader, session: QfexSession, on_end: Callable[[BaseException], None]) -> None:
        self.reader = reader
        self.session = session
        self.on_end = on_end
        self.lock = threading.Lock()
        self.fd = session.fileno()
        self.watching = False  # in the selector (reader thread only)
        self.removed = False

    def resume(self) -> None:
        """A pool job is done with the session: watch it again and read what arrived meanwhile."""
        self.reader._command("resume", self)

    def remove(self) -> None:
        """Stop watching the session; returns once the reader no longer touches it (call before closing it)."""
        if self.removed:
            return
        done = threading.Event()
        self.reader._command("remove", self, done)
        if not done.wait(_REMOVE_WAIT_SECONDS):
            logger.warning("push reader: did not confirm it stopped watching a session")
        self.removed = True


class PushReader:
    """The process's reader of idle upstream sessions (a daemon thread, started on first use)."""

    def __init__(self, name: str = "qfex-feed-reader") -> None:
        self._name = name
        self._selector = selectors.DefaultSelector()
        self._wake_receive, self._wake_send = socket.socketpair()
        self._wake_receive.setblocking(False)
        self._selector.register(self._wake_receive, selectors.EVENT_READ, None)
        self._commands: deque[tuple[str, Registration | None, threading.Event | None]] = deque()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def add(self, session: QfexSession, on_end: Callable[[BaseException], None]) -> Registration:
        """Watch an open session. Its pushes go to ``session.on_push``; set that first."""
        registration = Registration(self, session, on_end)
        self._command("add", registration)
        return registration

    def close(self) -> None:
        """Stop the thread (sessions are not closed: their owners do that)."""
        if self._closed:
            return
        self._closed = True
        self._command("stop", None)
        thread = self._thread
        if thread is not None:
            thread.join(_REMOVE_WAIT_SECONDS)
        self._selector.close()
        self._wake_receive.close()
        self._wake_send.close()

    # --- the thread ---------------------------------------------------------------------------------

    def _command(self, kind: str, registration: Registration | None, done: threading.Event | None = None) -> None:
        if self._closed and kind != "stop":
            if done is not None:
                done.set()
            return
        self._ensure_thread()
        self._commands.append((kind, registration, done))
        with contextlib.suppress(OSError):  # a full wake-up pipe means the thread is awake anyway
            self._wake_send.send(b"\0")

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                events = self._selector.select()
            except (OSError, ValueError):  # the selector was closed under us
                return
            for key, _mask in events:
                if key.data is None:
                    self._drain_wakeups()
                else:
                    self._read(key.data)
            if not self._run_commands():
                return

    def _run_commands(self) -> bool:
        while self._commands:
            kind, registration, done = self._commands.popleft()
            if kind == "stop":
                return False
            assert registration is not None
            if kind in ("add", "resume") and not registration.removed:
                self._read(registration, watch=True)  # and what arrived while nobody watched
            elif kind == "remove":
                registration.removed = True
                self._unwatch(registration)
            if done is not None:
                done.set()
        return True

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_receive.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _watch(self, registration: Registration) -> None:
        if not registration.watching:
            try:
                self._selector.register(registration.fd, selectors.EVENT_READ, registration)
                registration.watching = True
            except (KeyError, ValueError, OSError):
                logger.warning("push reader: could not watch a session's socket", exc_info=True)

    def _unwatch(self, registration: Registration) -> None:
        if registration.watching:
            registration.watching = False
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(registration.fd)

    def _read(self, registration: Registration, *, watch: bool = False) -> None:
        if registration.removed:
            return
        if not registration.lock.acquire(blocking=False):
            self._unwatch(registration)  # a pool job uses the session; it resumes us when done
            return
        try:
            if registration.session.closed:
                return  # a job closed it (its owner is told by that job's error, and removes it)
            if watch:
                self._watch(registration)
            registration.session.read_available()
        except Exception as exc:  # the session ended (ConnectionLost, ProtocolError) or broke
            self._unwatch(registration)
            registration.removed = True
            _call(registration.on_end, exc)
        finally:
            registration.lock.release()


def _call(callback: Callable[[BaseException], Any], exc: BaseException) -> None:
    try:
        callback(exc)
    except Exception:
        logger.exception("push reader: a session-end callback failed")
