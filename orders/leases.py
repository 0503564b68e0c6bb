"""Who owns an account's upstream QFEX session: a small lease interface.

The feed takes a lease named after the account before it opens an upstream session, renews it while
the session lives and releases it when the session closes. Today every owner lives in one process
(:class:`LocalLeases`); with several server processes (issue 4/5) a Redis or PostgreSQL lease with
the same three methods makes "at most one upstream session per account" hold cluster-wide, and a
process whose renewal fails must close its session at once.
"""

from __future__ import annotations

import time
from typing import Protocol


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
