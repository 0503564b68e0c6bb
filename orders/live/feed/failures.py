"""What the upstream worker does after a failure: how long to wait, and what the page is told.

- A failure a retry can fix → ``stale`` with the cause, retried after a capped exponential backoff with
  full jitter; after ``error_after_failures`` failures in a row the state is ``error`` (a person should
  look) and the retries go on.
- ``RateLimited`` → QFEX's retry hint, at least a growing floor (a fetch needs several pages), at most
  the backoff cap (an exchange's hint never freezes a feed for longer: S23); the key's budget is
  blocked for as long.
- A failure no retry can fix (:func:`~orders.live.feed.upstream.describe_failure` says ``fatal``) → ``error``
  with what to do, retried only every ``auth_retry_seconds`` or when the account's settings change.
- QFEX closing a session right after the login twice in a row counts as a refused key.

Statuses carry no countdown in their words: ``next_retry_at`` is the one the page shows, ``since``
when the state began, ``failures`` how many tries failed in a row.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from orders.live import protocol as lp
from orders.qfex import RateLimited

from . import upstream
from .budget import RateBudget, full_jitter_backoff
from .config import FeedConfig

_QUICK_CLOSES_MEAN_REFUSED = 2
_STILL_FAILING = "The dashboard keeps trying by itself. If this lasts, check QFEX's status and this server's network."


@dataclass(frozen=True)
class Verdict:
    status: lp.Status
    delay: float  # seconds until the next try
    fatal: bool


class Failures:
    def __init__(self, config: FeedConfig) -> None:
        self.config = config
        self.attempt = 0  # failed tries in a row
        self.fatal = False  # the last failure needs a person
        self.quick_closes = 0  # sessions QFEX closed right after the login, in a row

    def succeeded(self) -> None:
        self.attempt, self.quick_closes = 0, 0

    def reset(self) -> None:
        """The account's settings changed: start afresh."""
        self.attempt, self.quick_closes, self.fatal = 0, 0, False

    def quick_close(self, exc: BaseException) -> BaseException:
        """QFEX closed a session right after the login: the second time in a row, that means the key."""
        self.quick_closes += 1
        if self.quick_closes >= _QUICK_CLOSES_MEAN_REFUSED:
            return upstream.SessionRefused("QFEX closed the session right after the login, twice")
        return exc

    def fail(self, exc: BaseException, current: lp.Status, data_as_of: float | None, budget: RateBudget) -> Verdict:
        """Count a failure; the status to show and the pause before the next try."""
        trouble = upstream.describe_failure(exc, self.config.timeout_seconds)
        wall = time.time()
        if trouble.fatal:
            self.fatal = True
            delay = self.config.auth_retry_seconds
            status = status_for(current, lp.FAILED, trouble.reason, data_as_of, wall + delay, trouble.action)
            return Verdict(status, delay, True)
        self.fatal = False  # e.g. the retry of a rejected key met a network problem instead
        self.attempt += 1
        delay = self._backoff(exc, budget)
        failing = self.attempt >= self.config.error_after_failures
        state, action = (lp.FAILED, _STILL_FAILING) if failing else (lp.STALE, "")
        status = status_for(current, state, trouble.reason, data_as_of, wall + delay, action, self.attempt)
        return Verdict(status, delay, False)

    def _backoff(self, exc: BaseException, budget: RateBudget) -> float:
        cap = self.config.backoff_cap_seconds
        delay = full_jitter_backoff(self.attempt, self.config.backoff_base_seconds, cap)
        if isinstance(exc, RateLimited):
            # QFEX's hint is when one more request fits, but a fetch needs several pages: waiting only the
            # hint refused page 2 forever. Consecutive refusals wait at least an exponentially growing pause.
            floor = min(cap, self.config.backoff_base_seconds * 2 ** (self.attempt - 1))
            hint = exc.retry_after if exc.retry_after is not None and math.isfinite(exc.retry_after) else delay
            delay = min(max(hint, floor), cap)
            budget.block_for(delay)
        return delay


def status_for(
    current: lp.Status,
    state: str,
    reason: str,
    as_of: float | None,
    next_retry_at: float | None = None,
    action: str = "",
    failures: int = 0,
) -> lp.Status:
    """A status in ``state``; ``since`` carries over from ``current`` while the state stays the same."""
    since = current.since if current.state == state and current.since is not None else time.time()
    return lp.Status(state, reason, as_of, next_retry_at, since, action, failures)
