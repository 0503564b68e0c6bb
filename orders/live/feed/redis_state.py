"""What the server processes of one site share in Redis, besides the channel layer.

Used only when ``REDIS_URL`` is set (several Daphne processes); without it everything stays in the
process. Every key starts with ``QFEXDASH_REDIS_PREFIX`` (default ``qfexdash``), so several sites —
or test runs — can share one Redis. Expiry always uses Redis's clock (``TIME`` inside Lua), never
the processes' clocks, so a skewed host cannot keep a dead entry alive or kill a live one.

``<prefix>:lease:<name>``
    string, the lease holder (:class:`orders.live.feed.leases.RedisLeases`): one upstream session per account.
``<prefix>:interest:<account>``
    sorted set: member = a process that has viewers of the account, score = when that expires (ms).
    Each such process refreshes its entry every few seconds; the lease holder keeps its upstream
    session while any entry is live, even when it has no viewer of its own.
``<prefix>:status:<account>``
    string (JSON: the :class:`~orders.live.protocol.Status` fields, plus ``seq`` and the ``orders`` and
    ``twaps`` counts) written by the account's owner on every change and refreshed with the lease,
    expiring shortly after the owner stops. The accounts page of any process reads these
    (:func:`read_overviews`); ``<prefix>:statuses`` is the set of account ids. A process that takes an
    account over continues its seq above the one written here.
``<prefix>:budget:<budget key>``
    hash, the QFEX weight token bucket of one API key at one endpoint (QFEX limits per user, across
    connections; see :func:`orders.live.feed.budget.budget_key`), shared by every process that feeds an
    account with that key and endpoint (:class:`SharedRateBudget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from orders.live import protocol as lp

from .budget import RateBudget
from .leases import RedisLeases

logger = logging.getLogger(__name__)

# Socket timeouts for our own Redis calls: a Redis that stopped answering must not hang a page or the feed.
REDIS_TIMEOUT_SECONDS = 3.0

_NOTE_INTEREST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
return 1
"""

# Live entries other than ARGV[1] (the asking process); expired ones are removed on the way.
_OTHER_INTEREST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  count = count - 1
end
return count
"""

# A token bucket of weight. ARGV: refill per second, burst, weight to charge, seconds to block.
# Returns {tokens, seconds still blocked} as strings (Lua numbers would be truncated to integers).
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens'))
local updated = tonumber(redis.call('HGET', KEYS[1], 'updated'))
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0
if tokens == nil or updated == nil then
  tokens, updated = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
tokens = tokens - tonumber(ARGV[3])
local block = tonumber(ARGV[4])
if block > 0 then
  blocked = math.max(blocked, now + block)
  tokens = math.min(tokens, 0)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now), 'blocked', tostring(blocked))
local keep = math.ceil(math.max(blocked - now, 0) + burst / rate + 60)
redis.call('EXPIRE', KEYS[1], keep)
return {tostring(tokens), tostring(math.max(blocked - now, 0))}
"""


def redis_client(url: str, *, asynchronous: bool = True) -> Any:
    """A Redis client for our own keys (not the channel layer's), with bounded waits."""
    if asynchronous:
        import redis.asyncio as redis_asyncio

        return redis_asyncio.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
    import redis

    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _status_json(status: lp.Status, seq: int, counts: tuple[int, int] | None) -> bytes:
    orders, twaps = counts if counts is not None else (None, None)
    return orjson.dumps({**status.as_dict(), "seq": seq, "orders": orders, "twaps": twaps})


def _entry_from_json(raw: bytes | str) -> tuple[lp.Status, int, tuple[int, int] | None] | None:
    """``(status, seq, counts)`` of a status entry, or None when it is not one."""
    try:
        data = orjson.loads(raw)
        status = lp.Status.from_dict(data)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    if status.state not in lp.STATES:
        return None
    seq = data.get("seq")
    orders, twaps = data.get("orders"), data.get("twaps")
    counts = (orders, twaps) if isinstance(orders, int) and isinstance(twaps, int) else None
    return status, seq if isinstance(seq, int) and not isinstance(seq, bool) else 0, counts


