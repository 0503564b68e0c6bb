"""The feed while watched: failures that need a person, account changes, budgets, and who reads pushes.

Against the real simulator over loopback, like tests/live/feed/test_feed.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from orders.accounts import exchange_accounts
from orders.live.feed import Feed
from orders.live.feed.budget import budget_key
from orders.live.feed.upstream import REJECTED_KEY_REASON
from orders.models import ExchangeAccount
from orders.simulator import SimAccount, Simulator
from tests.live.feed.conftest import PATIENCE, book_key, in_state, matches_truth, sim_accounts, wait_until
from tests.personas import KEYS, point_at

pytestmark = pytest.mark.django_db(transaction=True)


async def test_repeated_failures_become_an_error_with_what_to_do(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator
) -> None:
    sim.faults.max_lifetime = 1.5  # sessions end soon, so reconnects meet the fault
    feed = make_feed(error_after_failures=3, backoff_cap_seconds=0.1)
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    sim.faults.refuse_handshake = True  # every reconnect is refused
    stale = await feed.wait_for(live_account.pk, in_state("stale", "Could not connect to QFEX"), PATIENCE)
    assert stale.status.action == ""  # it retries by itself
    error = await feed.wait_for(live_account.pk, in_state("error", "Could not connect to QFEX"), PATIENCE)
    assert error.status.failures >= 3
    assert "keeps trying" in error.status.action
    assert error.status.since is not None
    assert error.status.since <= time.time()
    sim.faults.refuse_handshake = False
    live = await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    assert live.status.failures == 0


async def test_a_session_closed_right_after_login_twice_is_a_refused_key(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator
) -> None:
    sim.faults.close_after_auth = True
    feed = make_feed()
    await feed.watch(live_account.pk, "viewer")
    snapshot = await feed.wait_for(live_account.pk, in_state("error"), PATIENCE)
    assert snapshot.status.reason == REJECTED_KEY_REASON
    assert "My accounts" in snapshot.status.action
    assert sim.request_count("auth") == 2  # not hammered: retried on the auth cadence from now on
    assert feed.stats(live_account.pk).fetches == 0


async def test_disabling_a_watched_account_ends_its_session_and_says_so(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator
) -> None:
    feed = make_feed(reconcile_seconds=0.5)
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    assert sim.connection_count == 1
    await sync_to_async(exchange_accounts.account_update)(actor=None, account=live_account, enabled=False)
    snapshot = await feed.wait_for(live_account.pk, in_state("error", "disabled"), PATIENCE)
    assert snapshot.orders  # the last rows stay, marked
    await wait_until(lambda: sim.connection_count == 0, what="the upstream session to end")
    polls = sim.request_count("get_user_orders")
    await sync_to_async(exchange_accounts.account_update)(actor=None, account=live_account, enabled=True)
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    assert sim.request_count("get_user_orders") > polls


async def test_a_new_endpoint_takes_effect_while_watched(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator
) -> None:
    feed = make_feed(reconcile_seconds=0.5)
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    with Simulator(accounts=sim_accounts(orders=7, twaps=1), seed=99) as other:
        await sync_to_async(point_at)(live_account, other.url)
        await feed.wait_for(live_account.pk, matches_truth(other, live_account), PATIENCE)
        await wait_until(lambda: sim.connection_count == 0, what="the old endpoint's session to end")
        assert other.connection_count == 1


async def test_a_deleted_account_stops_talking_to_qfex(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator
) -> None:
    feed = make_feed(reconcile_seconds=0.5)
    account_id = live_account.pk
    await feed.watch(account_id, "viewer")
    await feed.wait_for(account_id, matches_truth(sim, live_account), PATIENCE)
    await sync_to_async(exchange_accounts.account_delete)(actor=None, account=live_account)
    await feed.wait_for(account_id, in_state("error", "no longer exists"), PATIENCE)
    await wait_until(lambda: sim.connection_count == 0, what="the upstream session to end")


async def test_the_first_successful_login_marks_the_key_verified(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator
) -> None:
    await sync_to_async(ExchangeAccount.objects.filter(pk=live_account.pk).update)(last_verified_at=None)
    feed = make_feed()
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)

    async def verified() -> bool:
        account = await sync_to_async(ExchangeAccount.objects.get)(pk=live_account.pk)
        return account.last_verified_at is not None

    deadline = time.monotonic() + PATIENCE
    while not await verified():
        assert time.monotonic() < deadline, "the key was never marked verified"
        await asyncio.sleep(0.02)


async def test_a_hostile_endpoint_cannot_freeze_an_account_with_the_same_key(
    make_feed: Any, owner_account: ExchangeAccount, team_account: ExchangeAccount
) -> None:
    """S23: budgets are per (endpoint, key) and QFEX's retry hints are capped at the backoff cap."""
    public_key, secret = KEYS[owner_account.label]
    shared = [SimAccount(public_key=public_key, secret=secret, orders=12, twaps=1)]
    with Simulator(accounts=shared, seed=3) as real, Simulator(accounts=shared, seed=4) as hostile:
        # The attacker's account uses the victim's public key at its own endpoint, which says "wait 1e9 s".
        victim = await sync_to_async(point_at)(owner_account, real.url)
        attacker = await sync_to_async(exchange_accounts.account_update)(
            actor=None,
            account=team_account,
            public_key=public_key,
            endpoint=ExchangeAccount.Endpoint.CUSTOM,
            custom_url=hostile.url,
            secret=secret,
        )
        hostile.faults.rate_limit_weight = 1.0
        hostile.faults.rate_limit_retry_after = 1e9
        feed = make_feed(backoff_cap_seconds=2.0)
        await feed.watch(attacker.pk, "attacker")
        limited = await feed.wait_for(attacker.pk, in_state("stale", "rate-limiting"), PATIENCE)
        assert limited.status.next_retry_at is not None
        assert limited.status.next_retry_at - time.time() <= 2.5  # capped, not 1e9 s
        # The victim's budget is its own: the attacker's endpoint blocked only the attacker's.
        assert feed.budget_for(budget_key(hostile.url, public_key)).wait_time(5.0) > 0
        assert feed.budget_for(budget_key(real.url, public_key)).wait_time(5.0) == 0
        await feed.watch(victim.pk, "victim")
        await feed.wait_for(victim.pk, matches_truth(real, victim), PATIENCE)
        real.add_orders(book_key(victim), 2)
        assert await asyncio.wait_for(await feed.refresh(victim.pk, max_age=0), PATIENCE)
        await feed.wait_for(victim.pk, matches_truth(real, victim), PATIENCE)


