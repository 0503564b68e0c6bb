"""The Redis channel layer as the settings configure it.

- F9 on Redis: with a tiny capacity, group messages to a stalled viewer are dropped; the page sees the
  seq gap, asks for a snapshot and converges to the exchange's state.
- An idle receive survives: redis-py's default 5 s socket timeout must not end channels_redis's 5 s
  blocking wait (a consumer with nothing to read for 5 s would otherwise crash).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.urls import path

from bench.harness import ROOT
from orders.live.consumers import AccountStreamConsumer
from orders.live.feed import get_feed, shutdown_feed
from orders.live.routing import ExactOriginMiddleware, SessionUserMiddleware
from orders.models import ExchangeAccount
from orders.simulator import SimAccount, Simulator
from tests.live.consumers.conftest import PATIENCE, Browser, async_session_cookie, shows_truth, truth
from tests.personas import *  # noqa: F403  (the persona fixtures)
from tests.personas import KEYS, point_at

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


class _StallableConsumer(AccountStreamConsumer):
    """A viewer whose socket stops reading while ``stall`` is clear (a slow browser)."""

    stall: asyncio.Event  # not `gate`: the consumer has its own (FrameGate)

    async def feed_message(self, event: dict[str, Any]) -> None:
        await type(self).stall.wait()
        await super().feed_message(event)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    accounts = [SimAccount(public_key=pk, secret=sk, orders=30, twaps=2) for pk, sk in KEYS.values()]
    with Simulator(accounts=accounts, seed=5) as simulator:
        yield simulator
        await shutdown_feed()


@pytest.fixture
async def redis_site(settings: Any, services: dict[str, str], redis_prefix: str) -> AsyncIterator[None]:
    """This process as one server of a cluster: Redis layer with a capacity of 1, cluster feed, fast timings."""
    settings.REDIS_URL = services["redis"]
    settings.QFEXDASH_REDIS_PREFIX = redis_prefix
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": services["redis"], "socket_timeout": None}],
                "prefix": f"{redis_prefix}:asgi",
                "capacity": 1,
                "expiry": 30,
            },
        }
    }
    settings.QFEXDASH_RECONCILE_SECONDS = 1.0
    settings.QFEXDASH_LEASE_SECONDS = 1.5
    settings.QFEX_TIMEOUT_SECONDS = 2.0
    settings.QFEXDASH_REFRESH_COALESCE_SECONDS = 0.2
    settings.QFEXDASH_ACCESS_RECHECK_SECONDS = 0.3
    settings.QFEXDASH_FEED_THREADS = 4
    yield
    await shutdown_feed()
    from channels.layers import channel_layers

    layer = channel_layers.backends.pop("default", None)
    if layer is not None:
        await layer.close_pools()


@pytest.fixture
def live_team_account(team_account: ExchangeAccount, sim: Simulator) -> ExchangeAccount:
    return point_at(team_account, sim.url)


async def test_a_stalled_viewer_on_redis_heals_through_a_seq_gap(
    redis_site: None, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    account = live_team_account
    _StallableConsumer.stall = asyncio.Event()
    _StallableConsumer.stall.set()
    application = ExactOriginMiddleware(
        SessionMiddlewareStack(
            SessionUserMiddleware(URLRouter([path("ws/accounts/<int:account_id>/", _StallableConsumer.as_asgi())]))
        )
    )
    browser = Browser(application, f"/ws/accounts/{account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, account))
    feed = get_feed()
    assert feed.cluster is not None, "the feed should run as one process of a cluster here"
    _StallableConsumer.stall.clear()
    # Three separate changes, each fetched and published while the viewer is stalled.
    for _ in range(3):
        fetches = feed.stats(account.pk).fetches
        sim.add_orders(account.public_key, 1)

        def fetched_again(s: Any, n: int = fetches) -> bool:
            return feed.stats(s.account).fetches > n

        await feed.wait_for(account.pk, fetched_again, PATIENCE)
        await feed.wait_for(account.pk, lambda s: set(s.orders) == set(truth(sim, account)[0]), PATIENCE)
    _StallableConsumer.stall.set()
    sim.add_orders(account.public_key, 1)
    await browser.until(lambda: browser.gaps > 0 and shows_truth(browser, sim, account)())
    await browser.disconnect()


IDLE_RECEIVE = """
import asyncio, os, time, django
django.setup()
from channels.layers import get_channel_layer

async def main():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    async def later():
        await asyncio.sleep(6.5)  # longer than channels_redis's 5 s blocking wait
        await layer.send(channel, {"type": "late.message"})
    sender = asyncio.create_task(later())
    message = await asyncio.wait_for(layer.receive(channel), 30)
    await sender
    await layer.close_pools()
    print("RECEIVED", message["type"])

asyncio.run(main())
"""


def test_a_receive_with_nothing_to_read_for_seconds_keeps_waiting(services: dict[str, str], redis_prefix: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QFEX", "DATABASE", "REDIS"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "qfexdash.settings",
            "REDIS_URL": services["redis"],
            "QFEXDASH_REDIS_PREFIX": redis_prefix,
            "QFEXDASH_ENCRYPTION_KEYS": os.environ["QFEXDASH_ENCRYPTION_KEYS"],
            "QFEXDASH_STATE_DIR": os.environ["QFEXDASH_STATE_DIR"],
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", IDLE_RECEIVE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert "RECEIVED late.message" in result.stdout, result.stderr[-2000:]
