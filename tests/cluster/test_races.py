"""Item 7 of issue 20, settled on two real processes, on SQLite and on PostgreSQL.

- A recovery code, or one TOTP code, posted by two requests at once: django-otp reads the code, then deletes
  it (or records its time step) — without a lock both requests could pass. Exactly one signs in; the other is
  told the code is not right (never a server error).
- Two team admins demoting each other at once: the last-admin rule (S31) checks, then writes. On PostgreSQL
  the other admins' rows are locked; SQLite ignores ``select_for_update``, so its transactions start
  ``IMMEDIATE`` (``qfexdash/settings.py``): the second waits for the first and sees its write.

Each racer holds its window open for a second (``tests/cluster/race_worker.py``), so without a lock the race
is lost every time, not once in a while.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django_otp.oath import totp

from bench.harness import ROOT
from bench.harness.cluster import PostgresDatabase
from bench.harness.env import server_env
from bench.harness.site import migrate

TIMEOUT = 120


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def race_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of every racer: a fresh database of the kind asked for, migrated."""
    database: PostgresDatabase | None = None
    if request.param == "postgres":
        request.getfixturevalue("services")  # skips (fails under CI) without PostgreSQL
        database = PostgresDatabase()
    env = server_env(
        tmp_path,
        database_url=database.url if database is not None else None,  # None: a SQLite file in tmp_path
        QFEXDASH_REQUIRE_2FA="true",
        RACE_GO=str(tmp_path / "go"),
    )
    try:
        migrate(env)
        yield env
    finally:
        if database is not None:
            database.drop()


def _run(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.cluster.race_worker", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return _result(done.stdout)


def _result(out: str) -> dict[str, Any]:
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def _start(env: dict[str, str], command: list[str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.cluster.race_worker", *command]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _race(env: dict[str, str], *commands: list[str]) -> list[dict[str, Any]]:
    """Start every racer, wait until each is ready, then let them all go at once."""
    racers = [_start(env, command) for command in commands]
    try:
        for racer in racers:
            assert racer.stdout is not None
            line = racer.stdout.readline()
            assert line.strip() == "READY", line + (racer.stderr.read() if racer.stderr else "")
        Path(env["RACE_GO"]).touch()
        outputs = [racer.communicate(timeout=TIMEOUT) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    for racer, (_out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err[-3000:]
    return [_result(out) for out, _err in outputs]


def _one_signed_in(results: list[dict[str, Any]]) -> None:
    assert [result["status"] for result in results].count(500) == 0, [r["page"][-800:] for r in results]
    assert sorted(result["signed_in"] for result in results) == [False, True]
    refused = next(result for result in results if not result["signed_in"])
    assert refused["status"] == 200
    assert "That code is not right" in refused["page"]


def test_a_recovery_code_used_at_once_by_two_processes_signs_in_once(race_env: dict[str, str]) -> None:
    sessions = _run(race_env, "setup")["sessions"]
    _one_signed_in(_race(race_env, *(["code", session, "racecode"] for session in sessions)))


def test_one_totp_code_used_at_once_by_two_processes_signs_in_once(race_env: dict[str, str]) -> None:
    setup = _run(race_env, "setup")
    token = f"{totp(bytes.fromhex(setup['totp_key'])):06d}"
    _one_signed_in(_race(race_env, *(["code", session, token] for session in setup["sessions"])))


def test_two_admins_demoting_each_other_at_once_leave_the_team_an_admin(race_env: dict[str, str]) -> None:
    _run(race_env, "setup")
    results = _race(race_env, ["demote", "alice"], ["demote", "bob"])
    assert ["demoted" in result for result in results].count(True) == 1, results
    refused = next(result for result in results if "refused" in result)
    assert "must keep at least one admin" in refused["refused"]
