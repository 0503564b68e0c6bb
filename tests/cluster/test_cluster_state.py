"""Shared state in Redis: viewer interest, account statuses for the accounts page, the per-key budget."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from orders.live import protocol as lp
from orders.live.feed.redis_state import ClusterState, read_overviews, redis_client

pytestmark = pytest.mark.services

PATIENCE = 10.0


@pytest.fixture
async def make_state(services: dict[str, str], redis_prefix: str) -> AsyncIterator[Callable[[], ClusterState]]:
    """One ClusterState per simulated process, all on the same Redis and prefix."""
    states: list[ClusterState] = []

    def factory() -> ClusterState:
        state = ClusterState(services["redis"], redis_prefix)
        states.append(state)
        return state

    yield factory
    for state in states:
        await state.aclose()


async def _eventually(condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_interest_of_other_processes_counts_and_expires(make_state: Callable[[], ClusterState]) -> None:
    a, b = make_state(), make_state()
    assert await a.other_interest(7, "A") == 0
    await a.note_interest(7, "A", 30)
    assert await a.other_interest(7, "A") == 0  # our own viewers are not "others"
    assert await b.other_interest(7, "B") == 1
    await b.note_interest(7, "B", 0.2)
    assert await a.other_interest(7, "A") == 1

    async def b_gone() -> bool:
        return await a.other_interest(7, "A") == 0

    await _eventually(b_gone, "B's interest to expire")
    await a.drop_interest(7, "A")
    assert await b.other_interest(7, "B") == 0
    assert await b.other_interest(8, "B") == 0  # other accounts are separate


async def test_statuses_are_readable_from_any_process_and_vanish_with_their_owner(
    make_state: Callable[[], ClusterState], services: dict[str, str], redis_prefix: str
) -> None:
    owner = make_state()
    live = lp.Status(lp.LIVE, "", 1764030000.5, None)
    stale = lp.Status(lp.STALE, "QFEX did not answer within 3 s; next try in 2 s.", 1764030000.5, 1764030010.0)
    await owner.publish_status(1, live, 30, seq=41, counts=(4000, 3))
    await owner.publish_status(2, stale, 0.2)
    read = await asyncio.to_thread(read_overviews, services["redis"], redis_prefix)
    assert read[1] == (live, (4000, 3))
    assert read[2] == (stale, None)
    assert await make_state().read_seq(1) == 41  # what a process taking the account over continues above

    async def two_expired() -> bool:
        return 2 not in await asyncio.to_thread(read_overviews, services["redis"], redis_prefix)

    await _eventually(two_expired, "the status of a silent owner to expire")
    await owner.clear_status(1)
    assert await asyncio.to_thread(read_overviews, services["redis"], redis_prefix) == {}
    assert await owner.read_seq(1) == 0
    assert await owner.client.scard(f"{redis_prefix}:statuses") == 0  # the index forgets them too


async def test_the_rate_budget_is_shared_between_processes(make_state: Callable[[], ClusterState]) -> None:
    per_second, burst = 1.0, 10.0
    first = make_state().budget("qfex_pub_shared", per_second, burst, 60.0)
    second = make_state().budget("qfex_pub_shared", per_second, burst, 60.0)
    other_key = make_state().budget("qfex_pub_other", per_second, burst, 60.0)
    assert first.wait_time(10) == 0.0
    first.charge(10)
    await first.sync()
    await second.sync()
    await other_key.sync()
    # The second process sees the first one's spending; another key's bucket is untouched.
    assert second.wait_time(5) > 3.0
    assert other_key.wait_time(10) == 0.0
    second.block_for(30)
    await second.sync()
    await first.sync()
    assert first.wait_time(0.1) > 25.0


async def test_the_budget_keeps_pacing_locally_when_redis_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = ClusterState("unused", "qfexdash-test-unreachable", client=redis_client(f"redis://127.0.0.1:{port}/0"))
    try:
        budget = state.budget("qfex_pub_alone", 1.0, 10.0, 60.0)
        budget.charge(10)
        await budget.sync()
        assert budget.wait_time(5) > 3.0
    finally:
        await state.aclose()
