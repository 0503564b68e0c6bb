"""Pacing upstream work: the QFEX weight budget of one key at one endpoint, and reconnect backoff.

A budget is keyed by (endpoint, public key), never by the public key alone: an account whose
endpoint is hostile (or merely a different exchange instance) must not be able to slow or freeze
another account that shares the key but talks to the real QFEX (S23).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit


def budget_key(url: str, public_key: str) -> str:
    """The name of the budget an account spends: its endpoint (scheme, host, port, path) and its key, hashed."""
    parts = urlsplit(url)
    endpoint = urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", "", ""))
    return hashlib.sha256(f"{endpoint}\n{public_key}".encode()).hexdigest()[:32]


class RateBudget:
    """A token bucket of QFEX weight for one API key (QFEX limits per user, across connections).

    Refills at ``per_second`` up to ``burst``. A fetch may start once the bucket holds its expected
    weight (or is full, for fetches bigger than the burst); its real weight is then charged, which
    may leave the bucket in debt that later fetches wait out. Work beyond the budget is deferred,
    never dropped. ``block_for`` honours QFEX's own ``RateLimited`` hint, for at most ``max_block``
    seconds: an exchange's hint is capped, so no endpoint can freeze a feed for hours.
    """

    def __init__(
        self,
        per_second: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_block: float = float("inf"),
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.max_block = max_block
        self._clock = clock
        self._tokens = burst
        self._updated = clock()
        self._blocked_until = 0.0
        self._spent: deque[tuple[float, float]] = deque()  # (when, weight) of the last minute's charges

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
        now = self._refill()
        self._tokens -= weight
        self._spent.append((now, weight))

    def spent_last_minute(self) -> float:
        """Weight charged in the last 60 s (what the metrics report as a share of QFEX's budget)."""
        horizon = self._clock() - 60.0
        while self._spent and self._spent[0][0] <= horizon:
            self._spent.popleft()
        return max(0.0, sum(weight for _, weight in self._spent))

    def block_for(self, seconds: float) -> None:
        """Start nothing for ``seconds`` (QFEX said so, capped at ``max_block``); the bucket empties and refills."""
        seconds = min(max(seconds, 0.0), self.max_block)
        now = self._refill()
        self._blocked_until = max(self._blocked_until, now + seconds)
        self._tokens = min(self._tokens, 0.0)


def full_jitter_backoff(attempt: int, base: float, cap: float) -> float:
    """Delay before retry number ``attempt`` (1-based): uniform in [0, min(cap, base x 2^(attempt-1))]."""
    ceiling = min(cap, base * (2 ** min(max(attempt - 1, 0), 30)))
    return random.uniform(0.0, ceiling)  # noqa: S311  (jitter spreads retries; not a security use)
