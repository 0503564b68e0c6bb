"""Test-wide fixtures and hooks. The environment itself is set in tests/early_env.py (loaded before Django)."""

import os
from collections.abc import Generator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.early_env import TEST_ENCRYPTION_KEY

__all__ = ["TEST_ENCRYPTION_KEY"]

# Property tests (hypothesis): the "ci" profile, used unless HYPOTHESIS_PROFILE says otherwise, is the same
# run everywhere — derandomised, a fixed number of examples and steps, no example database — so `make
# test-fast` stays within its time and a failure reproduces exactly. Its deadline stops a runaway example
# (a read that never ends); it is far above an example's normal run (well under a second), because it is
# not a speed test and this machine is shared. "explore" looks much harder, at random, for a session that
# hunts bugs: HYPOTHESIS_PROFILE=explore .venv/bin/pytest tests/live/feed/test_merge_properties.py
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    stateful_step_count=40,
    deadline=timedelta(seconds=10),
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile(
    "explore", max_examples=2_000, stateful_step_count=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so fixtures can tell, at teardown, that the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that use the site's database (the PostgreSQL pass: the others run the same "
        "code on either database, or start servers with their own SQLite file)",
    )


def _uses_database(item: pytest.Item) -> bool:
    # pytest-django's fixtures (db, transactional_db, ...) all go through _django_db_helper; the django_db
    # mark requests it at run time, so it is not in the fixture closure.
    return item.get_closest_marker("django_db") is not None or "_django_db_helper" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    kept = [item for item in items if _uses_database(item)]
    deselected = [item for item in items if not _uses_database(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(autouse=True)
def _fresh_socket_counts() -> None:
    """Each test starts with no live socket counted against anyone (S29's per-user cap): a test that ends
    with its sockets still open must not use up the next test's allowance (user ids repeat)."""
    from orders.live import consumers
    from orders.live.limits import SocketCounter

    consumers._open_sockets = SocketCounter()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings_parallel_suffix: None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """On SQLite, the test database is a file of this run (of this xdist worker), not Django's shared-cache
    memory database. In memory, a write while the feed's pool thread reads the same table fails at once with
    "database table is locked" (SQLite's table locks ignore the busy timeout); a file waits for the other
    connection like the site's own SQLite does."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("database") / "test.sqlite3")
