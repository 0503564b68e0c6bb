"""Whether an account's connection settings or key changed: one query for every account of the process.

Each upstream worker asks every half reconcile interval for its account's fingerprint
(:func:`orders.live.feed.upstream.account_fingerprints`). An answer read less than half an interval ago is
reused, and a read covers every account asked about lately, so a process feeding 50 accounts reads
the database about twice per interval instead of 50 times (P10: those reads competed with the pushes
for the interpreter), while a change is still noticed within one interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from . import upstream
from .session import run_in_pool

Read = Callable[[Sequence[int]], dict[int, str | None]]


class SettingsWatch:
    def __init__(
        self,
        pool: Executor,
        max_age: float,
        read: Read = upstream.account_fingerprints,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self.max_age = max_age
        self._read_fn = read
        self._clock = clock
        self._asked: dict[int, float] = {}  # account → when its worker last asked
        self._known: dict[int, tuple[float, str | None]] = {}  # account → (read at, fingerprint or None)
        self._reading: asyncio.Future[dict[int, str | None]] | None = None

    async def fingerprint(self, account_id: int) -> str | None:
        """The account's fingerprint, at most ``max_age`` old; None when the account no longer exists."""
        now = self._clock()
        self._asked[account_id] = now
        entry = self._known.get(account_id)
        if entry is not None and now - entry[0] < self.max_age:
            return entry[1]
        for _ in range(2):  # a read already under way may have started before this account asked
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._read(self._recent(now)))
            values = await asyncio.shield(self._reading)
            if account_id in values:
                return values[account_id]
        raise RuntimeError(f"account {account_id}: its settings were not read")

    def note(self, account_id: int, fingerprint: str | None) -> None:
        """The worker read the account itself (on connect): newer than anything read before."""
        self._known[account_id] = (self._clock(), fingerprint)

    async def _read(self, ids: list[int]) -> dict[int, str | None]:
        started = self._clock()
        try:
            values = await run_in_pool(self._pool, self._read_fn, ids)
        finally:
            self._reading = None
        answer = {account_id: values.get(account_id) for account_id in ids}
        for account_id, fingerprint in answer.items():
            known = self._known.get(account_id)
            if known is None or known[0] <= started:  # never replace what a connect read after this began
                self._known[account_id] = (started, fingerprint)
        return answer

    def _recent(self, now: float) -> list[int]:
        """Accounts asked about within two ages (others' workers have stopped): forget the rest."""
        for account_id in [a for a, asked in self._asked.items() if now - asked > 2 * self.max_age]:
            del self._asked[account_id]
            self._known.pop(account_id, None)
        return sorted(self._asked)
