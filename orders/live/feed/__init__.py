"""The live feed: one upstream QFEX session per account, shared by every viewer (see :mod:`orders.live.feed.service`).

Consumers, views and tests use only what this module exports. The package, one job per module:

- :mod:`~orders.live.feed.service` — the process's :class:`Feed`: viewers, the public API, lifecycle;
- :mod:`~orders.live.feed.account` — one account in this process: viewers, publishing, owner or follower role;
- :mod:`~orders.live.feed.state` — pure account state: rows, seq, status, Closed list; applies a push, a fetch
  result or a published diff (no I/O), with :mod:`~orders.live.feed.lifecycle` (what a push's status means);
- :mod:`~orders.live.feed.worker` — the upstream worker: session, schedule (:mod:`~orders.live.feed.schedule`),
  budget (:mod:`~orders.live.feed.budget`), backoff; exists only while this process owns the account;
- :mod:`~orders.live.feed.upstream` — the blocking calls (database, QFEX), run in the feed's pool;
- :mod:`~orders.live.feed.reader` — the one thread that reads every idle upstream session;
- :mod:`~orders.live.feed.ownership` — who owns an account: always this process, or a Redis lease
  (:mod:`~orders.live.feed.leases`) renewed in one isolated tick;
- :mod:`~orders.live.feed.cluster`, :mod:`~orders.live.feed.follower`, :mod:`~orders.live.feed.redis_state` — several
  server processes: the inbox and ticker, the follower's mirror, the keys shared in Redis;
- :mod:`~orders.live.feed.config` — the tunables.
"""

from .account import MESSAGE_TYPE, FeedSnapshot, FeedStats
from .config import FeedConfig, group_name
from .service import (
    AccountOverview,
    Feed,
    account_overviews,
    account_statuses,
    current_feed,
    get_feed,
    shutdown_feed,
)

__all__ = [
    "MESSAGE_TYPE",
    "AccountOverview",
    "Feed",
    "FeedConfig",
    "FeedSnapshot",
    "FeedStats",
    "account_overviews",
    "account_statuses",
    "current_feed",
    "get_feed",
    "group_name",
    "shutdown_feed",
]
