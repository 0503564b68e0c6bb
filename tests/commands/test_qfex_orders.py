"""qfex_orders against the simulator over loopback: exact output, and one-line failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.simulator import SimAccount, Simulator
from tests.personas import *  # noqa: F403
from tests.personas import KEYS, point_at

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = SimAccount(public_key="qfex_pub_cli", secret="qfex_secret_cli_0001", orders=40, twaps=3)


@pytest.fixture
def sim():
    with Simulator([ACCOUNT], seed=3) as simulator:
        yield simulator


def _run(*args: str) -> str:
    out = StringIO()
    call_command("qfex_orders", *args, stdout=out)
    return out.getvalue()


def test_json_output_is_every_field_exactly_as_received(sim, monkeypatch) -> None:
    monkeypatch.setenv("QFEX_SECRET_KEY", ACCOUNT.secret)
    out = _run("--url", sim.url, "--public-key", ACCOUNT.public_key, "--format", "json")
    printed = json.loads(out, parse_float=Decimal)
    truth = json.loads(json.dumps(sim.open_orders(ACCOUNT.public_key)), parse_float=Decimal)
    assert sorted(printed["orders"], key=lambda o: o["order_id"]) == sorted(truth, key=lambda o: o["order_id"])
    twaps_truth = json.loads(json.dumps(sim.active_twaps(ACCOUNT.public_key)), parse_float=Decimal)
    assert sorted(printed["twaps"], key=lambda t: t["twap_id"]) == sorted(twaps_truth, key=lambda t: t["twap_id"])


def test_symbol_filter_and_table(sim, monkeypatch) -> None:
    monkeypatch.setenv("QFEX_SECRET_KEY", ACCOUNT.secret)
    symbol = sim.open_orders(ACCOUNT.public_key)[0]["symbol"]
    expected = [o for o in sim.open_orders(ACCOUNT.public_key) if o["symbol"] == symbol]
    out = _run("--url", sim.url, "--public-key", ACCOUNT.public_key, "--symbol", symbol)
    assert out.splitlines()[0] == f"{len(expected)} open orders"
    for order in expected:
        assert order["order_id"] in out
    other_symbols = {o["symbol"] for o in sim.open_orders(ACCOUNT.public_key)} - {symbol}
    assert not any(f" {other} " in out for other in other_symbols)


def test_rejected_key_is_one_line_without_the_secret(sim, monkeypatch) -> None:
    monkeypatch.setenv("QFEX_SECRET_KEY", "qfex_secret_wrong_value")
    with pytest.raises(CommandError) as caught:
        _run("--url", sim.url, "--public-key", ACCOUNT.public_key)
    message = str(caught.value)
    assert "rejected" in message.lower()
    assert "qfex_secret_wrong_value" not in message
    assert "\n" not in message


def test_secret_is_never_taken_from_the_command_line(monkeypatch) -> None:
    monkeypatch.delenv("QFEX_SECRET_KEY", raising=False)
    with pytest.raises(CommandError, match="QFEX_SECRET_KEY"):
        _run("--url", "ws://127.0.0.1:9", "--public-key", "k")


def test_failure_exits_non_zero_with_no_traceback(sim) -> None:
    env = {**os.environ, "QFEX_SECRET_KEY": "qfex_secret_wrong_value"}
    result = subprocess.run(
        [sys.executable, "manage.py", "qfex_orders", "--url", sim.url, "--public-key", ACCOUNT.public_key],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "qfex_secret_wrong_value" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unreachable_exchange_is_one_clear_line(monkeypatch) -> None:
    monkeypatch.setenv("QFEX_SECRET_KEY", "x")
    with pytest.raises(CommandError) as caught:
        _run("--url", "ws://127.0.0.1:9", "--public-key", "k", "--timeout", "2")
    assert "\n" not in str(caught.value)
    assert str(caught.value)


@pytest.mark.django_db
def test_stored_account_by_label(owner_account) -> None:
    public_key, secret = KEYS[owner_account.label]
    stored = SimAccount(public_key=public_key, secret=secret, orders=7, twaps=1)
    with Simulator([stored], seed=5) as simulator:
        point_at(owner_account, simulator.url)
        printed = json.loads(_run("--account", owner_account.label, "--format", "json"))
        assert {o["order_id"] for o in printed["orders"]} == {o["order_id"] for o in simulator.open_orders(public_key)}
