"""The shared harness (``bench/harness``): what every server under test inherits, and Daphne's life cycle."""

from __future__ import annotations

import ast
import http.client
from pathlib import Path

import pytest

from bench.harness.daphne import Daphne
from bench.harness.env import CLOSED_LOOPBACK_URL, server_env, sqlite_url

ROOT = Path(__file__).resolve().parents[2]
THE_ONE_PLACE = "bench/harness/daphne.py"


def _healthz(daphne: Daphne) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", daphne.port, timeout=60)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_server_under_test_never_inherits_where_to_connect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever the caller's environment points at (a developer's database, Redis, the real exchange, a
    debug setting), the server gets its own database and the exchange at a closed loopback port."""
    caller = {
        "DATABASE_URL": "postgres://someone@db.example.test/production",
        "REDIS_URL": "redis://cache.example.test:6379/0",
        "QFEX_TRADE_URL": "wss://trade.example.test",
        "QFEX_UAT_TRADE_URL": "wss://uat.example.test",
        "QFEXDASH_RATE_BUDGET_SHARE": "0.9",
        "DEBUG": "1",
        "CSRF_TRUSTED_ORIGINS": "https://desk.example.test",
        "SECURE_SSL_REDIRECT": "true",
        "DJANGO_SETTINGS_MODULE": "somewhere.else",
        "HOME_FOR_THE_TEST": "kept",
    }
    for name, value in caller.items():
        monkeypatch.setenv(name, value)
    env = server_env(tmp_path, QFEXDASH_RECONCILE_SECONDS="1")
    assert env["DATABASE_URL"] == sqlite_url(tmp_path)
    assert env["QFEX_TRADE_URL"] == env["QFEX_UAT_TRADE_URL"] == CLOSED_LOOPBACK_URL
    assert env["DEBUG"] == "0"
    assert env["DJANGO_SETTINGS_MODULE"] == "qfexdash.settings"
    for name in ("REDIS_URL", "QFEXDASH_RATE_BUDGET_SHARE", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT"):
        assert name not in env, name
    assert env["QFEXDASH_RECONCILE_SECONDS"] == "1"  # what the caller asks for goes on top
    assert env["HOME_FOR_THE_TEST"] == "kept"  # the rest of the caller's environment stays


def test_each_server_gets_keys_of_its_own(tmp_path: Path) -> None:
    first, second = server_env(tmp_path / "a"), server_env(tmp_path / "b")
    assert first["QFEXDASH_ENCRYPTION_KEYS"] != second["QFEXDASH_ENCRYPTION_KEYS"]
    assert first["SECRET_KEY"] != second["SECRET_KEY"]
    assert server_env(tmp_path, encryption_keys="")["QFEXDASH_ENCRYPTION_KEYS"] == ""


def test_daphne_keeps_its_address_across_a_stop_a_kill_and_restarts(tmp_path: Path) -> None:
    with Daphne(server_env(tmp_path), tmp_path / "daphne.log") as daphne:
        port = daphne.port
        daphne.start()
        assert daphne.running
        assert _healthz(daphne) == 200
        first = daphne.pid

        daphne.stop()
        assert not daphne.running
        daphne.stop()  # stopping a stopped server does nothing
        daphne.start()
        assert (daphne.port, daphne.starts) == (port, 2)
        assert daphne.pid != first
        assert _healthz(daphne) == 200

        daphne.kill()
        assert not daphne.running
        daphne.restart()
        assert daphne.port == port
        assert _healthz(daphne) == 200
        with pytest.raises(RuntimeError, match="already running"):
            daphne.start()
    assert not daphne.running
    assert daphne.listener.fileno() == -1  # closed with the block


# --- one way to start Daphne ------------------------------------------------------------------------------

# What starting Daphne takes: its command-line flag for an inherited socket, the application's dotted path,
# the executable beside Python's, or Daphne's own modules (an in-process server).
_DAPHNE_MARKS = frozenset({"--fd", "qfexdash.asgi:application"})


def starts_of_daphne(source: str, filename: str = "<source>") -> list[str]:
    """Every place in ``source`` that looks like it starts Daphne itself."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Constant) and node.value in _DAPHNE_MARKS:
            found.append(f"line {node.lineno}: {node.value!r}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "with_name"
            and any(isinstance(arg, ast.Constant) and arg.value == "daphne" for arg in node.args)
        ):
            found.append(f"line {node.lineno}: the daphne executable")
        elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "daphne" for a in node.names):
            found.append(f"line {node.lineno}: import daphne")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "daphne" and node.level == 0:
            found.append(f"line {node.lineno}: from {node.module} import …")
    return found


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ('subprocess.Popen([str(DAPHNE), "--fd", str(fd), APP])', True),
        ('run(["daphne", "-b", "127.0.0.1", "qfexdash.asgi:application"])', True),
        ('DAPHNE = Path(sys.executable).with_name("daphne")', True),
        ("from daphne.server import Server", True),
        ("import daphne.cli", True),
        ("from bench.harness.daphne import Daphne", False),
        ('tmp_path_factory.mktemp("daphne")', False),
        ('"""Daphne serves a socket this process owns (``--fd``)."""', False),  # prose, not a flag
    ],
)
def test_the_daphne_rule_catches_what_it_should(source: str, caught: bool) -> None:
    assert bool(starts_of_daphne(source)) is caught


def test_daphne_is_started_in_one_place() -> None:
    offenders = {}
    for folder in ("bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name in (THE_ONE_PLACE, "tests/bench/test_harness.py"):  # the harness, and this rule's examples
                continue
            found = starts_of_daphne(path.read_text(), name)
            if found:
                offenders[name] = found
    assert not offenders, (
        f"Tests and benchmarks start Daphne only through {THE_ONE_PLACE} (bench.harness.daphne.Daphne: the "
        f"loopback listener, environment, log file and readiness check in one place). Found: {offenders}"
    )
