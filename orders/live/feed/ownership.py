"""Which process talks to QFEX for an account: one ownership object per process.

- :class:`LocalOwnership` — one server process (no ``REDIS_URL``): this process always owns every
  account it feeds. No lease is taken at all.
- :class:`ClusterOwnership` — several processes sharing Redis: an account is owned by the process
  holding its Redis lease (:class:`orders.live.feed.leases.RedisLeases`). :meth:`ClusterOwnership.renew_all`
  renews every lease this process holds in one tick, each renewal isolated from the others: an error
  renewing one account never skips the rest. A renewal Redis could not answer keeps the lease until its
  known expiry (when it was last confirmed + its time to live) and is retried on the next tick — giving
  it up at the first network hiccup made another process take over and every page resync; only Redis
  saying "not yours" (or the known expiry passing) loses it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from .leases import RedisLeases

logger = logging.getLogger("orders.live.feed")


def lease_name(account_id: int) -> str:
    return f"qfexdash.feed.account.{int(account_id)}"


class Ownership(Protocol):
    async def claim(self, account_id: int) -> bool:
        """Try to become (or stay) the account's owner; True when this process owns it now."""
        ...

    def owns(self, account_id: int) -> bool:
        """Whether this process may act as the owner right now (surely, not "probably")."""
        ...

    async def release(self, account_id: int) -> None: ...

    async def renew_all(self) -> None: ...


class LocalOwnership:
    """One process: always the owner."""

    async def claim(self, account_id: int) -> bool:
        return True

    def owns(self, account_id: int) -> bool:
        return True

    async def release(self, account_id: int) -> None:
        return None

    async def renew_all(self) -> None:
        return None


class ClusterOwnership:
    """Leases in Redis. ``owner`` names this process (its feed's inbox); ``on_lost`` is called on the loop
    with an account id when a lease turns out to be gone."""

    def __init__(
        self,
        leases: RedisLeases,
        ttl: float,
        on_lost: Callable[[int], None],
        owner: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases = leases
        self.ttl = ttl
        self._on_lost = on_lost
        self._owner = owner
        self._clock = clock
        self._valid_until: dict[int, float] = {}

    async def claim(self, account_id: int) -> bool:
        asked = self._clock()
        if await self.leases.acquire(lease_name(account_id), self._owner(), self.ttl):
            self._valid_until[account_id] = asked + self.ttl
            return True
        self._valid_until.pop(account_id, None)
        return False

    def owns(self, account_id: int) -> bool:
        return self._clock() < self._valid_until.get(account_id, 0.0)

    async def release(self, account_id: int) -> None:
        if self._valid_until.pop(account_id, None) is not None:
            await self.leases.release(lease_name(account_id), self._owner())

    async def renew_all(self) -> None:
        for account_id in list(self._valid_until):
            await self._renew(account_id)

    async def _renew(self, account_id: int) -> None:
        asked = self._clock()
        try:
            ours = await self.leases.renew(lease_name(account_id), self._owner(), self.ttl)
        except Exception:
            if self._clock() < self._valid_until.get(account_id, 0.0):
                logger.warning("account %s: could not renew its lease; retrying on the next tick", account_id)
                return
            logger.warning("account %s: its lease expired while Redis could not be reached", account_id)
            ours = False
        if account_id not in self._valid_until:
            return  # released meanwhile
        if ours:
            self._valid_until[account_id] = asked + self.ttl
            return
        del self._valid_until[account_id]
        try:
            self._on_lost(account_id)
        except Exception:
            logger.exception("account %s: handling a lost lease failed", account_id)
