"""RedisLeases on the real Redis: one holder at a time, compare-and-set renew/release, expiry."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from orders.live.feed.leases import RedisLeases
from orders.live.feed.redis_state import redis_client as make_client

pytestmark = pytest.mark.services

PATIENCE = 10.0


@pytest.fixture
def leases(redis_client: Any, redis_prefix: str) -> RedisLeases:
    return RedisLeases(redis_client, redis_prefix)


async def test_one_holder_at_a_time(leases: RedisLeases) -> None:
    assert await leases.acquire("account.1", "A", 30)
    assert not await leases.acquire("account.1", "B", 30)
    assert await leases.acquire("account.1", "A", 30)  # ours already: still ours, extended
    assert await leases.holder("account.1") == "A"
    assert await leases.acquire("account.2", "B", 30)  # another name is another lease


async def test_only_the_holder_renews_or_releases(leases: RedisLeases, redis_client: Any) -> None:
    assert await leases.acquire("account.1", "A", 30)
    assert not await leases.renew("account.1", "B", 30)
    await leases.release("account.1", "B")
    assert await leases.holder("account.1") == "A"
    await redis_client.pexpire(leases.key("account.1"), 500)
    assert await leases.renew("account.1", "A", 30)
    assert await redis_client.pttl(leases.key("account.1")) > 20_000
    await leases.release("account.1", "A")
    assert await leases.holder("account.1") is None
    assert await leases.acquire("account.1", "B", 30)


async def test_an_unrenewed_lease_expires_and_its_old_holder_cannot_renew_it(leases: RedisLeases) -> None:
    assert await leases.acquire("account.1", "A", 0.2)
    deadline = time.monotonic() + PATIENCE
    while not await leases.acquire("account.1", "B", 30):
        assert time.monotonic() < deadline, "the lease never expired"
        await asyncio.sleep(0.05)
    assert not await leases.renew("account.1", "A", 30)
    await leases.release("account.1", "A")
    assert await leases.holder("account.1") == "B"


async def test_many_contenders_one_winner(leases: RedisLeases) -> None:
    results = await asyncio.gather(*(leases.acquire("account.9", f"owner-{n}", 30) for n in range(20)))
    assert sum(results) == 1


async def test_unreachable_redis_acquire_and_renew_raise_release_is_quiet() -> None:
    """A renewal Redis cannot answer is not "lost": the owner decides with the lease's known expiry
    (orders.live.feed.ownership), instead of giving the account up at the first network hiccup."""
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"redis://127.0.0.1:{port}/0")
    try:
        leases = RedisLeases(client, "qfexdash-test-unreachable")
        with pytest.raises(Exception, match=r"(?i)connect"):
            await leases.acquire("account.1", "A", 5)
        with pytest.raises(Exception, match=r"(?i)connect"):
            await leases.renew("account.1", "A", 5)
        await leases.release("account.1", "A")
    finally:
        await client.aclose()
