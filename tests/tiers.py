"""The suite's two tiers: ``slow`` tests start Daphne, Chromium or another process; the rest run in this one.

``make test-fast`` runs ``-m "not slow"`` (the one-minute loop); ``make test`` runs both. Loaded with
``-p tests.tiers`` (pyproject's ``addopts``).

Which tests are slow is decided here, once, at collection:

- every test marked ``browser`` (Chromium) or ``services`` (PostgreSQL, Redis and their Daphne processes);
- every test that uses a fixture in :data:`PROCESS_FIXTURES`;
- every test under a node-id prefix in :data:`PROCESS_TESTS` (tests that start a process themselves).

The list cannot silently go stale: while a test that is *not* slow sets up or runs, starting a process
(``subprocess``, ``asyncio``'s subprocesses, Playwright's driver — all go through ``subprocess.Popen``)
fails that test with a message saying where to list it.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

# Fixtures that start Daphne, Chromium or another process.
PROCESS_FIXTURES = frozenset(
    {
        "chromium",  # tests/web/browser, tests/web/e2e: Chromium through Playwright
        "live_site",  # tests/web/browser: Chromium on the fake live server
        "site",  # tests/web/e2e and tests/live/consumers/test_daphne.py: Daphne
        "daphne_site",
    }
)

# Tests that start a process themselves (node-id prefixes, as pytest prints them).
PROCESS_TESTS = (
    "tests/soak/",  # the whole stack: simulator, Daphne, browser sockets
    "tests/bench/test_smoke.py",  # every benchmark once, each with its own Daphne
    "tests/bench/test_proc_sample.py::test_an_exited_unreaped_process_gives_none",
    "tests/bench/test_harness.py::test_daphne_keeps_",  # Daphne started, stopped, killed, restarted
    "tests/live/consumers/test_daphne.py",
    "tests/deploy/test_deploy.py::test_check_deploy_",  # manage.py check --deploy
    "tests/deploy/test_state_files.py",
    "tests/security/test_s_checks.py::test_s1_",  # check --deploy, a server that refuses to start
    "tests/security/test_s_checks.py::test_s8_",
    "tests/security/test_s_checks.py::test_s27_",
    "tests/security/test_secret_scan.py::test_a_run_that_leaks_",  # a pytest run inside the test
    "tests/security/test_secret_scan.py::test_the_same_run_without_leaks_",
    "tests/accounts/test_checks.py::test_manage_py_check_",
    "tests/commands/test_qfex_orders.py::test_failure_exits_non_zero_",
    "tests/simulator/test_command.py::test_command_serves_until_sigterm",
    "tests/live/test_metrics.py::test_a_bad_cidr_stops_start_up_",
    "tests/test_database_selection.py",  # a pytest run inside the test
    "tests/cluster/test_races.py",  # two racing processes on one database
    "tests/test_layout.py::test_no_tracked_file_names_",  # git ls-files
    "tests/test_settings.py::test_runs_with_no_environment_",  # Django started with a given environment
    "tests/test_settings.py::test_bad_value_stops_start_",
)

SLOW_MARKERS = ("browser", "services")


class ProcessInFastTest(Exception):
    """A test outside the slow tier started a process."""


def is_slow(item: pytest.Item) -> bool:
    if any(item.get_closest_marker(name) for name in (*SLOW_MARKERS, "slow")):
        return True
    if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    return item.nodeid.startswith(PROCESS_TESTS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)


@contextlib.contextmanager
def _no_process_started(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("slow") is not None:
        yield
        return
    nodeid = item.nodeid

    def execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise ProcessInFastTest(
            f"{nodeid} starts a process ({args!r}) but is not in the slow tier: list its fixture in "
            "tests/tiers.py PROCESS_FIXTURES, or the test in PROCESS_TESTS"
        )

    original = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]
    try:
        yield
    finally:
        subprocess.Popen._execute_child = original  # type: ignore[attr-defined]


# Around setup (fixtures of every scope the test is first to need) and the call; not teardown, which
# only stops what setup started.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _no_process_started(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_process_started(item):
        return (yield)