class ClusterState:
    """The shared keys, used from one event loop (the feed's). Close with :meth:`aclose`."""

    def __init__(self, url: str, prefix: str = "qfexdash", *, client: Any = None) -> None:
        self.prefix = prefix
        self.client = client if client is not None else redis_client(url)
        self.leases = RedisLeases(self.client, prefix)
        self._note_interest = self.client.register_script(_NOTE_INTEREST)
        self._other_interest = self.client.register_script(_OTHER_INTEREST)
        self._bucket = self.client.register_script(_BUCKET)
        self._budgets: dict[str, SharedRateBudget] = {}

    # --- viewer interest ----------------------------------------------------------------------------

    def _interest_key(self, account_id: int) -> str:
        return f"{self.prefix}:interest:{int(account_id)}"

    async def note_interest(self, account_id: int, process: str, ttl: float) -> None:
        """This process has viewers of the account for (at least) the next ``ttl`` seconds."""
        await self._note_interest(keys=[self._interest_key(account_id)], args=[process, max(1, round(ttl * 1000))])

    async def drop_interest(self, account_id: int, process: str) -> None:
        await self.client.zrem(self._interest_key(account_id), process)

    async def other_interest(self, account_id: int, process: str) -> int:
        """How many *other* processes have viewers of the account right now."""
        return int(await self._other_interest(keys=[self._interest_key(account_id)], args=[process]))

    # --- account statuses for the accounts page ---------------------------------------------------

    def _status_key(self, account_id: int) -> str:
        return f"{self.prefix}:status:{int(account_id)}"

    async def publish_status(
        self, account_id: int, status: lp.Status, ttl: float, *, seq: int = 0, counts: tuple[int, int] | None = None
    ) -> None:
        """Written by the account's owner on every change and refreshed while it owns the account."""
        async with self.client.pipeline(transaction=False) as pipe:
            value = _status_json(status, seq, counts)
            pipe.set(self._status_key(account_id), value, px=max(1, round(ttl * 1000)))
            pipe.sadd(f"{self.prefix}:statuses", int(account_id))
            await pipe.execute()

    async def read_seq(self, account_id: int) -> int:
        """The seq the account's owner last wrote with its status; 0 when there is none."""
        raw = await self.client.get(self._status_key(account_id))
        entry = None if raw is None else _entry_from_json(raw)
        return 0 if entry is None else entry[1]

    async def clear_status(self, account_id: int) -> None:
        """The owner stopped feeding the account (nobody watches it): it is idle again."""
        await self.client.delete(self._status_key(account_id))

    # --- the per-key rate budget --------------------------------------------------------------------

    def budget(self, key: str, per_second: float, burst: float, max_block: float) -> SharedRateBudget:
        """The shared budget named ``key`` (:func:`orders.live.feed.budget.budget_key`)."""
        budget = self._budgets.get(key)
        if budget is None:
            budget = SharedRateBudget(self, f"{self.prefix}:budget:{key}", per_second, burst, max_block=max_block)
            self._budgets[key] = budget
        return budget

    async def bucket(
        self, key: str, per_second: float, burst: float, charge: float, block: float
    ) -> tuple[float, float]:
        """Apply a charge (and a block) to a shared bucket; its tokens and seconds still blocked after that."""
        args = [repr(float(value)) for value in (per_second, burst, charge, block)]
        tokens, blocked = await self._bucket(keys=[key], args=args)
        return float(tokens), float(blocked)

    # --- lifecycle ----------------------------------------------------------------------------------

    async def aclose(self) -> None:
        for budget in self._budgets.values():
            await budget.aclose()
        self._budgets.clear()
        await self.client.aclose()


