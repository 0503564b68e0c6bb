"""The per-key rate budget and the reconnect backoff, on a hand-driven clock."""

from __future__ import annotations

import pytest

from orders.feed_budget import RateBudget, full_jitter_backoff
from orders.feed_config import FeedConfig


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_default_budget_is_ten_percent_of_qfex() -> None:
    config = FeedConfig()
    # 10 % of 12 000 weight per minute = 1 200 weight = 240 get_user_orders pages per minute.
    assert config.weight_per_second * 60 == pytest.approx(1200)
    assert config.weight_per_second * 60 / 5 == pytest.approx(240)


def test_budget_defers_work_beyond_it() -> None:
    clock = Clock()
    budget = RateBudget(per_second=5.0, burst=10.0, clock=clock)
    assert budget.wait_time(5) == 0
    budget.charge(5)
    budget.charge(5)
    assert budget.wait_time(5) == pytest.approx(1.0)
    clock.now += 1.0
    assert budget.wait_time(5) == 0


def test_a_fetch_bigger_than_the_burst_runs_from_a_full_bucket_and_leaves_debt() -> None:
    clock = Clock()
    budget = RateBudget(per_second=5.0, burst=10.0, clock=clock)
    assert budget.wait_time(50) == 0  # a full bucket is enough for anything
    budget.charge(50)
    assert budget.wait_time(5) == pytest.approx((40 + 5) / 5.0)


def test_block_for_honours_the_exchange_hint() -> None:
    clock = Clock()
    budget = RateBudget(per_second=5.0, burst=10.0, clock=clock)
    budget.block_for(30)
    assert budget.wait_time(1) == pytest.approx(30)
    clock.now += 29
    assert budget.wait_time(1) == pytest.approx(1)
    clock.now += 1
    assert budget.wait_time(1) == 0


def test_full_jitter_backoff_is_capped_and_grows() -> None:
    for attempt in range(1, 12):
        ceiling = min(30.0, 1.0 * 2 ** (attempt - 1))
        for _ in range(50):
            assert 0.0 <= full_jitter_backoff(attempt, 1.0, 30.0) <= ceiling
    assert full_jitter_backoff(10_000, 1.0, 30.0) <= 30.0
