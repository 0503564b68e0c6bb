"""What the simulated exchange knows, shared by the control API, the server loop and the message handlers.

One `ExchangeState` per simulator: its accounts and revoked keys, the books (`Market`) and their event log,
the auth nonces, the rate budgets and their weights, the faults, the page options and the received traffic.
It lives as long as the simulator, across `stop()` and `start()` (a restart keeps the books). Everything that
is not a plain attribute write is done under `lock`, so tests may drive the books from their own thread
while the loop thread serves clients.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence

from .accounts import SimAccount
from .auth import NonceMemory
from .book import PAGE_ORDERS
from .events import EventLog
from .faults import Faults
from .market import Market
from .ratelimit import DEFAULT_WEIGHT, DEFAULT_WEIGHTS, RateLimiter
from .traffic import Traffic


class ExchangeState:
    """The exchange's data and knobs; `lock` guards the market, the limiter, the nonces and the traffic."""

    def __init__(
        self,
        accounts: Sequence[SimAccount],
        *,
        seed: int,
        epoch: float,
        pace: float,
        page_latency: float,
        page_order: str,
        faults: Faults | None,
        weights: Mapping[str, float] | None,
        event_log_size: int,
    ) -> None:
        # The accounts were checked with `accounts.check_unique` (the simulator does it before anything else).
        self.lock = threading.RLock()
        self.accounts_by_key = {account.public_key: account for account in accounts}
        self.revoked: set[str] = set()
        self.faults = faults if faults is not None else Faults()
        self.weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        self._pace = check_non_negative("pace", pace)
        self._page_latency = check_non_negative("page_latency", page_latency)
        self._page_order = check_page_order(page_order)
        self.event_log = EventLog(event_log_size)
        self.market = Market(
            accounts, seed, round(epoch, 6), event_seconds=self._event_seconds(), event_log=self.event_log
        )
        self.nonces = NonceMemory()
        self.limiter = RateLimiter()
        self.traffic = Traffic(self.lock)

    # ----- knobs -----

    @property
    def pace(self) -> float:
        return self._pace

    @pace.setter
    def pace(self, value: float) -> None:
        self._pace = check_non_negative("pace", value)
        with self.lock:
            self.market.event_seconds = self._event_seconds()

    def _event_seconds(self) -> float:
        # With a pace, the virtual clock advances about as fast as the wall clock.
        return 1.0 / self._pace if self._pace > 0 else 1.0

    @property
    def page_latency(self) -> float:
        return self._page_latency

    @page_latency.setter
    def page_latency(self, value: float) -> None:
        self._page_latency = check_non_negative("page_latency", value)

    @property
    def page_order(self) -> str:
        return self._page_order

    @page_order.setter
    def page_order(self, value: str) -> None:
        self._page_order = check_page_order(value)

    # ----- keys and books -----

    def live_account(self, public_key: str) -> SimAccount | None:
        """The account of a key that may log in (None for unknown and revoked keys alike)."""
        if public_key in self.revoked:
            return None
        return self.accounts_by_key.get(public_key)

    def book_id(self, account_key: str) -> str:
        """The book named by a user id, a subaccount id or a public key; KeyError for anything else."""
        if account_key in self.market.books:
            return account_key
        account = self.accounts_by_key.get(account_key)
        if account is not None:
            return account.user_id
        raise KeyError(f"unknown account {account_key!r} (use a user_id, a subaccount id or a public key)")

    def rate_limited(self, user_id: str, msg_type: str) -> float | None:
        """Charge one message to the user's budget: None when allowed, else the seconds to wait."""
        faults = self.faults
        with self.lock:
            return self.limiter.check(
                user_id,
                self.weights.get(msg_type, DEFAULT_WEIGHT),
                faults.rate_limit_weight,
                faults.rate_limit_window,
            )

    def reset_counters(self) -> None:
        """Clear the received traffic and the rate budgets, at once."""
        with self.lock:
            self.traffic.clear()
            self.limiter.reset()


def check_non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a number, 0 or more")
    return float(value)


def check_page_order(value: str) -> str:
    if value not in PAGE_ORDERS:
        raise ValueError(f"page_order must be one of {', '.join(PAGE_ORDERS)}")
    return value
