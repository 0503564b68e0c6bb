"""The environment a server under test runs with — and every ``manage.py`` step that prepares its database.

Production settings (no debug), 127.0.0.1 as the only host, its own database (a SQLite file in its folder
unless told otherwise), state folder, encryption key and secret key, and the real exchange's URLs pointing
at a loopback port nobody listens on, so nothing can reach QFEX whatever an account says. From the caller's
environment it keeps only what cannot point the server elsewhere or change its settings (``PATH``,
``HOME``, locale and the like).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path

# Production and UAT at a loopback port nobody listens on.
CLOSED_LOOPBACK_URL = "ws://127.0.0.1:9"

# Variables of the caller's environment a server under test never inherits: its settings come from here.
_NOT_INHERITED = (
    "QFEX",
    "DATABASE",
    "REDIS",
    "CHANNEL_LAYER",
    "DEBUG",
    "LOG_LEVEL",
    "DJANGO_",
    "TEST_",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_",
    "SECURE_",
    "SESSION_COOKIE_",
    "USE_X_FORWARDED_PROTO",
)


def fresh_key() -> str:
    """A new 32-byte key in URL-safe base64 (the form of ``QFEXDASH_ENCRYPTION_KEYS``), for one run only."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def sqlite_url(folder: Path) -> str:
    """The ``DATABASE_URL`` of a SQLite file ``db.sqlite3`` in ``folder``."""
    return f"sqlite:///{folder / 'db.sqlite3'}"


def inherited(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) without anything that could configure the server."""
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if not name.startswith(_NOT_INHERITED)}


def server_env(
    folder: Path,
    *,
    database_url: str | None = None,
    encryption_keys: str | None = None,
    log_level: str = "WARNING",
    **settings: str,
) -> dict[str, str]:
    """The whole environment of a server whose files live in ``folder``; ``settings`` (environment
    variables) go on top. ``encryption_keys`` defaults to a fresh key; ``database_url`` to a SQLite file
    in ``folder``."""
    return {
        **inherited(),
        "DJANGO_SETTINGS_MODULE": "qfexdash.settings",
        "DATABASE_URL": database_url or sqlite_url(folder),
        "QFEXDASH_STATE_DIR": str(folder / "state"),
        "QFEXDASH_ENCRYPTION_KEYS": fresh_key() if encryption_keys is None else encryption_keys,
        "SECRET_KEY": "harness-" + base64.urlsafe_b64encode(os.urandom(36)).decode(),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": log_level,
        "QFEX_TRADE_URL": CLOSED_LOOPBACK_URL,
        "QFEX_UAT_TRADE_URL": CLOSED_LOOPBACK_URL,
        # The simulators listen on loopback: allow it as a custom endpoint (S22). Sign-in without a second
        # factor: the 2FA tests switch it on themselves (S30).
        "QFEXDASH_CUSTOM_ENDPOINTS": "127.0.0.1",
        "QFEXDASH_REQUIRE_2FA": "false",
        # Benchmarks and whole-stack tests open hundreds of sockets as one user; the per-user cap (S29)
        # is tested on its own (tests/live/consumers/test_limits.py).
        "QFEXDASH_WS_MAX_SOCKETS_PER_USER": "10000",
        **settings,
    }
