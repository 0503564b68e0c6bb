"""When the owner's next full fetch (the reconcile) may start. Pure: no I/O, an injectable clock.

Pushes keep the rows live; full paged fetches only reconcile, so they are few:

- **wanted** — as soon as allowed: the first fetch of a session (on join, after a reconnect) and a
  viewer's Refresh;
- **prompt** — a push the feed could not place asks for a reconcile ``prompt_reconcile_seconds`` from
  now; more such pushes meanwhile share it. Prompt and scheduled reconciles are also paced so that
  together they spend at most ``reconcile_budget_fraction`` of the rate budget (a 10 000-order book
  takes ten pages: its reconciles are spaced further apart than a small book's);
- **scheduled** — one reconcile interval (:meth:`FeedConfig.reconcile_interval`) after the last fetch,
  stretched by a random 0..``reconcile_jitter`` fraction drawn at each fetch, so feeds that started
  together (every account of one page) do not keep reading QFEX in the same instant.

Every fetch starts no sooner than ``refresh_coalesce_seconds`` after the previous one and only when
the key's budget holds its expected weight (the pages of the last fetch).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Protocol

from .config import GET_USER_ORDERS_WEIGHT, FeedConfig


class Budget(Protocol):
    def wait_time(self, weight: float) -> float: ...


class FetchSchedule:
    def __init__(
        self,
        config: FeedConfig,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self._clock = clock
        self._rng = rng  # uniform in [0, 1): how much of the jitter the next scheduled reconcile waits
        self._stretch = 1.0
        self.wanted = True  # the first fetch happens as soon as a session is open
        self.prompt_at: float | None = None
        self.last_start = -math.inf
        self.last_good_start = -math.inf
        self.pages = 1  # pages of the last complete fetch: what the next one is expected to cost

    def want(self) -> None:
        self.wanted = True

    def want_prompt(self) -> None:
        at = self._clock() + self.config.prompt_reconcile_seconds
        self.prompt_at = at if self.prompt_at is None else min(self.prompt_at, at)

    @property
    def expected_weight(self) -> float:
        return self.pages * GET_USER_ORDERS_WEIGHT

    def due_in(self, budget: Budget) -> float | None:
        """Seconds until the next fetch may start (0: now), or None when none is due yet."""
        now = self._clock()
        reconcile_at = self._scheduled_at()
        if self.prompt_at is not None:
            reconcile_at = min(reconcile_at, max(self.prompt_at, self.last_start + self._paced_gap()))
        if not self.wanted and now < reconcile_at:
            return None
        gate = self.last_start + self.config.refresh_coalesce_seconds - now
        return max(gate, budget.wait_time(self.expected_weight), 0.0)

    def next_due(self) -> float:
        """Seconds until the next reconcile falls due by itself (prompt or scheduled)."""
        now = self._clock()
        at = self._scheduled_at()
        if self.prompt_at is not None:
            at = min(at, max(self.prompt_at, self.last_start + self._paced_gap()))
        return max(at - now, 0.0)

    def _scheduled_at(self) -> float:
        return self.last_start + self.config.reconcile_interval(self.pages) * self._stretch

    def _paced_gap(self) -> float:
        """The shortest gap between reconciles that keeps them within their share of the budget."""
        return self.expected_weight / self.config.reconcile_weight_per_second

    def started(self) -> float:
        """A fetch starts now; returns its start time."""
        start = self._clock()
        self.wanted = False
        self.prompt_at = None
        self.last_start = start
        self._stretch = 1.0 + self.config.reconcile_jitter * self._rng()
        return start

    def succeeded(self, start: float, pages: int) -> None:
        self.last_good_start = start
        self.pages = max(1, pages)

    def answers(self, max_age: float) -> bool:
        """Whether a fetch that started within ``max_age`` seconds answers a refresh asked for now."""
        return self._clock() - self.last_good_start < max_age
