"""Redis leases: which process owns an account's upstream QFEX session (see :mod:`orders.live.feed.ownership`).

For several server processes sharing one Redis (``REDIS_URL``); one process needs no lease at all.
``SET name owner NX PX ttl`` takes a free lease; renewing and releasing are compare-and-set Lua
scripts, so a process can only extend or drop a lease it still holds. Expiry is Redis's own clock,
so the processes' clocks do not matter.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


# Ours already → extend it; free → take it (SET NX PX); someone else's → no.
_ACQUIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _milliseconds(ttl: float) -> int:
    if ttl <= 0:
        raise ValueError("a lease needs a positive time to live")
    return max(1, round(ttl * 1000))


class RedisLeases:
    """Leases in Redis, shared by every process that uses the same Redis and ``prefix``.

    ``client`` is a ``redis.asyncio.Redis`` (``decode_responses`` either way) used only from the
    event loop it was created on. ``acquire`` and ``renew`` raise when Redis cannot be reached: the
    caller knows until when its lease surely holds and decides (see :mod:`orders.live.feed.ownership`);
    ``renew`` answers False only when Redis says the lease is not ours. ``release`` never raises (the
    lease expires on its own).
    """

    def __init__(self, client: Any, prefix: str = "qfexdash") -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def key(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        return bool(await self._acquire(keys=[self.key(name)], args=[owner, _milliseconds(ttl)]))

    async def renew(self, name: str, owner: str, ttl: float) -> bool:
        return bool(await self._renew(keys=[self.key(name)], args=[owner, _milliseconds(ttl)]))

    async def release(self, name: str, owner: str) -> None:
        try:
            await self._release(keys=[self.key(name)], args=[owner])
        except Exception:
            logger.warning("could not release lease %s in Redis; it will expire", name, exc_info=True)

    async def holder(self, name: str) -> str | None:
        """Who holds the lease now (None when free); for routing requests to the owner, and tests."""
        value: bytes | str | None = await self.client.get(self.key(name))
        if isinstance(value, bytes):
            return value.decode()
        return value
