"""One settings read for every account a process feeds (orders/live/feed/settings_watch.py), and through
the real database: a changed key or a deleted account shows in the next read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async

from orders.live.feed import upstream
from orders.live.feed.settings_watch import SettingsWatch
from orders.models import ExchangeAccount


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Table:
    """A stand-in for the accounts table: fingerprints by id, and every read it answered."""

    def __init__(self, accounts: int) -> None:
        self.values: dict[int, str | None] = {n: f"fp-{n}" for n in range(1, accounts + 1)}
        self.reads: list[list[int]] = []

    def read(self, ids: Sequence[int]) -> dict[int, str | None]:
        self.reads.append(list(ids))
        return {n: self.values[n] for n in ids if self.values.get(n) is not None}


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


async def test_fifty_accounts_asking_together_cost_at_most_two_reads(pool: ThreadPoolExecutor) -> None:
    table = Table(50)
    watch = SettingsWatch(pool, max_age=2.5, read=table.read, clock=Clock())
    answers = await asyncio.gather(*(watch.fingerprint(n) for n in range(1, 51)))
    assert answers == [f"fp-{n}" for n in range(1, 51)]
    assert len(table.reads) <= 2, "the first read covers the first account; one more covers the rest"
    assert {n for read in table.reads for n in read} == set(range(1, 51))


async def test_every_account_asked_lately_is_read_again_in_one_query_once_the_answer_ages(
    pool: ThreadPoolExecutor,
) -> None:
    table, clock = Table(50), Clock()
    watch = SettingsWatch(pool, max_age=2.5, read=table.read, clock=clock)
    for n in range(1, 51):
        await watch.fingerprint(n)
    table.reads.clear()
    clock.now += 1.0
    for n in range(1, 51):
        assert await watch.fingerprint(n) == f"fp-{n}"
    assert table.reads == [], "answers younger than max_age are reused"
    table.values[7] = "fp-7-new-key"
    table.values[9] = None  # deleted
    clock.now += 2.0
    assert await watch.fingerprint(1) == "fp-1"
    assert table.reads == [list(range(1, 51))], "one read for every account asked about lately"
    assert await watch.fingerprint(7) == "fp-7-new-key"
    assert await watch.fingerprint(9) is None
    assert len(table.reads) == 1


async def test_accounts_nobody_asks_about_any_more_are_forgotten(pool: ThreadPoolExecutor) -> None:
    table, clock = Table(3), Clock()
    watch = SettingsWatch(pool, max_age=2.5, read=table.read, clock=clock)
    for n in (1, 2, 3):
        await watch.fingerprint(n)
    clock.now += 6.0  # more than two ages: the workers of 2 and 3 have stopped
    table.reads.clear()
    await watch.fingerprint(1)
    assert table.reads == [[1]]


async def test_what_a_connect_read_is_used_until_it_ages(pool: ThreadPoolExecutor) -> None:
    table, clock = Table(1), Clock()
    watch = SettingsWatch(pool, max_age=2.5, read=table.read, clock=clock)
    assert await watch.fingerprint(1) == "fp-1"
    clock.now += 1.0
    watch.note(1, "fp-1-after-edit")  # the worker connected with the edited key
    assert await watch.fingerprint(1) == "fp-1-after-edit"


async def test_a_failed_read_reaches_every_worker_waiting_for_it_and_the_next_read_retries(
    pool: ThreadPoolExecutor,
) -> None:
    table = Table(2)
    failures = [RuntimeError("database is locked")]

    def flaky(ids: Sequence[int]) -> dict[int, str | None]:
        if failures:
            raise failures.pop()
        return table.read(ids)

    watch = SettingsWatch(pool, max_age=2.5, read=flaky, clock=Clock())
    results = await asyncio.gather(watch.fingerprint(1), watch.fingerprint(2), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert await watch.fingerprint(2) == "fp-2"


@pytest.mark.django_db(transaction=True)
async def test_fingerprints_come_from_the_accounts_table_in_one_query(team_account: ExchangeAccount) -> None:
    before = await sync_to_async(upstream.account_fingerprints)([team_account.pk, 987654])
    assert set(before) == {team_account.pk}, "an account that does not exist is missing"
    team_account.subaccount_id = "other-sub"
    await sync_to_async(team_account.save)()
    after = await sync_to_async(upstream.account_fingerprints)([team_account.pk])
    assert after[team_account.pk] != before[team_account.pk]
    assert after[team_account.pk] is not None
