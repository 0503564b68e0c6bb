"""Who owns an account's upstream QFEX session: a small lease interface and two implementations.

The feed takes a lease named after the account before it opens an upstream session, renews it while
the session lives and releases it when the session closes. A process whose renewal fails must close
its session at once: by then another process may hold the lease and open its own.

- :class:`LocalLeases` — in-process; correct for one server process (the embedded default).
- :class:`RedisLeases` — cluster-wide, for several server processes sharing one Redis (``REDIS_URL``).
  ``SET name owner NX PX ttl`` takes a free lease; renewing and releasing are compare-and-set Lua
  scripts, so a process can only extend or drop a lease it still holds. Expiry is Redis's own
  clock, so the processes' clocks do not matter.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class Leases(Protocol):
    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lease if it is free, expired, or already ours; True when we hold it now."""
        ...

    async def renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend our lease; False when it is no longer ours (the caller must stop using the resource)."""
        ...

    async def release(self, name: str, owner: str) -> None:
        """Give the lease up if it is ours; no-op otherwise."""
        ...


class LocalLeases:
    """In-process leases: correct for one server process, the default embedded setup."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}

    def holder(self, name: str) -> str | None:
        entry = self._held.get(name)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    async def acquire(self, name: str, owner: str, ttl: float) -> bool:
        current = self.holder(name)
        if current is not None and current != owner:
            return False
        self._held[name] = (owner, time.monotonic() + ttl)
        return True

    async def renew(self, name: str, owner: str, ttl: float) -> bool:
        if self.holder(name) != owner:
            return False
        self._held[name] = (owner, time.monotonic() + ttl)
        return True

    async def release(self, name: str, owner: str) -> None:
        if self.holder(name) == owner:
            del self._held[name]


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
    event loop it was created on. ``acquire`` raises when Redis cannot be reached (the feed shows
    that as an upstream problem and retries with backoff); ``renew`` answers False instead, because
    a lease we cannot confirm must be treated as lost; ``release`` never raises (the lease expires
    on its own).
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
        try:
            return bool(await self._renew(keys=[self.key(name)], args=[owner, _milliseconds(ttl)]))
        except Exception:
            logger.warning("could not renew lease %s in Redis; treating it as lost", name, exc_info=True)
            return False

    async def release(self, name: str, owner: str) -> None:
        try:
            await self._release(keys=[self.key(name)], args=[owner])
        except Exception:
            logger.warning("could not release lease %s in Redis; it will expire", name, exc_info=True)

    async def holder(self, name: str) -> str | None:
        """Who holds the lease now (None when free); for routing requests to the owner, and tests."""
        value = await self.client.get(self.key(name))
        if isinstance(value, bytes):
            return value.decode()
        return value
