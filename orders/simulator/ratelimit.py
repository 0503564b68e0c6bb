"""Per-user rate limiting as a token bucket.

QFEX documents 12 000 weight units per 60 s per user, over all of that user's connections, smoothed with an
EMA (docs/qfex-protocol.md §1.5). The simulator uses a token bucket instead, which is simpler to reason about in tests
and gives the same long-run budget: the bucket holds `capacity` units, refills continuously at
`capacity / window` units per second, and a message is allowed only when its whole weight is available.
A refused message consumes nothing; its `retry_after` is the time until enough units have refilled.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# Weights from the current rate-limit page (docs/qfex-protocol.md §1.5); anything unlisted weighs DEFAULT_WEIGHT.
DEFAULT_WEIGHTS: dict[str, float] = {
    "auth": 0.0,
    "get_user_orders": 5.0,
    "subscribe": 0.1,
    "unsubscribe": 0.1,
    "add_order": 1.0,
    "cancel_order": 1.0,
    "modify_order": 1.0,
    "get_order": 2.0,
    "cancel_all_orders": 2.0,
    "get_user_trades": 0.5,
    "get_user_leverage": 0.1,
    "get_available_leverage_levels": 0.1,
    "set_user_leverage": 0.1,
    "cancel_stop_order": 1.0,
    "modify_stop_order": 1.0,
    "cancel_on_disconnect": 0.1,
}
DEFAULT_WEIGHT = 1.0


class TokenBucket:
    def __init__(self, capacity: float, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.window = window
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()

    @property
    def rate(self) -> float:
        return self.capacity / self.window

    def try_consume(self, cost: float) -> float | None:
        """Take `cost` units: None when allowed, else the seconds to wait (rounded up to the millisecond)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if cost <= self._tokens:
            self._tokens -= cost
            return None
        if cost > self.capacity:
            return float(self.window)  # can never fit; tell the client to wait a whole window
        return max(0.001, math.ceil((cost - self._tokens) / self.rate * 1000) / 1000)


class RateLimiter:
    """One token bucket per user id; a bucket is refilled from scratch when the configured budget changes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, user_id: str, cost: float, capacity: float, window: float) -> float | None:
        if cost <= 0:
            return None
        bucket = self._buckets.get(user_id)
        if bucket is None or bucket.capacity != capacity or bucket.window != window:
            bucket = self._buckets[user_id] = TokenBucket(capacity, window, self._clock)
        return bucket.try_consume(cost)

    def reset(self) -> None:
        self._buckets.clear()
