"""docs/reliability.md's table of security checks and tests/security/test_s_checks.py index each other.

Every ``test_s<N>_…`` in test_s_checks.py has its row ``| S<N> …`` in the table, and every row names a test of
test_s_checks.py that exists and belongs to its check. A check without a passing test has no row: there is no
"pending" state (S32-S34 and S41 join the table with their tests).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
INDEX = ROOT / "tests" / "security" / "test_s_checks.py"


def _index_tests() -> dict[int, set[str]]:
    tests: dict[int, set[str]] = {}
    for node in ast.parse(INDEX.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (found := re.match(r"test_s(\d+)_", node.name)):
            tests.setdefault(int(found.group(1)), set()).add(node.name)
    return tests


def _rows() -> dict[int, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        if found := re.match(r"\| S(\d+) ", line):
            rows[int(found.group(1))] = line
    return rows


def test_every_check_of_the_index_has_its_row() -> None:
    missing = sorted(set(_index_tests()) - set(_rows()))
    assert not missing, f"docs/reliability.md has no row for S{missing}"


def test_every_row_names_an_index_test_of_its_own_check() -> None:
    tests = _index_tests()
    for number, row in _rows().items():
        named = set(re.findall(r"test_s_checks\.py::(test_s\d+_\w+)", row))
        assert named, f"the row of S{number} names no test of test_s_checks.py"
        assert named <= tests.get(number, set()), f"S{number}: {sorted(named - tests.get(number, set()))}"
