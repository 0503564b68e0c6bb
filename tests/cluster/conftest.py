"""Tests on the machine's real PostgreSQL and Redis (marker ``services``).

Where they are: ``QFEXDASH_TEST_POSTGRES_URL`` (default ``postgres://postgres@127.0.0.1:5432/postgres``,
a role that may create databases) and ``QFEXDASH_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
When either does not answer, these tests are skipped with the reason — except under CI
(``CI=true``), where a missing service is a failure: CI must prove the cluster works, not skip it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from bench.harness.cluster import POSTGRES_ADMIN_URL, REDIS_URL, delete_redis_keys, services_problem, unique_name


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    """The service URLs; skips (fails under CI) when PostgreSQL or Redis is not reachable."""
    problem = services_problem()
    if problem:
        message = (
            f"needs PostgreSQL and Redis on this machine: not reachable: {problem}. Start them (see README, "
            "'Running several processes') or point QFEXDASH_TEST_POSTGRES_URL / QFEXDASH_TEST_REDIS_URL at them."
        )
        if _in_ci():
            pytest.fail(f"CI=true and a service is missing — {message}", pytrace=False)
        pytest.skip(message)
    return {"postgres": POSTGRES_ADMIN_URL, "redis": REDIS_URL}


@pytest.fixture
def redis_prefix(services: dict[str, str]) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = unique_name("qfexdash-test").replace("_", "-")
    yield prefix
    delete_redis_keys(services["redis"], prefix)


@pytest.fixture
async def redis_client(services: dict[str, str]) -> AsyncIterator[object]:
    from orders.live.feed.redis_state import redis_client

    client = redis_client(services["redis"])
    yield client
    await client.aclose()
