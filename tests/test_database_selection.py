"""``--database-tests-only`` (the PostgreSQL pass of CI) keeps every test that uses the database, and only those."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Tests that all use the database through fixtures, a file where one test of several has the django_db mark,
# and tests that never touch the database.
DATABASE_FILE = "tests/accounts/test_rotation.py"
MIXED_FILE = "tests/deploy/test_deploy.py"
MARKED_TEST = f"{MIXED_FILE}::test_secret_key_rotation_keeps_pages_and_sockets_signed_in"
PURE_FILE = "tests/qfex/test_signing.py"


def _collected(*options: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_only_tests_that_use_the_database_are_kept() -> None:
    everything = _collected(DATABASE_FILE, MIXED_FILE, PURE_FILE)
    kept = _collected("--database-tests-only", DATABASE_FILE, MIXED_FILE, PURE_FILE)

    database_tests = [test for test in everything if test.startswith(DATABASE_FILE)]
    assert database_tests, "the database file has tests"
    assert MARKED_TEST in everything
    assert sum(test.startswith(MIXED_FILE) for test in everything) > 1, "the mixed file has tests without the mark"
    assert any(test.startswith(PURE_FILE) for test in everything), "the pure file has tests"
    assert kept == [*database_tests, MARKED_TEST]
