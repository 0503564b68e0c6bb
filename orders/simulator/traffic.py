"""What the simulated exchange received: request counts, the forbidden messages, a log of every message and
the number of upgrade requests, for tests and benchmarks to check what a client sent.

Forbidden entries are recorded as received but with credential-like fields redacted (`frames.scrub`) by
whoever records them; nothing here sees a secret.
"""

from __future__ import annotations

import threading
from collections import Counter, deque

RECEIVED_LOG_SIZE = 100_000


class Traffic:
    """Counters and logs of received traffic, guarded by the exchange's lock (any thread may call)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._requests: Counter[str] = Counter()
        self._forbidden: list[dict[str, object]] = []
        self._received: deque[tuple[str | None, str]] = deque(maxlen=RECEIVED_LOG_SIZE)
        self._handshakes = 0

    def note(self, public_key: str | None, msg_type: str) -> None:
        """Count one received message of `msg_type`, sent by (or on the connection of) `public_key`."""
        with self._lock:
            self._requests[msg_type] += 1
            self._received.append((public_key, msg_type))

    def note_forbidden(self, entry: dict[str, object]) -> None:
        with self._lock:
            self._forbidden.append(entry)

    def note_handshake(self) -> None:
        with self._lock:
            self._handshakes += 1

    def request_count(self, msg_type: str) -> int:
        with self._lock:
            return self._requests[msg_type]

    def forbidden(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self._forbidden)

    def received(self) -> list[tuple[str | None, str]]:
        with self._lock:
            return list(self._received)

    @property
    def handshakes(self) -> int:
        with self._lock:
            return self._handshakes

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._forbidden.clear()
            self._received.clear()
            self._handshakes = 0
