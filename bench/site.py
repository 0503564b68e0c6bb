"""qfexdash served by a real Daphne subprocess: the pieces every such benchmark and test shares.

Tests import this module; it never imports ``tests`` (``tests/test_layout.py`` checks that).

Nothing here imports Django: a site is prepared by ``manage.py`` subprocesses run with the same environment
Daphne gets, so the calling process shares no database connection or setting with the server.

- :func:`base_env` — the settings every one of these servers runs with, plus the caller's own
  (:func:`sqlite_url` for a private SQLite file);
- :func:`manage` / :func:`migrate` / :func:`run_setup` — ``manage.py`` commands, and a setup script run with
  ``manage.py shell`` that prints one line of JSON after a prefix;
- :func:`loopback_listener` — a listening socket on 127.0.0.1 this process owns, for ``daphne --fd``: a
  restart keeps the address, and a client connecting meanwhile simply waits in the listen queue;
- :func:`start_daphne` / :func:`stop_daphne` — Daphne on such a socket, logging to a file; SIGTERM, then SIGKILL.

Each caller keeps its own settings, timeouts and readiness checks.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAPHNE = Path(sys.executable).with_name("daphne")
APPLICATION = "qfexdash.asgi:application"


def base_env(
    inherited: Mapping[str, str],
    *,
    database_url: str,
    state_dir: Path,
    encryption_keys: str,
    secret_key: str,
    log_level: str,
    **settings: str,
) -> dict[str, str]:
    """``inherited`` plus the settings every server under test runs with (production settings, no debug,
    loopback host only), then ``settings`` (environment variables) on top."""
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "qfexdash.settings",
        "DATABASE_URL": database_url,
        "QFEXDASH_STATE_DIR": str(state_dir),
        "QFEXDASH_ENCRYPTION_KEYS": encryption_keys,
        "SECRET_KEY": secret_key,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": log_level,
        # The simulators listen on loopback: allow it as a custom endpoint (S22). Sign-in without a second
        # factor: the 2FA tests switch it on themselves (S30).
        "QFEXDASH_CUSTOM_ENDPOINTS": "127.0.0.1",
        "QFEXDASH_REQUIRE_2FA": "false",
        # Benchmarks and whole-stack tests open hundreds of sockets as one user; the per-user cap (S29)
        # is tested on its own (tests/live/consumers/test_limits.py).
        "QFEXDASH_WS_MAX_SOCKETS_PER_USER": "10000",
        **settings,
    }


def sqlite_url(folder: Path) -> str:
    """The ``DATABASE_URL`` of a SQLite file ``db.sqlite3`` in ``folder``."""
    return f"sqlite:///{folder / 'db.sqlite3'}"


def manage(env: Mapping[str, str], *args: str, timeout: float) -> str:
    """Run ``manage.py *args`` with ``env``; its standard output. A failure raises with the end of its stderr."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=dict(env),
        cwd=ROOT,
        check=False,
        timeout=timeout,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        # stderr may hold a traceback; it never holds a secret (they travel only in the environment).
        raise RuntimeError(f"manage.py {args[0]} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def migrate(env: Mapping[str, str], *, timeout: float) -> None:
    """Create or bring up to date the database of ``env``."""
    manage(env, "migrate", "--noinput", "-v", "0", timeout=timeout)


def run_setup(env: Mapping[str, str], script: str, *, timeout: float, prefix: str = "SETUP ") -> Any:
    """Run ``script`` with ``manage.py shell -c``; the JSON it printed on the line starting with ``prefix``."""
    out = manage(env, "shell", "-c", script, timeout=timeout)
    line = next(line for line in out.splitlines() if line.startswith(prefix))
    return json.loads(line[len(prefix) :])


def loopback_listener(backlog: int, *, reuse_address: bool = False) -> socket.socket:
    """A TCP socket listening on 127.0.0.1 (a free port), inheritable so Daphne can serve it (``--fd``)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse_address:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(backlog)
        listener.set_inheritable(True)
    except BaseException:
        listener.close()
        raise
    return listener


def start_daphne(
    env: Mapping[str, str], listener: socket.socket, log: Path, *, application: str = APPLICATION
) -> subprocess.Popen[bytes]:
    """``daphne --fd`` serving ``listener`` with ``env``, its output appended to ``log``; returns at once."""
    fd = listener.fileno()
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(DAPHNE), "--fd", str(fd), "-v", "0", application],
            env=dict(env),
            cwd=ROOT,
            pass_fds=(fd,),
            stdout=out,
            stderr=out,
        )


def stop_daphne(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited after ``timeout`` seconds; nothing if it is not running."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
