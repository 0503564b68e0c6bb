"""Production readiness: ``check --deploy`` is clean under production settings (S1), and SECRET_KEY
rotates across processes without logging anyone out (the procedure of docs/deployment.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

from orders.live.access import session_user
from tests.personas import *  # noqa: F403  (the persona fixtures)

ROOT = Path(__file__).resolve().parents[2]
OLD_KEY = "old-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "new-secret-key-9876543210-zyxwvutsrqponmlkjihgfedcba"

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "prod-like-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH",
    "ALLOWED_HOSTS": "desk.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://desk.example.com",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "USE_X_FORWARDED_PROTO": "true",
    "QFEXDASH_STATIC_MANIFEST": "true",
    # Two keys, as during a rotation: the first encrypts, both decrypt.
    "QFEXDASH_ENCRYPTION_KEYS": ",".join(
        ["bmV3LXByb2R1Y3Rpb24ta2V5LWZvci10aGUtdGVzdCE=", "ZmFrZS10ZXN0LWtleS1mb3ItcWZleGRhc2gtdGVzdHM="]
    ),
    "REDIS_URL": "redis://127.0.0.1:6379/0",  # only parsed: check --deploy does not connect
    "DATABASE_URL": "postgres://qfexdash@127.0.0.1:5432/qfexdash",  # likewise
}


def _check_deploy(tmp_path: Path, overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    dropped = ("QFEX", "DATABASE", "REDIS", "DEBUG", "SECURE")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    environ.update({"QFEXDASH_STATE_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "qfexdash.settings"})
    environ.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    """S1: the documented production environment passes every deployment check, warnings included."""
    result = _check_deploy(tmp_path, PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("SECURE_HSTS_SECONDS", "0", "security.W004"),
        ("SESSION_COOKIE_SECURE", "false", "security.W012"),
        ("DEBUG", "true", "security.W018"),
    ],
)
def test_check_deploy_catches_a_missing_hardening(tmp_path: Path, name: str, value: str, check_id: str) -> None:
    """The check above can fail: one relaxed production setting is reported."""
    result = _check_deploy(tmp_path, {**PRODUCTION, name: value})
    assert result.returncode != 0
    assert check_id in result.stdout + result.stderr


# --- SECRET_KEY rotation across processes -----------------------------------------------------------


def _phase(settings: Any, key: str, fallbacks: list[str]) -> None:
    """What one process runs with at one step of the rotation."""
    settings.SECRET_KEY = key
    settings.SECRET_KEY_FALLBACKS = fallbacks


def _signed_in(client: Client) -> bool:
    response = client.get("/")
    return response.status_code == 200 and "/signin/" not in response.get("Location", "")


def _socket_user(session_key: str) -> Any:
    """What the WebSocket stack resolves for a cookie (orders.live.routing.SessionUserMiddleware)."""
    return session_user(SessionStore(session_key))


@pytest.mark.django_db
def test_secret_key_rotation_keeps_pages_and_sockets_signed_in(settings: Any, trader: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _phase(settings, OLD_KEY, [])
    client = Client()
    client.force_login(trader)
    cookie = client.cookies["sessionid"].value
    assert _socket_user(cookie) == trader

    # Step 1: every process learns the new key as a fallback (rolling restart): nothing changes yet.
    _phase(settings, OLD_KEY, [NEW_KEY])
    assert _socket_user(cookie) == trader
    assert _signed_in(client)

    # Step 2: the new key becomes SECRET_KEY, the old one a fallback. While the restart rolls, a process
    # still on step 1 and a process already on step 2 must both accept every session.
    _phase(settings, NEW_KEY, [OLD_KEY])
    assert _socket_user(cookie) == trader  # a socket opened with the old cookie still authenticates
    assert _signed_in(client)  # the page load re-signs the session with the new key (new cookie)
    renewed = client.cookies["sessionid"].value
    assert _socket_user(renewed) == trader
    _phase(settings, OLD_KEY, [NEW_KEY])  # a process not restarted yet reads the re-signed session
    assert _socket_user(renewed) == trader
    assert _signed_in(client)

    # Without the procedure (the new key alone), the same session would be signed out: the test has teeth.
    _phase(settings, NEW_KEY, [])
    fresh = Client()
    fresh.force_login(trader)
    _phase(settings, OLD_KEY, [])
    assert not _socket_user(fresh.cookies["sessionid"].value).is_authenticated
