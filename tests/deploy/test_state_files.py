"""S27: production never quietly uses a key kept beside the database, and local state is private.

``check --deploy`` fails (orders.E002) when DEBUG is off and the only encryption key is the generated
file in the state folder; the SQLite file, the generated keys and the folder itself are created readable
by their owner only (files 0600, folder 0700), whatever the umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.deploy.test_deploy import PRODUCTION, ROOT, _check_deploy


def test_a_key_only_in_the_state_folder_fails_check_deploy(tmp_path: Path) -> None:
    (tmp_path / "encryption_key").write_text("bmV3LXByb2R1Y3Rpb24ta2V5LWZvci10aGUtdGVzdCE=\n")
    result = _check_deploy(tmp_path, {**PRODUCTION, "QFEXDASH_ENCRYPTION_KEYS": ""})
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "orders.E002" in output
    assert "beside the database" in output
    assert "bmV3LXByb2R1Y3Rpb24ta2V5" not in output  # the key itself is never printed


def test_the_same_key_in_the_environment_is_clean(tmp_path: Path) -> None:
    (tmp_path / "encryption_key").write_text("bmV3LXByb2R1Y3Rpb24ta2V5LWZvci10aGUtdGVzdCE=\n")
    result = _check_deploy(tmp_path, PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "orders.E002" not in result.stdout + result.stderr


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_files_are_created_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "state"
    dropped = ("QFEX", "DATABASE", "REDIS", "SECRET_KEY", "DJANGO")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update({"DJANGO_SETTINGS_MODULE": "qfexdash.settings", "QFEXDASH_STATE_DIR": str(state), "DEBUG": "true"})
    script = (
        "import django; django.setup();"
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "from orders.accounts.encryption import ensure_local_key_file; ensure_local_key_file()"
    )
    subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=180, preexec_fn=lambda: os.umask(0o022)
    )
    assert _mode(state) == 0o700
    files = sorted(path.name for path in state.iterdir())
    assert {"db.sqlite3", "secret_key", "encryption_key"} <= set(files), files
    for path in state.iterdir():
        assert _mode(path) == 0o600, (path.name, oct(_mode(path)))
