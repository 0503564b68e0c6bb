"""Fixtures for the accounts tests: the shared personas plus switchable encryption keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.personas import *  # noqa: F403  (the persona fixtures)

# The key tests/conftest.py puts in the environment, and a second one for rotation tests.
KEY_OLD = "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM="
KEY_NEW = "8QjCFDdMtNIfhqhVwqJodWxM4NSClM8FY_WVfVfnfrs="
KEY_OTHER = "r32gVLDswsE_0SoemMyWo6_B1hK-426For0phhdySlE="


@pytest.fixture(autouse=True)
def _test_key_and_state(settings: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The fixed test key and a throwaway state folder for every test here.

    tests/conftest.py sets these in the environment, but pytest-django loads the settings before that
    conftest runs, so they are applied again here (restored after each test).
    """
    settings.QFEXDASH_ENCRYPTION_KEYS = [KEY_OLD]
    settings.STATE_DIR = tmp_path_factory.mktemp("state")


@pytest.fixture
def use_keys(settings: Any) -> Callable[..., None]:
    """``use_keys(KEY_NEW, KEY_OLD)`` configures those keys (the cache is cleared by setting_changed)."""

    def apply(*keys: str) -> None:
        settings.QFEXDASH_ENCRYPTION_KEYS = list(keys)

    return apply
