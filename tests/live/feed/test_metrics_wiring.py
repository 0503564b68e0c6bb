"""The feed and the consumer feed the /metrics families (the view itself: tests/live/test_metrics.py)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orders.live import metrics
from orders.live import protocol as lp
from orders.models import ExchangeAccount
from orders.simulator import Simulator
from tests.live.feed.conftest import PATIENCE, GroupListener, book_key, matches_truth, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples ``GET /metrics`` would answer with, by (name, sorted labels)."""
    samples = {}
    for family in text_string_to_metric_families(metrics.METRICS.render().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(name: str, **labels: str) -> float:
    return scrape().get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_watched_account_shows_in_every_family(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator
) -> None:
    account = str(live_account.pk)
    sessions = value("qfexdash_upstream_sessions")
    pages = value("qfexdash_upstream_requests_total", type="get_user_orders")
    published = value("qfexdash_event_publish_seconds_count")
    feed = make_feed()
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    assert value("qfexdash_upstream_sessions") == sessions + 1
    assert value("qfexdash_upstream_requests_total", type="get_user_orders") > pages
    assert value("qfexdash_feed_state", account=account, state="live") == 1
    assert value("qfexdash_rate_budget_share", account=account) > 0
    sim.add_orders(book_key(live_account), 1)
    await wait_until(lambda: value("qfexdash_event_publish_seconds_count") > published, what="the push's diff")
    await feed.unwatch(live_account.pk, "viewer")
    await wait_until(lambda: value("qfexdash_upstream_sessions") == sessions, what="the session to close")
    # Forgotten once the account's feed has stopped, which is after its session is closed (in the pool).
    live_state = ("qfexdash_feed_state", (("account", account), ("state", "live")))
    await wait_until(lambda: live_state not in scrape(), what="the account's state to be forgotten")


async def test_a_read_contradicting_a_push_is_a_correction_counted_logged_once_and_shown(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulator keeps an IOC order open after a partial fill (QFEX cannot: the rest is cancelled). The
    push closes it; the next complete read lists it: it is open again, its Closed row is withdrawn, and the
    wrong assumption shows in /metrics and the log instead of hiding an order."""
    account = str(live_account.pk)
    feed = make_feed(reconcile_seconds=0.3)
    listener = await GroupListener(feed.channel_layer, live_account.pk).start()
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    assert value("qfexdash_complete_read_age_seconds", account=account) < PATIENCE
    before = value("qfexdash_corrections_total", account=account, kind="relisted")
    key = book_key(live_account)
    (ioc,) = sim.add_orders(key, 1, time_in_force="IOC", type="LIMIT", quantity=10, quantity_remaining=10)
    await feed.wait_for(live_account.pk, lambda s: ioc["order_id"] in s.orders, PATIENCE)
    sim.fill_order(key, ioc["order_id"], 4)
    closed = await listener.until(lambda m: m["type"] == lp.DIFF and ioc["order_id"] in m["remove"]["orders"])
    assert [row["reason"] for row in closed["closed"]] == ["Partly filled, the rest cancelled (immediate-or-cancel)"]
    relisted = await listener.until(lambda m: m["type"] == lp.DIFF and ioc["order_id"] in m["remove"]["closed"])
    assert [row["id"] for row in relisted["upsert"]["orders"]] == [ioc["order_id"]]
    assert value("qfexdash_corrections_total", account=account, kind="relisted") == before + 1
    assert (await feed.snapshot(live_account.pk)).closed == ()
    assert caplog.text.count(f"order {ioc['order_id']} again") == 1
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