class CountingPool(ThreadPoolExecutor):
    """The feed's pool, counting the jobs it was given."""

    jobs = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        CountingPool.jobs += 1
        return super().submit(fn, *args, **kwargs)


async def test_no_pool_thread_waits_for_pushes(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pushes of every watched account reach the rows with no pool job: one reader thread reads them.
    (Parking a pool thread per watched account made latency grow with the number of accounts.)"""
    feed: Feed = make_feed(reconcile_seconds=120.0, prompt_reconcile_seconds=120.0, threads=1)
    feed.pool.shutdown()
    feed.pool = CountingPool(max_workers=1, thread_name_prefix="qfex-feed")
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    jobs, pushes = CountingPool.jobs, feed.stats(live_account.pk).pushes
    key = book_key(live_account)
    for order in sim.open_orders(key)[:10]:
        sim.fill_order(key, order["order_id"], Decimal(str(order["quantity_remaining"])) / 2)
    for order in sim.open_orders(key)[10:20]:
        sim.remove_order(key, order["order_id"])
    sim.add_orders(key, 10)
    await wait_until(lambda: feed.stats(live_account.pk).pushes == pushes + 30, what="the pushes to be applied")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    assert CountingPool.jobs == jobs  # not one job for 30 events
    readers = [thread for thread in threading.enumerate() if thread.name == "qfex-feed-reader"]
    assert len(readers) == 1


@pytest.mark.parametrize("code", ["KycRequired", "TncRequired", "PermissionDenied"])
async def test_an_exchange_refusal_on_reads_asks_a_person_and_is_not_hammered(
    make_feed: Any, live_account: ExchangeAccount, sim: Simulator, code: str
) -> None:
    feed = make_feed(auth_retry_seconds=1.0)
    await feed.watch(live_account.pk, "viewer")
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
    sim.faults.read_error_code = code
    await feed.refresh(live_account.pk, max_age=0)
    error = await feed.wait_for(live_account.pk, in_state("error", code), PATIENCE)
    assert "QFEX's web app" in error.status.action  # what to do, in words
    assert error.orders  # the last rows stay
    requests = sim.request_count("get_user_orders")
    for _ in range(5):  # refreshes do not retry a refusal that needs a person
        assert not await asyncio.wait_for(await feed.refresh(live_account.pk, max_age=0), PATIENCE)
    assert sim.request_count("get_user_orders") == requests
    sim.faults.read_error_code = ""  # someone acted in QFEX's web app: the slow retry finds it
    await feed.wait_for(live_account.pk, matches_truth(sim, live_account), PATIENCE)