class SharedRateBudget(RateBudget):
    """:class:`~orders.live.feed.budget.RateBudget` whose bucket lives in Redis, shared by every process.

    The feed asks the budget synchronously on its loop several times a second, so it reads a local
    copy; every charge and block is sent to Redis at once (in the background, in order), and the
    copy is re-read from Redis at least once a second while in use. Two processes may therefore
    both start a fetch on the same tokens within that second; the bucket then goes into debt that
    both wait out, which keeps the long-run rate within the budget (as a single process's bucket
    does after a fetch larger than expected). If Redis cannot be reached the local copy keeps
    pacing this process alone.
    """

    SYNC_SECONDS = 1.0

    def __init__(
        self,
        cluster: ClusterState,
        key: str,
        per_second: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_block: float = float("inf"),
    ) -> None:
        super().__init__(per_second, burst, clock, max_block=max_block)
        self._cluster = cluster
        self.key = key
        self._unsent_charge = 0.0
        self._unsent_block = 0.0
        self._synced_at = -float("inf")
        self._task: asyncio.Task[None] | None = None
        self._warned = False

    def wait_time(self, weight: float) -> float:
        if self._clock() - self._synced_at >= self.SYNC_SECONDS:
            self._schedule_sync()
        return super().wait_time(weight)

    def charge(self, weight: float) -> None:
        super().charge(weight)
        self._unsent_charge += weight
        self._schedule_sync()

    def block_for(self, seconds: float) -> None:
        seconds = min(max(seconds, 0.0), self.max_block)
        super().block_for(seconds)
        self._unsent_block = max(self._unsent_block, seconds)
        self._schedule_sync()

    async def sync(self) -> None:
        """Send what this process spent and read the shared bucket back (normally run in the background)."""
        while True:
            charge, self._unsent_charge = self._unsent_charge, 0.0
            block, self._unsent_block = self._unsent_block, 0.0
            try:
                tokens, blocked = await self._cluster.bucket(self.key, self.per_second, self.burst, charge, block)
            except Exception:
                # Keep pacing on the local copy; send the spending with the next successful sync.
                self._unsent_charge += charge
                self._unsent_block = max(self._unsent_block, block)
                self._synced_at = self._clock()
                if not self._warned:
                    self._warned = True
                    logger.warning("rate budget: Redis unreachable; pacing this process alone", exc_info=True)
                return
            self._warned = False
            now = self._clock()
            # Charges made while the call was in flight are not in Redis's answer yet.
            self._tokens = min(self.burst, tokens) - self._unsent_charge
            self._updated = now
            self._blocked_until = max(self._blocked_until, now + blocked)
            self._synced_at = now
            if not (self._unsent_charge or self._unsent_block):
                return

    def _schedule_sync(self) -> None:
        if self._task is not None and not self._task.done():
            return  # the running sync loops until nothing is left unsent
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on the feed's loop (a test poking the budget): stay local
        self._synced_at = self._clock()  # one sync at a time, even if it fails
        self._task = loop.create_task(self.sync(), name="qfex-feed-budget-sync")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


# --- reading statuses from any thread (the accounts page) -------------------------------------------

# Every (id, status) of the index; ids whose status expired (owner stopped or died) leave the index,
# atomically, so an owner re-adding its account meanwhile is never lost.
_READ_STATUSES = """
local result = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local value = redis.call('GET', ARGV[1] .. id)
  if value then
    table.insert(result, id)
    table.insert(result, value)
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return result
"""

_sync_clients: dict[str, Any] = {}


def read_overviews(url: str, prefix: str = "qfexdash") -> dict[int, tuple[lp.Status, tuple[int, int] | None]]:
    """Every account some process feeds right now: its status and (orders, TWAPs) counts (blocking; for pages).

    Raises the client's error when Redis cannot be reached; the caller decides what to show.
    """
    client = _sync_clients.get(url)
    if client is None:
        client = _sync_clients.setdefault(url, redis_client(url, asynchronous=False))
    pairs = client.eval(_READ_STATUSES, 1, f"{prefix}:statuses", f"{prefix}:status:")
    overviews: dict[int, tuple[lp.Status, tuple[int, int] | None]] = {}
    for account_id, raw in zip(pairs[::2], pairs[1::2], strict=True):
        entry = _entry_from_json(raw)
        if entry is not None:
            overviews[int(account_id)] = (entry[0], entry[2])
    return overviews
