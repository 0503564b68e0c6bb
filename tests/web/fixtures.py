"""Fixtures shared by the page and admin tests: the test key, fast passwords, a clean cache, signed-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

__all__ = ["TEST_KEY", "_page_test_settings", "client_for"]

TEST_KEY = "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM="


@pytest.fixture(autouse=True)
def _page_test_settings(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # tests/conftest.py sets the key in the environment, but pytest-django reads settings before it runs.
    settings.QFEXDASH_ENCRYPTION_KEYS = [TEST_KEY]
    settings.STATE_DIR = tmp_path_factory.mktemp("state")
    # Persona fixtures create many users; the default hasher would make every test slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The sign-in throttle counts in the cache, which must not carry over between tests.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def client_for() -> Callable[..., Client]:
    """``client_for(user)`` is a test client signed in as ``user`` (``None``: anonymous)."""

    def make(user: Any, **kwargs: Any) -> Client:
        client = Client(**kwargs)
        if user is not None:
            client.force_login(user)
        return client

    return make
