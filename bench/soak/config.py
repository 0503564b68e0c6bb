"""The soak's settings: how long each fault lasts, the stack's size and feed timings, and the pass bar's margins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orders.live.feed import FeedConfig

ALL_FAULTS = ("F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12")
EXCHANGE_WEIGHT_PER_SECOND = 12_000 / 60
PAGE_WEIGHT = 5.0
MIB = 1024
DRIFT_MIN_SECONDS = 60.0


@dataclass
class SoakConfig:
    seconds_per_fault: float = 600.0
    faults: tuple[str, ...] = ALL_FAULTS
    accounts: int = 3
    sockets_per_account: int = 5
    orders_per_account: int = 60
    pace: float = 2.0  # simulator activity events per second, over all books, while a fault is on
    interval: float = 2.0  # QFEXDASH_RECONCILE_SECONDS
    timeout: float = 1.0  # QFEX_TIMEOUT_SECONDS
    backoff_base: float = 0.2
    backoff_cap: float = 2.0
    coalesce: float = 0.5
    budget_share: float = 0.10
    channel_capacity: int = 10  # small, so a page that falls behind loses group messages (F9)
    restart_every: float = 30.0  # F10: one Daphne restart per this many seconds of the fault (at least one)
    rss_margin_mib: float = 64.0  # bounded: never more than this above the warmed-up process
    rss_growth_mib: float = 16.0  # no trend: end of a fault at most this above the end of the first one
    thread_margin: int = 8
    drift_mib: float = 8.0  # no drift: RSS growth over the last 3/4 of a fault of 60 s or more
    strict_timing: bool = True
    deadline: float = 60.0  # longest wait for any condition (convergence, stale shown, an effect)
    workdir: Path | None = None
    progress: Callable[[str], None] | None = None

    @property
    def grace(self) -> float:
        """Allowed beyond one interval for convergence: an upstream call that was timing out and a backoff
        that was running when the fault ended, plus 1 s of measurement (polled every 0.1 s)."""
        return self.timeout + self.backoff_cap + 1.0

    def server_env(self) -> dict[str, str]:
        return {
            "QFEXDASH_RECONCILE_SECONDS": f"{self.interval:g}",
            "QFEX_TIMEOUT_SECONDS": f"{self.timeout:g}",
            "QFEXDASH_BACKOFF_BASE_SECONDS": f"{self.backoff_base:g}",
            "QFEXDASH_BACKOFF_CAP_SECONDS": f"{self.backoff_cap:g}",
            "QFEXDASH_REFRESH_COALESCE_SECONDS": f"{self.coalesce:g}",
            "QFEXDASH_RATE_BUDGET_SHARE": f"{self.budget_share:g}",
            "CHANNEL_LAYER_CAPACITY": str(self.channel_capacity),
            "LOG_LEVEL": "WARNING",
        }

    def budget_pages(self, seconds: float, processes: int = 1) -> float:
        """Most get_user_orders pages the feed's budget allows one key in ``seconds`` (one burst per process)."""
        config = FeedConfig(rate_budget_share=self.budget_share)
        return (processes * config.budget_burst + config.weight_per_second * seconds) / PAGE_WEIGHT
