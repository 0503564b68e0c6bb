"""A real multi-process site on the machine's PostgreSQL and Redis, for tests and benchmarks.

:class:`ClusterSite` creates a throwaway PostgreSQL database, migrates it, stores one user, one session and
exchange accounts pointing at a simulator (:func:`bench.harness.site.prepare`), and runs several
:class:`~bench.harness.daphne.Daphne` processes that share that database and one Redis (under a key
prefix of its own, so parallel runs never meet). Each process keeps its address across a kill and a
restart. :class:`Page` is what the page script does with the messages of one account.

Nothing here imports pytest: the services tests (``tests/cluster/``) and the benchmarks
(``bench/live/cluster.py``) share it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import websocket

from bench.harness.daphne import Daphne
from bench.harness.env import server_env
from bench.harness.site import Account, Person, SiteSpec, prepare

# Where this machine's services are; override for another machine.
POSTGRES_ADMIN_URL = os.environ.get("QFEXDASH_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("QFEXDASH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
USERNAME = "cluster_user"


def services_problem(postgres_url: str = POSTGRES_ADMIN_URL, redis_url: str = REDIS_URL) -> str | None:
    """None when PostgreSQL and Redis answer; otherwise what is missing, in words."""
    problems = []
    try:
        import psycopg

        with psycopg.connect(_libpq(postgres_url), connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:
        problems.append(f"PostgreSQL at {_where(postgres_url)} ({type(exc).__name__}: {str(exc).strip()[:200]})")
    try:
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=3, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        problems.append(f"Redis at {_where(redis_url)} ({type(exc).__name__}: {str(exc).strip()[:200]})")
    return "; ".join(problems) or None


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def unique_name(stem: str) -> str:
    return f"{stem}_{os.getpid()}_{secrets.token_hex(4)}"


class PostgresDatabase:
    """A fresh database on the server of ``admin_url``, dropped (even with open connections) by ``drop``."""

    def __init__(self, admin_url: str = POSTGRES_ADMIN_URL, name: str | None = None) -> None:
        import psycopg

        self.admin_url = admin_url
        self.name = name or unique_name("qfexdash_cluster")
        with psycopg.connect(_libpq(admin_url), autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        self.url = _with_database(admin_url, self.name)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(_libpq(self.admin_url), autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def delete_redis_keys(redis_url: str, prefix: str) -> int:
    """Remove every key under ``prefix`` (what one test run or one site left behind)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        client.close()


@dataclass
class ClusterSite:
    """Several Daphne processes of one site on PostgreSQL + Redis, watching simulator accounts."""

    workdir: Path
    sim_url: str
    keys: list[tuple[str, str]]
    processes: int = 2
    settings: dict[str, str] = field(default_factory=dict)
    postgres_admin_url: str = POSTGRES_ADMIN_URL
    redis_url: str = REDIS_URL
    patience: float = 30.0

    def __post_init__(self) -> None:
        self.prefix = unique_name("qfexdash-test").replace("_", "-")
        self.database: PostgresDatabase | None = None
        self.nodes: list[Daphne] = []
        self.accounts: list[int] = []
        self.session = ""
        self.env: dict[str, str] = {}

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> ClusterSite:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.database = PostgresDatabase(self.postgres_admin_url)
            self.env = self._environment(self.database.url)
            entered = tuple(Account(f"Cluster {n}", key, secret) for n, (key, secret) in enumerate(self.keys, 1))
            prepared = prepare(self.env, SiteSpec(self.sim_url, (Person(USERNAME, entered),)))
            self.accounts = [prepared.accounts[account.label] for account in entered]
            self.session = prepared.sessions[USERNAME]
            for index in range(self.processes):
                self.nodes.append(Daphne(self.env, self.workdir / f"daphne-{index}.log", patience=2 * self.patience))
                self.start_process(index)
        except BaseException:
            self.close()
            raise
        return self

    def _environment(self, database_url: str) -> dict[str, str]:
        settings = {
            "REDIS_URL": self.redis_url,
            "QFEXDASH_REDIS_PREFIX": self.prefix,
            "QFEXDASH_RECONCILE_SECONDS": "1",
            # A reconcile a second needs more than the default share of the key's budget (the reconcile
            # interval stretches to stay within it): give it room, so the interval is the one set here.
            "QFEXDASH_RATE_BUDGET_SHARE": "0.5",
            "QFEXDASH_LEASE_SECONDS": "3",
            "QFEX_TIMEOUT_SECONDS": "3",
            "QFEXDASH_BACKOFF_BASE_SECONDS": "0.2",
            "QFEXDASH_BACKOFF_CAP_SECONDS": "1",
            "QFEXDASH_WS_RATE": "1000",
        }
        # The caller's settings win (the benchmarks run on the project's defaults, some tests on a long lease).
        return server_env(self.workdir, database_url=database_url, log_level="INFO", **{**settings, **self.settings})

    def start_process(self, index: int) -> None:
        """Start process ``index`` (again) on its own address; returns once it answers."""
        self.nodes[index].start()

    def stop_process(self, index: int) -> None:
        """SIGTERM: the process shuts down cleanly (an owner releases its lease on the way out)."""
        self.nodes[index].stop(self.patience)

    def kill_process(self, index: int) -> None:
        """SIGKILL: no shutdown code runs, the lease is not released (an owner that dies)."""
        self.nodes[index].kill()

    def close(self) -> None:
        for node in self.nodes:
            node.stop(self.patience)
        for node in self.nodes:
            node.close()
        self.nodes = []
        if self.database is not None:
            self.database.drop()
            self.database = None
        delete_redis_keys(self.redis_url, self.prefix)

    def __enter__(self) -> ClusterSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- browsers -----------------------------------------------------------------------------------

    def open(self, index: int, account: int | None = None, *, timeout: float | None = None) -> websocket.WebSocket:
        """A browser socket to process ``index`` watching ``account`` (default: the first)."""
        node = self.nodes[index]
        account = self.accounts[0] if account is None else account
        return websocket.create_connection(
            node.ws_url(f"/ws/accounts/{account}/"),
            origin=node.origin,
            cookie=f"sessionid={self.session}",
            timeout=timeout or self.patience,
        )

    def logs(self) -> str:
        return "\n".join(f"--- {node.log.name}\n{node.log_text()}" for node in self.nodes)
