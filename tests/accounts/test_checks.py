"""S8: missing or malformed encryption keys are a system-check error and refuse to start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from orders.accounts.encryption import EncryptionKeyError
from orders.checks import check_encryption_keys, validate_encryption_keys
from tests.accounts.conftest import KEY_NEW, KEY_OLD

ROOT = Path(__file__).resolve().parents[2]
BAD_KEY = "zz%not*a*key%zz"


def test_valid_keys_pass(use_keys) -> None:
    use_keys(KEY_NEW, KEY_OLD)
    assert check_encryption_keys() == []
    validate_encryption_keys()


@pytest.mark.parametrize("keys", [[BAD_KEY], [], [KEY_NEW, KEY_NEW]], ids=["malformed", "missing", "duplicate"])
def test_bad_keys_are_an_error_when_debug_is_off(use_keys, settings, keys) -> None:
    settings.DEBUG = False
    use_keys(*keys)
    messages = check_encryption_keys()
    assert [(type(m), m.id) for m in messages] == [(checks.Error, "orders.E001")]
    assert "QFEXDASH_ENCRYPTION_KEYS" in messages[0].msg
    assert BAD_KEY not in messages[0].msg
    assert KEY_NEW not in messages[0].msg
    with pytest.raises(EncryptionKeyError):
        validate_encryption_keys()


def test_bad_keys_are_only_a_warning_in_debug(use_keys, settings) -> None:
    settings.DEBUG = True
    use_keys(BAD_KEY)
    assert [(type(m), m.id) for m in check_encryption_keys()] == [(checks.Warning, "orders.W001")]


def test_check_is_registered_and_fails_the_check_command(use_keys, settings) -> None:
    settings.DEBUG = False
    use_keys(BAD_KEY)
    assert "orders.E001" in [message.id for message in checks.run_checks()]
    with pytest.raises(SystemCheckError, match=r"orders\.E001"):
        call_command("check")


def test_manage_py_check_refuses_a_malformed_key(tmp_path: Path) -> None:
    """A real process start with a bad key stops with a clear message that does not echo the key."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("QFEX", "DATABASE", "REDIS", "DEBUG"))}
    environ.update({"QFEXDASH_STATE_DIR": str(tmp_path), "QFEXDASH_ENCRYPTION_KEYS": BAD_KEY, "DEBUG": "false"})
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "orders.E001" in result.stderr
    assert "QFEXDASH_ENCRYPTION_KEYS" in result.stderr
    assert BAD_KEY not in result.stderr + result.stdout
