"""S12/S14: secrets never appear in logs, command output, the audit trail or the database in clear."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from orders.accounts import display, exchange_accounts
from orders.models import AuditEvent, ExchangeAccount
from orders.simulator import SimAccount, Simulator
from tests.accounts.conftest import KEY_NEW, KEY_OLD
from tests.personas import KEYS, point_at

CLI_SECRET = "qfex_secret_cli_leak_check_6b2e8d41f7"
WRONG_SECRET = "qfex_secret_wrong_leak_check_93ac51"
REPLACED_SECRET = "qfex_secret_replaced_leak_check_2f6d"
ALL_SECRETS = [secret for _public, secret in KEYS.values()] + [CLI_SECRET, WRONG_SECRET, REPLACED_SECRET]
KEY_MATERIAL = [KEY_OLD, KEY_NEW]


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    accounts = [SimAccount(public_key=public, secret=secret, orders=2, twaps=0) for public, secret in KEYS.values()]
    accounts.append(SimAccount(public_key="qfex_pub_cli", secret=CLI_SECRET, orders=2, twaps=0))
    sim = Simulator(accounts=accounts, seed=3, host="127.0.0.1", port=0)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def _all_database_text() -> str:
    """Every value of every row of every table, as text (works for SQLite and PostgreSQL alike)."""
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608  (table names from introspection)
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def _database_file_bytes() -> bytes:
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]  # SQLite's has it
        return b""
    return Path(connection.settings_dict["NAME"]).read_bytes()


def _assert_clean(text: str, where: str) -> None:
    for secret in ALL_SECRETS + KEY_MATERIAL:
        assert secret not in text, f"a secret or key appeared in {where}"


def test_a_full_account_lifecycle_leaks_no_secret(personas, simulator, use_keys, monkeypatch, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("orders", "websocket", "django", "django.db.backends"):
        caplog.set_level(logging.DEBUG, logger=name)
    # Log every SQL statement with its parameters too: the ciphertext may appear there, the secret must not.
    monkeypatch.setattr(connection, "force_debug_cursor", True)
    outputs: list[str] = []

    def run(*args: str) -> None:
        out, err = StringIO(), StringIO()
        try:
            call_command(*args, stdout=out, stderr=err)
        except CommandError as exc:
            outputs.append(str(exc))
        outputs.extend([out.getvalue(), err.getvalue()])

    monkeypatch.setenv("QFEX_SECRET_KEY", CLI_SECRET)
    run("qfex_account", "add", "--label", "CLI", "--owner", "olivia_owner", "--public-key", "qfex_pub_cli",
        "--endpoint", simulator.url)  # fmt: skip
    monkeypatch.setenv("QFEX_SECRET_KEY", WRONG_SECRET)
    run(
        "qfex_account",
        "add",
        "--label",
        "Refused",
        "--owner",
        "olivia_owner",
        "--public-key",
        "qfex_pub_cli",
        "--endpoint",
        simulator.url,
    )  # fmt: skip  (QFEX rejects it: not stored)
    run("qfex_account", "add", "--label", "Wrong", "--owner", "olivia_owner", "--public-key", "qfex_pub_cli",
        "--endpoint", simulator.url, "--no-verify")  # fmt: skip
    for account in ExchangeAccount.objects.filter(label__in=KEYS):  # the two CLI accounts are there already
        point_at(account, simulator.url)
    run("qfex_account", "verify", "CLI")
    run("qfex_account", "verify", "Wrong")  # rejected by the simulator
    run("qfex_account", "verify", "Desk A main")
    exchange_accounts.account_set_secret(
        actor=personas.owner, account=ExchangeAccount.objects.get(label="Owner personal"), secret=REPLACED_SECRET
    )
    use_keys(KEY_NEW, KEY_OLD)
    run("rotate_encryption_keys", "--dry-run")
    run("rotate_encryption_keys")
    use_keys(KEY_NEW)
    run("qfex_account", "verify", "Owner personal")  # fails: the simulator knows the old secret
    run("qfex_account", "list")
    run("qfex_account", "list", "--format", "json")
    states = [repr(display.account_key_status(account)) for account in ExchangeAccount.objects.all()]

    assert ExchangeAccount.objects.get(label="CLI").last_verified_at is not None  # the flow really ran
    assert ExchangeAccount.objects.get(label="Wrong").last_error
    assert not ExchangeAccount.objects.filter(label="Refused").exists()
    assert any("QFEX did not accept this key, so nothing was stored" in output for output in outputs)
    assert "secret_ciphertext" in caplog.text  # the SQL log was really captured
    captured = capsys.readouterr()
    _assert_clean(caplog.text, "the logs")
    _assert_clean("\n".join(outputs), "command output")
    _assert_clean(captured.out + captured.err, "stdout/stderr")
    _assert_clean("\n".join(states), "account states")
    _assert_clean(repr(list(AuditEvent.objects.values())), "the audit trail")
    _assert_clean(_all_database_text(), "the database")
    file_bytes = _database_file_bytes()
    for secret in ALL_SECRETS:
        assert secret.encode() not in file_bytes


def test_list_json_never_contains_secret_material(personas) -> None:
    """S14: what ``list`` prints has no secret, no ciphertext and no hint."""
    out = StringIO()
    call_command("qfex_account", "list", "--format", "json", stdout=out)
    rows = json.loads(out.getvalue())
    assert rows
    for row in rows:
        assert not {"secret", "secret_ciphertext", "secret_hint", "binding"} & set(row)
    for account in ExchangeAccount.objects.all():
        assert account.secret_ciphertext not in out.getvalue()
    _assert_clean(out.getvalue(), "list output")
