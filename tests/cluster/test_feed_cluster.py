"""Two feeds as two server processes would run them: each with its own Redis channel layer and its own
connection to the shared Redis state, in one test process so their insides can be watched.

One upstream session per account across both; the follower mirrors the owner's rows; refreshes go
to the owner; the owner keeps its session for the other process's viewers; a lease lost is a session
closed, and the other process takes over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels_redis.core import RedisChannelLayer

from orders.live.feed import Feed, FeedConfig
from orders.live.feed.ownership import lease_name
from orders.live.feed.redis_state import ClusterState, read_overviews
from orders.models import ExchangeAccount
from orders.simulator import SimAccount, Simulator
from tests.live.feed.conftest import FAST, matches_truth
from tests.personas import *  # noqa: F403  (the persona fixtures)
from tests.personas import KEYS, point_at

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PATIENCE = 20.0


@pytest.fixture
def sim() -> Any:
    accounts = [SimAccount(public_key=pk, secret=sk, orders=40, twaps=3) for pk, sk in KEYS.values()]
    with Simulator(accounts=accounts, seed=21) as simulator:
        yield simulator


@pytest.fixture
def live_account(owner_account: ExchangeAccount, sim: Simulator) -> ExchangeAccount:
    return point_at(owner_account, sim.url)


@pytest.fixture
async def make_process(services: dict[str, str], redis_prefix: str) -> AsyncIterator[Callable[..., Feed]]:
    """A feed as one server process has it: its own channel layer and Redis connection, shared prefix."""
    feeds: list[Feed] = []

    def factory(**overrides: Any) -> Feed:
        layer = RedisChannelLayer(
            hosts=[{"address": services["redis"], "socket_timeout": None}], prefix=f"{redis_prefix}:asgi", capacity=200
        )
        config = FeedConfig.from_settings(**{**FAST, "lease_seconds": 1.5, **overrides})
        feed = Feed(config, channel_layer=layer, cluster=ClusterState(services["redis"], redis_prefix))
        feeds.append(feed)
        return feed

    yield factory
    for feed in feeds:
        await feed.aclose()
        await feed.channel_layer.close_pools()


async def until(condition: Callable[[], Any], what: str, patience: float = PATIENCE) -> None:
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.02)


def sessions(*feeds: Feed, account: int) -> int:
    return sum(feed.stats(account).sessions for feed in feeds)


def owner_of(account: int, *feeds: Feed) -> Feed | None:
    owners = [feed for feed in feeds if feed._accounts.get(account) is not None and feed._accounts[account].owns()]
    assert len(owners) <= 1, "two processes think they own the account"
    return owners[0] if owners else None


async def test_two_processes_one_upstream_session_same_rows(
    make_process: Callable[..., Feed], live_account: ExchangeAccount, sim: Simulator
) -> None:
    a, b = make_process(), make_process()
    account = live_account.pk
    await a.watch(account, "viewer-a")
    await a.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await b.watch(account, "viewer-b")
    mirrored = await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    assert owner_of(account, a, b) is a
    assert mirrored.seq == (await a.snapshot(account)).seq
    # A change reaches the follower's mirror through the owner's published diff.
    sim.add_orders(live_account.public_key, 3)
    await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await a.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    assert (await b.snapshot(account)).seq == (await a.snapshot(account)).seq
    assert sessions(a, b, account=account) == 1
    assert sim.handshake_count == 1
    # The follower's snapshot is the same message the owner would send.
    assert (await b.snapshot_messages(account))[0] == (await a.snapshot_messages(account))[0]


async def test_a_follower_refresh_makes_the_owner_fetch(
    make_process: Callable[..., Feed], live_account: ExchangeAccount, sim: Simulator
) -> None:
    # No coalescing window, so the refresh below cannot be answered by the fetch that just happened.
    timings = {"reconcile_seconds": 30.0, "refresh_coalesce_seconds": 0.0}
    a, b = make_process(**timings), make_process(**timings)
    account = live_account.pk
    await a.watch(account, "viewer-a")
    await a.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await b.watch(account, "viewer-b")
    await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    fetches = a.stats(account).fetches
    # A new TWAP: QFEX pushes nothing for TWAPs, and the reconcile interval is long, so only a refresh
    # can show it — and only the owner can fetch.
    sim.add_twaps(live_account.public_key, 1)
    done = await b.refresh(account)
    assert await asyncio.wait_for(done, PATIENCE) is True
    await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    assert a.stats(account).fetches > fetches
    assert b.stats(account).fetches == 0  # the follower never fetches


async def test_the_owner_keeps_its_session_while_another_process_watches(
    make_process: Callable[..., Feed], live_account: ExchangeAccount, sim: Simulator
) -> None:
    a, b = make_process(), make_process()
    account = live_account.pk
    await a.watch(account, "viewer-a")
    await a.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await b.watch(account, "viewer-b")
    await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await a.unwatch(account, "viewer-a")
    # Several reconcile intervals later A still feeds B's viewers: new rows keep arriving at B.
    for _ in range(3):
        sim.add_orders(live_account.public_key, 1)
        await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    assert a.is_running(account)
    assert sessions(a, b, account=account) == 1
    # B's last viewer leaves: within the interest TTL plus one interval A's session closes.
    await b.unwatch(account, "viewer-b")
    await until(lambda: sim.authenticated_connections() == 0 and not a.is_running(account), "A's session closed")
    assert sim.handshake_count == 1  # one upstream session from start to end


async def test_a_lost_lease_closes_the_session_and_a_process_takes_over(
    make_process: Callable[..., Feed],
    live_account: ExchangeAccount,
    sim: Simulator,
    redis_client: Any,
    redis_prefix: str,
) -> None:
    a, b = make_process(), make_process()
    account = live_account.pk
    await a.watch(account, "viewer-a")
    await a.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await b.watch(account, "viewer-b")
    await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    # A's clock runs far ahead of B's: its seqs are beyond anything B's own clock would give.
    a._accounts[account].state.seq += 10**9
    high = a._accounts[account].state.seq
    sim.add_orders(live_account.public_key, 1)
    ahead = await b.wait_for(account, lambda s: s.seq > high, PATIENCE)  # B's mirror follows A's jump
    old_seq = ahead.seq
    # Someone else's lease appears (as after a network partition): A's next renewal fails and A closes
    # its session at once; when that lease expires, one of the two processes takes the account again.
    await redis_client.set(f"{redis_prefix}:lease:{lease_name(account)}", "someone-else", px=1500)
    await until(lambda: owner_of(account, a, b) is None, "A to let go of the account")
    await until(lambda: sim.authenticated_connections() == 0, "A's session to close")
    await until(lambda: owner_of(account, a, b) is not None, "a process to own the account again")
    await until(lambda: sim.authenticated_connections() == 1, "one upstream session again")
    assert sim.handshake_count == 2
    sim.add_orders(live_account.public_key, 2)
    for feed in (a, b):
        snapshot = await feed.wait_for(account, matches_truth(sim, live_account), PATIENCE)
        # The new owner's seq jumps above anything published before (never from its own clock alone):
        # every page sees a gap and resyncs.
        assert snapshot.seq > old_seq + 1
    assert sim.authenticated_connections() == 1


async def test_statuses_for_the_accounts_page_come_from_the_owner(
    make_process: Callable[..., Feed],
    live_account: ExchangeAccount,
    sim: Simulator,
    services: dict[str, str],
    redis_prefix: str,
) -> None:
    a = make_process()
    account = live_account.pk
    await a.watch(account, "viewer-a")
    await a.wait_for(account, matches_truth(sim, live_account), PATIENCE)

    def shown() -> dict[int, Any]:
        return {key: status for key, (status, _counts) in read_overviews(services["redis"], redis_prefix).items()}

    await until(lambda: shown().get(account) is not None and shown()[account].state == "live", "a live status")
    await a.unwatch(account, "viewer-a")
    await until(lambda: account not in shown(), "the status to go when nobody watches")


async def test_a_graceful_shutdown_hands_the_account_over_at_once(
    make_process: Callable[..., Feed], live_account: ExchangeAccount, sim: Simulator
) -> None:
    a, b = make_process(lease_seconds=30.0), make_process(lease_seconds=30.0)
    account = live_account.pk
    await a.watch(account, "viewer-a")
    await a.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await b.watch(account, "viewer-b")
    await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await a.aclose()  # releases its lease: B need not wait the 30 s lease out
    await until(lambda: owner_of(account, b) is b, "B to own the account", patience=15.0)
    sim.add_orders(live_account.public_key, 1)
    await b.wait_for(account, matches_truth(sim, live_account), PATIENCE)


async def test_a_join_during_a_leave_of_the_same_account_ends_in_the_group(
    make_process: Callable[..., Feed], live_account: ExchangeAccount, sim: Simulator
) -> None:
    """The last viewer leaves (the process leaves the account's group) and a new viewer arrives while the
    leave is still talking to Redis: the join must end with this process in the group, or its mirror would
    miss every diff the owner publishes."""
    owner, follower = make_process(), make_process()
    account = live_account.pk
    await owner.watch(account, "viewer-owner")
    await owner.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    await follower.watch(account, "viewer-1")
    await follower.wait_for(account, matches_truth(sim, live_account), PATIENCE)
    layer = follower.channel_layer
    done: list[str] = []  # membership changes of the follower's inbox, in the order they completed
    leaving, release = asyncio.Event(), asyncio.Event()
    real_add, real_discard = layer.group_add, layer.group_discard

    async def group_add(group: str, channel: str) -> None:
        await real_add(group, channel)
        done.append("add")

    async def group_discard(group: str, channel: str) -> None:
        leaving.set()
        await release.wait()  # the leave is slow: Redis answers late
        await real_discard(group, channel)
        done.append("discard")

    layer.group_add, layer.group_discard = group_add, group_discard
    await follower.unwatch(account, "viewer-1")
    async with asyncio.timeout(PATIENCE):
        await leaving.wait()
    joining = asyncio.ensure_future(follower.watch(account, "viewer-2"))
    await until(lambda: account in follower._joining, "the new viewer's join to start")
    await until(lambda: follower.link is not None and follower.link._group_locks[account].locked(), "the leave")
    release.set()
    async with asyncio.timeout(PATIENCE):
        await joining
    assert done == ["discard", "add"], "the join must complete after the leave, not be undone by it"
    sim.add_orders(live_account.public_key, 1)
    await follower.wait_for(account, matches_truth(sim, live_account), PATIENCE)
