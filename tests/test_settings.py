"""Settings come from the environment, run with none at all, and fail loudly on bad values."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from qfexdash import env

ROOT = Path(__file__).resolve().parent.parent


def _start_django(extra_env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("QFEX", "DATABASE", "REDIS", "DEBUG"))}
    environ["QFEXDASH_STATE_DIR"] = str(tmp_path)
    environ.update(extra_env)
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','qfexdash.settings'); django.setup()"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )


def test_runs_with_no_environment_at_all(tmp_path: Path) -> None:
    result = _start_django({}, tmp_path)
    assert result.returncode == 0, result.stderr
    # The generated local SECRET_KEY is kept private to this machine.
    key_file = tmp_path / "secret_key"
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("QFEX_TRADE_URL", "https://trade.qfex.com"),
        ("QFEX_TRADE_URL", "not a url"),
        ("QFEX_TIMEOUT_SECONDS", "soon"),
        ("QFEXDASH_RECONCILE_SECONDS", "0"),
        ("CSRF_TRUSTED_ORIGINS", "https://*.example.com"),
        ("DATABASE_URL", "mysteriousdb://x"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
        ("SECRET_KEY", "short"),
        ("LOG_LEVEL", "LOUD"),
        ("CHANNEL_LAYER_CAPACITY", "lots"),
    ],
)
def test_bad_value_stops_start_naming_the_variable(name: str, value: str, tmp_path: Path) -> None:
    result = _start_django({name: value}, tmp_path)
    assert result.returncode != 0
    assert name in result.stderr


def test_env_readers() -> None:
    environ = {"FLAG": "yes", "N": "7", "L": " a, ,b ", "F": "0.25"}
    assert env.env_bool("FLAG", False, environ) is True
    assert env.env_bool("MISSING", True, environ) is True
    assert env.env_int("N", 1, environ) == 7
    assert env.env_list("L", [], environ) == ["a", "b"]
    assert env.env_float("F", 1.0, environ) == 0.25
    with pytest.raises(ImproperlyConfigured, match="N must be at most 5"):
        env.env_int("N", 1, environ, maximum=5)
    with pytest.raises(ImproperlyConfigured, match="ORIGINS"):
        env.env_origins("ORIGINS", {"ORIGINS": "https://desk.example.com/path"})
    assert env.env_origins("ORIGINS", {"ORIGINS": "https://desk.example.com/"}) == ["https://desk.example.com"]


def test_env_example_lists_every_variable_the_settings_read() -> None:
    settings_source = (ROOT / "qfexdash" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', settings_source))
    listed = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert read, "the pattern found no variables; the test would prove nothing"
    assert read - listed == set()


# --- one default per setting (the source rule itself: tests/test_source_rules.py) --------------------------


def test_every_setting_the_app_reads_is_defined_in_the_settings_module() -> None:
    from django.conf import settings

    read = {
        name
        for path in (ROOT / "orders").rglob("*.py")
        for name in re.findall(r"\bsettings\.([A-Z][A-Z0-9_]+)\b", path.read_text())
    }
    assert "QFEXDASH_REQUIRE_2FA" in read, "the pattern found nothing; the test would prove nothing"
    assert sorted(name for name in read if not hasattr(settings, name)) == []
