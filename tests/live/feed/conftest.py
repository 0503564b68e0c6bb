"""Fixtures for feed tests: the personas, a simulator serving their keys, and feeds with fast timings."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer

from orders.live.feed import Feed, FeedConfig, group_name
from orders.live.rows import order_rows, twap_rows, without_placement
from orders.models import ExchangeAccount
from orders.qfex.records import parse_order, parse_twap
from orders.simulator import SimAccount, Simulator
from tests.personas import *  # noqa: F403  (the persona fixtures)
from tests.personas import KEYS, point_at

# Fast timings so failures and recoveries happen within a test's patience; the thing under test
# (timeouts, intervals) is small, the deadlines tests wait with are generous.
FAST = {
    "reconcile_seconds": 1.0,
    "timeout_seconds": 1.0,
    "backoff_base_seconds": 0.05,
    "backoff_cap_seconds": 0.3,
    "refresh_coalesce_seconds": 0.2,
    "auth_retry_seconds": 300.0,
    "threads": 4,
}
PATIENCE = 15.0  # seconds a test waits for a condition before failing


def sim_accounts(orders: int = 40, twaps: int = 3) -> list[SimAccount]:
    return [SimAccount(public_key=pk, secret=sk, orders=orders, twaps=twaps) for pk, sk in KEYS.values()]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(accounts=sim_accounts(), seed=11) as simulator:
        yield simulator


def book_key(account: ExchangeAccount) -> str:
    """The simulator's name for the book an account's key sees."""
    return account.public_key


@pytest.fixture
def live_account(owner_account: ExchangeAccount, sim: Simulator) -> ExchangeAccount:
    return point_at(owner_account, sim.url)


@pytest.fixture
async def make_feed() -> AsyncIterator[Callable[..., Feed]]:
    feeds: list[Feed] = []

    def factory(**overrides: Any) -> Feed:
        feed = Feed(FeedConfig.from_settings(**{**FAST, **overrides}), channel_layer=InMemoryChannelLayer())
        feeds.append(feed)
        return feed

    yield factory
    for feed in feeds:
        await feed.aclose()


def expected_rows(sim: Simulator, account: ExchangeAccount) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows the feed should show: the simulator's truth through the client's record parser."""
    key = book_key(account)
    orders = order_rows([parse_order(item) for item in sim.open_orders(key)], account.pk, account.label)
    twaps = twap_rows([parse_twap(item) for item in sim.active_twaps(key)], account.pk, account.label)
    return orders, twaps


def matches_truth(sim: Simulator, account: ExchangeAccount) -> Callable[[Any], bool]:
    def predicate(snapshot: Any) -> bool:
        orders, twaps = expected_rows(sim, account)
        return (
            snapshot.status.state == "live"
            and without_placement(snapshot.orders) == without_placement(orders)
            and snapshot.twaps == twaps
        )

    return predicate


def in_state(state: str, reason_part: str = "") -> Callable[[Any], bool]:
    return lambda snapshot: snapshot.status.state == state and reason_part in snapshot.status.reason


class GroupListener:
    """Receives what the feed publishes to one account's group, decoded."""

    def __init__(self, layer: InMemoryChannelLayer, account_id: int) -> None:
        self.layer = layer
        self.group = group_name(account_id)
        self.channel = ""

    async def start(self) -> GroupListener:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        return self

    async def next(self, timeout: float = PATIENCE) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            event = await self.layer.receive(self.channel)
        message = orjson.loads(event["text"])
        assert message["seq"] == event["seq"]
        assert message["account"] == event["account"]
        return message

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = PATIENCE) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.next(timeout)
                if predicate(message):
                    return message


async def wait_until(condition: Callable[[], Any], timeout: float = PATIENCE, what: str = "condition") -> Any:
    """Poll a cheap condition (e.g. a simulator counter) until it holds, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def feed_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("qfex-feed")]


db_write: Callable[..., Callable[..., Awaitable[Any]]] = sync_to_async
