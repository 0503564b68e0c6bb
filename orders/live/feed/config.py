"""The feed's tunables, read once from settings (each with a default that needs no environment)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings

# QFEX's published budget: 12 000 weight per 60 s per user, get_user_orders weighs 5 per page.
EXCHANGE_WEIGHT_PER_MINUTE = 12_000.0
GET_USER_ORDERS_WEIGHT = 5.0
SUBSCRIBE_WEIGHT = 0.1


def group_name(account_id: int) -> str:
    """The channel-layer group every viewer of one account joins."""
    return f"account.{int(account_id)}"


@dataclass(frozen=True)
class FeedConfig:
    # A fetch at least this often while anyone watches; also how long an unwatched session lingers.
    reconcile_seconds: float = 5.0
    # Size of the bounded pool that runs every blocking upstream call and the feed's DB reads.
    threads: int = 16
    # Share of QFEX's per-key weight budget the dashboard may spend (P8).
    rate_budget_share: float = 0.10
    # Fetches start at least this far apart; refreshes inside the window share one fetch.
    refresh_coalesce_seconds: float = 0.5
    # Every upstream socket operation (connect, auth, one reply) must finish within this.
    timeout_seconds: float = 10.0
    # Reconnects: capped exponential backoff with full jitter.
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 30.0
    # After QFEX rejects a key (or the secret cannot be read), retry only after this pause, on an
    # explicit refresh that finds the account's key changed, or when an admin changes the key.
    auth_retry_seconds: float = 300.0
    # After this many failed tries in a row the state is "error" (a person should look), not "stale";
    # the feed keeps retrying at the backoff cap.
    error_after_failures: int = 5
    # Reconciles (full paged fetches the feed starts by itself) spend at most this fraction of the
    # rate budget share, so a big book's reconcile cadence stretches instead of crowding out refreshes.
    reconcile_budget_fraction: float = 0.4
    # A push the feed cannot place asks for a reconcile this soon; more such pushes meanwhile share it.
    prompt_reconcile_seconds: float = 0.25
    # Each scheduled reconcile waits its interval stretched by a random 0..this fraction, so accounts
    # whose feeds started together (one page opening "All accounts") drift apart instead of all reading
    # QFEX in the same instant every interval (P10: that burst delayed the pushes of every account).
    reconcile_jitter: float = 0.2
    # Orders that left the book recently, kept per account for the page's Closed tab.
    closed_rows: int = 500
    page_size: int = 1000
    # The rate budget may be spent this many seconds' worth at once (then refills steadily); the refill
    # rate is lowered to match, so no 60 s window ever holds more than the share (see weight_per_second).
    budget_burst_seconds: float = 5.0
    # Most rows in one message to a browser: bigger snapshots go in parts, bigger changes in several
    # diffs, so no message reaches the WebSocket server's size limit (Daphne: 1 MiB).
    rows_per_message: int = 500
    # Several server processes (REDIS_URL): an account's upstream lease lasts this long unless renewed
    # (every third of it); a dead owner process is replaced within about this long.
    lease_seconds: float = 6.0

    @property
    def weight_per_minute(self) -> float:
        """The most weight the dashboard may spend in any 60 s: its share of QFEX's per-key budget (P8)."""
        return EXCHANGE_WEIGHT_PER_MINUTE * self.rate_budget_share

    @property
    def weight_per_second(self) -> float:
        """The budget's refill rate. A token bucket lets any window of T seconds spend its burst plus T
        seconds of refill, so the rate leaves room for one burst in every minute:
        ``burst + 60 x rate = weight_per_minute`` (9.2 % sustained, 10 % in any minute, by default)."""
        return self.weight_per_minute / (60.0 + self.budget_burst_seconds)

    @property
    def reconcile_weight_per_second(self) -> float:
        """The rate reconciles may spend at most (a fraction of the budget's refill rate)."""
        return self.weight_per_second * self.reconcile_budget_fraction

    def reconcile_interval(self, pages: int) -> float:
        """Seconds between reconciles of a book of ``pages`` pages: the configured interval, stretched
        so that reconciles stay within their share of the budget (P8: a 10 000-order book reconciles
        every 6.25 s at the defaults instead of every 5 s)."""
        weight = max(1, pages) * GET_USER_ORDERS_WEIGHT
        return max(self.reconcile_seconds, weight / self.reconcile_weight_per_second)

    @property
    def budget_burst(self) -> float:
        """Weight the budget may spend at once: ``budget_burst_seconds`` of allowance, at least one page."""
        return max(self.weight_per_second * self.budget_burst_seconds, GET_USER_ORDERS_WEIGHT)

    @classmethod
    def from_settings(cls, **overrides: Any) -> FeedConfig:
        values: dict[str, Any] = {
            "reconcile_seconds": float(settings.QFEXDASH_RECONCILE_SECONDS),
            "threads": int(settings.QFEXDASH_FEED_THREADS),
            "rate_budget_share": float(settings.QFEXDASH_RATE_BUDGET_SHARE),
            "refresh_coalesce_seconds": float(settings.QFEXDASH_REFRESH_COALESCE_SECONDS),
            "timeout_seconds": float(settings.QFEX_TIMEOUT_SECONDS),
            "backoff_base_seconds": float(settings.QFEXDASH_BACKOFF_BASE_SECONDS),
            "backoff_cap_seconds": float(settings.QFEXDASH_BACKOFF_CAP_SECONDS),
            "auth_retry_seconds": float(settings.QFEXDASH_AUTH_RETRY_SECONDS),
            "error_after_failures": int(settings.QFEXDASH_ERROR_AFTER_FAILURES),
            "rows_per_message": max(1, int(settings.QFEXDASH_WS_ROWS_PER_MESSAGE)),
            "lease_seconds": float(settings.QFEXDASH_LEASE_SECONDS),
        }
        known = {field.name for field in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown feed settings: {sorted(unknown)}")
        values.update(overrides)
        return cls(**values)
