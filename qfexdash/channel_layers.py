"""The in-process channel layer used when no Redis is configured (one server process, the demo, tests).

Channels' ``InMemoryChannelLayer`` sweeps every channel and every group membership for expired
entries on *each* ``receive`` and ``group_send``. With a thousand open sockets, one update to all of
them is a thousand receives, each walking a thousand channels: the fan-out grows with the square of
the number of sockets (design.md P4). Expiry is housekeeping — a message older than ``expiry`` seconds
or a membership older than ``group_expiry`` — so sweeping at most every ``sweep_seconds`` loses
nothing a page would notice: an expired entry lingers for at most that long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from channels.layers import InMemoryChannelLayer


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    """``InMemoryChannelLayer`` whose expiry sweep runs at most once every ``sweep_seconds``."""

    def __init__(self, sweep_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if sweep_seconds < 0:
            raise ValueError("sweep_seconds must not be negative")
        self.sweep_seconds = sweep_seconds
        self.sweeps = 0  # how many sweeps ran (for tests and benchmarks)
        self._clock = clock
        self._next_sweep = float("-inf")

    def _clean_expired(self) -> None:
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_seconds
        self.sweeps += 1
        super()._clean_expired()
