"""Test-wide fixtures and hooks. The environment itself is set in tests/early_env.py (loaded before Django)."""

from collections.abc import Iterator

import pytest

from tests.early_env import TEST_ENCRYPTION_KEY

__all__ = ["TEST_ENCRYPTION_KEY"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the item so fixtures can tell, at teardown, that the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
