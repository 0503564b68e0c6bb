"""Who owns an account: one process always; with Redis, leases renewed in one isolated tick."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from orders.live.feed.ownership import ClusterOwnership, LocalOwnership, lease_name


class FlakyLeases:
    """RedisLeases as the owner sees them: ``failing`` names raise like an unreachable Redis,
    ``taken`` names belong to another process."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.taken: set[str] = set()
        self.renewed: list[str] = []

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        if name in self.failing:
            raise redis.ConnectionError("Error connecting to Redis")
        return name not in self.taken

    async def renew(self, name: str, owner: str, ttl: float) -> bool:
        self.renewed.append(name)
        if name in self.failing:
            raise redis.ConnectionError("Error connecting to Redis")
        return name not in self.taken

    async def release(self, name: str, owner: str) -> None:
        return None


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
def lost() -> list[int]:
    return []


@pytest.fixture
def ownership(clock: list[float], lost: list[int]) -> tuple[ClusterOwnership, FlakyLeases]:
    leases = FlakyLeases()
    owner = ClusterOwnership(leases, 6.0, lost.append, lambda: "me", clock=lambda: clock[0])  # type: ignore[arg-type]
    return owner, leases


async def test_one_process_always_owns_without_any_lease() -> None:
    local = LocalOwnership()
    assert await local.claim(7)
    assert local.owns(7)
    await local.renew_all()
    await local.release(7)
    assert local.owns(7)


async def test_a_renewal_redis_cannot_answer_keeps_the_lease_until_its_known_expiry(
    ownership: tuple[ClusterOwnership, Any], clock: list[float], lost: list[int]
) -> None:
    owner, leases = ownership
    assert await owner.claim(1)
    leases.failing.add(lease_name(1))
    clock[0] += 2.0
    await owner.renew_all()  # Redis hiccups: still ours until 1006
    assert owner.owns(1)
    assert lost == []
    leases.failing.clear()
    clock[0] += 2.0
    await owner.renew_all()  # renewed on the next tick: ours until 1010
    assert owner.owns(1)
    clock[0] += 5.0
    assert owner.owns(1)


async def test_a_lease_past_its_known_expiry_is_lost(
    ownership: tuple[ClusterOwnership, Any], clock: list[float], lost: list[int]
) -> None:
    owner, leases = ownership
    assert await owner.claim(1)
    leases.failing.add(lease_name(1))
    clock[0] += 6.5
    assert not owner.owns(1)  # surely ours only until its known expiry
    await owner.renew_all()
    assert lost == [1]


async def test_a_lease_redis_says_is_not_ours_is_lost_at_once(
    ownership: tuple[ClusterOwnership, Any], lost: list[int]
) -> None:
    owner, leases = ownership
    assert await owner.claim(1)
    leases.taken.add(lease_name(1))
    await owner.renew_all()
    assert not owner.owns(1)
    assert lost == [1]


async def test_one_accounts_error_never_skips_the_others_renewals(
    ownership: tuple[ClusterOwnership, Any], clock: list[float], lost: list[int]
) -> None:
    owner, leases = ownership
    for account in (1, 2, 3):
        assert await owner.claim(account)
    leases.failing.add(lease_name(1))
    clock[0] += 4.0
    await owner.renew_all()
    assert leases.renewed == [lease_name(1), lease_name(2), lease_name(3)]
    clock[0] += 4.0  # 1008: account 1's lease has expired, 2 and 3 were renewed until 1010
    assert not owner.owns(1)
    assert owner.owns(2)
    assert owner.owns(3)


async def test_a_failing_on_lost_callback_does_not_stop_the_tick(clock: list[float]) -> None:
    leases = FlakyLeases()
    calls: list[int] = []

    def on_lost(account: int) -> None:
        calls.append(account)
        raise RuntimeError("boom")

    owner = ClusterOwnership(leases, 6.0, on_lost, lambda: "me", clock=lambda: clock[0])  # type: ignore[arg-type]
    for account in (1, 2):
        assert await owner.claim(account)
    leases.taken.update({lease_name(1), lease_name(2)})
    await owner.renew_all()
    assert calls == [1, 2]
