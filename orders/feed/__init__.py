"""The live feed: one upstream QFEX session per account, shared by every viewer (see :mod:`orders.feed.service`).

Consumers, views and tests use only what this module exports. The package, one job per module:

- :mod:`~orders.feed.service` — the process's :class:`Feed`: viewers, the public API, lifecycle;
- :mod:`~orders.feed.account` — one account in this process: viewers, publishing, owner or follower role;
- :mod:`~orders.feed.state` — pure account state: rows, seq, status, Closed list; applies a push, a fetch
  result or a published diff (no I/O), with :mod:`~orders.feed.lifecycle` (what a push's status means);
- :mod:`~orders.feed.worker` — the upstream worker: session, schedule (:mod:`~orders.feed.schedule`),
  budget (:mod:`~orders.feed.budget`), backoff; exists only while this process owns the account;
- :mod:`~orders.feed.upstream` — the blocking calls (database, QFEX), run in the feed's pool;
- :mod:`~orders.feed.reader` — the one thread that reads every idle upstream session;
- :mod:`~orders.feed.ownership` — who owns an account: always this process, or a Redis lease
  (:mod:`~orders.feed.leases`) renewed in one isolated tick;
- :mod:`~orders.feed.cluster`, :mod:`~orders.feed.follower`, :mod:`~orders.feed.redis_state` — several
  server processes: the inbox and ticker, the follower's mirror, the keys shared in Redis;
- :mod:`~orders.feed.config` — the tunables.
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
