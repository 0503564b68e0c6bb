"""Pacing upstream work: the per-key QFEX weight budget and reconnect backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Callable


class RateBudget:
    """A token bucket of QFEX weight for one API key (QFEX limits per user, across connections).

    Refills at ``per_second`` up to ``burst``. A fetch may start once the bucket holds its expected
    weight (or is full, for fetches bigger than the burst); its real weight is then charged, which
    may leave the bucket in debt that later fetches wait out. Work beyond the budget is deferred,
    never dropped. ``block_for`` honours QFEX's own ``RateLimited`` hint.
    """

    def __init__(self, per_second: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._updated = clock()
        self._blocked_until = 0.0

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now
        return now

    def wait_time(self, weight: float) -> float:
        """Seconds until work of ``weight`` may start (0 when it may start now)."""
        now = self._refill()
        needed = min(weight, self.burst)
        wait = 0.0 if self._tokens >= needed else (needed - self._tokens) / self.per_second
        return max(wait, self._blocked_until - now, 0.0)

    def charge(self, weight: float) -> None:
        self._refill()
        self._tokens -= weight

    def block_for(self, seconds: float) -> None:
        """Start nothing for ``seconds`` (QFEX said so); the bucket empties and refills meanwhile."""
        now = self._refill()
        self._blocked_until = max(self._blocked_until, now + seconds)
        self._tokens = min(self._tokens, 0.0)


def full_jitter_backoff(attempt: int, base: float, cap: float) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [0, min(cap, base x 2^(attempt-1))]."""
    ceiling = min(cap, base * (2 ** min(max(attempt - 1, 0), 30)))
    return random.uniform(0.0, ceiling)  # noqa: S311  (jitter spreads retries; not a security use)
