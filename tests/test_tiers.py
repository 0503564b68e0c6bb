"""The fast tier cannot quietly start processes (tests/tiers.py)."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace
from typing import Any

import pytest

from tests import tiers


class _Item(SimpleNamespace):
    """Just enough of a pytest item for the tier rules."""

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.markers else None


def _item(nodeid: str, *, markers: tuple[str, ...] = (), fixtures: tuple[str, ...] = ()) -> Any:
    return _Item(nodeid=nodeid, markers=markers, fixturenames=list(fixtures))


@pytest.mark.parametrize(
    ("item", "slow"),
    [
        (_item("tests/qfex/test_signing.py::test_v1"), False),
        (_item("tests/web/browser/test_tables.py::test_sort", markers=("browser",)), True),
        (_item("tests/cluster/test_leases.py::test_renew", markers=("services",)), True),
        (_item("tests/web/e2e/test_pages.py::test_sign_in", fixtures=("chromium", "db")), True),
        (_item("tests/soak/test_soak_smoke.py::test_every_fault"), True),
        (_item("tests/test_settings.py::test_bad_value_stops_start_naming_the_variable[DEBUG-maybe]"), True),
        (_item("tests/test_settings.py::test_env_example_lists_every_variable_the_settings_read"), False),
    ],
)
def test_the_tier_follows_markers_fixtures_and_the_list(item: Any, slow: bool) -> None:
    assert tiers.is_slow(item) is slow


def test_a_fast_test_that_starts_a_process_fails_saying_where_to_list_it() -> None:
    item = _item("tests/example/test_x.py::test_starts_git")
    with tiers._no_process_started(item), pytest.raises(tiers.ProcessInFastTest) as refused:
        subprocess.run(["git", "--version"], check=False, capture_output=True)
    assert "tests/example/test_x.py::test_starts_git" in str(refused.value)
    assert "PROCESS_FIXTURES" in str(refused.value)
