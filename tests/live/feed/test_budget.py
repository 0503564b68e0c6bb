"""The per-key rate budget and the reconnect backoff, on a hand-driven clock."""

from __future__ import annotations

import pytest

from orders.live.feed import FeedConfig
from orders.live.feed.budget import RateBudget, budget_key, full_jitter_backoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_default_budget_is_ten_percent_of_qfex() -> None:
    config = FeedConfig()
    # 10 % of 12 000 weight per minute = 1 200 weight = 240 get_user_orders pages per minute, burst included.
    assert config.weight_per_minute == pytest.approx(1200)
    assert config.budget_burst + 60 * config.weight_per_second == pytest.approx(1200)


@pytest.mark.parametrize(
    ("share", "pages_per_fetch"),
    [(0.10, 1), (0.10, 11), (0.10, 18), (0.02, 1), (0.02, 3), (0.5, 11), (0.10, 40), (0.02, 11)],
)
def test_no_minute_ever_holds_more_than_the_share(share: float, pages_per_fetch: int) -> None:
    """A feed that fetches whenever the budget lets it, from a full bucket: every 60 s window, the
    first one included, stays within the share; and the budget is not left idle either. A fetch
    bigger than the whole burst starts from a full bucket and runs into debt: a minute may then hold
    that one fetch's excess over the burst as well."""
    config = FeedConfig(rate_budget_share=share)
    clock = Clock()
    budget = RateBudget(config.weight_per_second, config.budget_burst, clock=clock)
    weight = pages_per_fetch * 5.0
    spent: list[tuple[float, float]] = []
    start = clock.now
    while clock.now < start + 600:
        wait = budget.wait_time(weight)
        if wait > 0:
            clock.now += max(wait, 1e-6)
            continue
        budget.charge(weight)
        spent.append((clock.now, weight))
    most = max(sum(w for t, w in spent if begin <= t < begin + 60) for begin, _ in spent)
    excess = max(0.0, weight - config.budget_burst)
    assert most <= config.weight_per_minute + excess + 1e-6
    assert sum(w for _, w in spent) >= 0.9 * config.weight_per_minute * 10


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


def test_an_exchange_retry_hint_blocks_for_at_most_the_cap() -> None:
    now = [100.0]
    budget = RateBudget(10.0, 50.0, lambda: now[0], max_block=30.0)
    budget.block_for(1e9)  # a hostile "retry after a billion seconds"
    assert budget.wait_time(1.0) == pytest.approx(30.0)
    now[0] += 30.0
    assert budget.wait_time(1.0) < 0.2


def test_budgets_are_per_endpoint_and_key() -> None:
    assert budget_key("wss://trade.qfex.com", "pk") == budget_key("wss://TRADE.qfex.com/", "pk")
    assert budget_key("wss://trade.qfex.com", "pk") != budget_key("ws://127.0.0.1:9", "pk")
    assert budget_key("wss://trade.qfex.com", "pk") != budget_key("wss://trade.qfex.com", "other")
