"""When the feed's next reconcile falls due (orders/live/feed/schedule.py): pure, with a fake clock."""

from __future__ import annotations

import itertools

import pytest

from orders.live.feed.config import FeedConfig
from orders.live.feed.schedule import FetchSchedule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NoWait:
    def wait_time(self, weight: float) -> float:
        return 0.0


def started_schedule(config: FeedConfig, clock: Clock, draw: float) -> FetchSchedule:
    schedule = FetchSchedule(config, clock, rng=lambda: draw)
    schedule.succeeded(schedule.started(), pages=1)
    return schedule


def test_the_first_fetch_is_due_at_once() -> None:
    assert FetchSchedule(FeedConfig(), Clock()).due_in(NoWait()) == 0.0


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_a_scheduled_reconcile_waits_its_interval_stretched_by_the_drawn_jitter(draw: float) -> None:
    config = FeedConfig(reconcile_seconds=5.0, reconcile_jitter=0.2)
    clock = Clock()
    schedule = started_schedule(config, clock, draw)
    expected = 5.0 * (1 + 0.2 * draw)
    assert schedule.next_due() == pytest.approx(expected)
    clock.now += expected - 0.01
    assert schedule.due_in(NoWait()) is None, "never sooner than the stretched interval"
    clock.now += 0.02
    assert schedule.due_in(NoWait()) == 0.0


def test_feeds_started_together_fall_due_apart() -> None:
    """50 accounts opened by one page: with jitter their reconciles spread over a second, not one instant."""
    config = FeedConfig(reconcile_seconds=5.0, reconcile_jitter=0.2)
    clock = Clock()
    draws = itertools.count()
    schedules = [started_schedule(config, clock, next(draws) / 50) for _ in range(50)]
    due = sorted(s.next_due() for s in schedules)
    assert due[0] >= 5.0
    assert due[-1] - due[0] > 0.9
    assert len({round(d, 6) for d in due}) == 50


def test_without_jitter_every_feed_falls_due_after_exactly_one_interval() -> None:
    config = FeedConfig(reconcile_seconds=5.0, reconcile_jitter=0.0)
    clock = Clock()
    due = {started_schedule(config, clock, draw).next_due() for draw in (0.1, 0.9)}
    assert due == {5.0}


def test_a_prompt_reconcile_is_not_delayed_by_the_jitter() -> None:
    config = FeedConfig(reconcile_seconds=5.0, reconcile_jitter=0.2, prompt_reconcile_seconds=0.25)
    clock = Clock()
    schedule = started_schedule(config, clock, 0.999)
    clock.now += 2.0
    schedule.want_prompt()
    assert schedule.next_due() == pytest.approx(0.25)
