"""The qfex_simulator management command: argument checks, and a real run stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.management.commands.qfex_simulator import build_simulator
from orders.simulator import DEMO_ACCOUNTS, SimAccount

from .conftest import PATIENT, authed

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "nope=1"], "unknown fault 'nope'"),
        (["--fault", "reply_delay=abc"], "reply_delay must be a number"),
        (["--fault", "reply_delay=-2"], "reply_delay must be 0 or more"),
        (["--fault", "silent=maybe"], "silent must be true or false"),
        (["--fault", "response_shape=newest"], "response_shape must be one of current, mid, legacy"),
        (["--fault", "page_cap=0"], "page_cap must be greater than 0"),
        (["--fault", "reply_delay"], "NAME=VALUE"),
        (["--port", "70000"], "--port: must be a whole number from 0 to 65535"),
        (["--port", "http"], "--port: must be a whole number"),
        (["--pace", "-1"], "--pace: must be a number, 0 or more"),
        (["--page-latency", "nan"], "--page-latency: must be a number, 0 or more"),
        (["--seed", "1.5"], "--seed: must be a whole number"),
        (["--page-order", "random"], "--page-order: invalid choice: 'random'"),
    ],
)
def test_bad_arguments_are_command_errors(args: list[str], message: str):
    with pytest.raises(CommandError) as caught:
        call_command("qfex_simulator", *args)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value).strip()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "non-empty JSON list"),
        ('[{"public_key": "k"}]', "'secret' must be a non-empty string"),
        ('[{"public_key": "k", "secret": "s3cr3t-value", "orders": -1}]', "orders of k must be a whole number"),
        ('[{"public_key": "k", "secret": "s3cr3t-value", "colour": "red"}]', "unknown field(s): colour"),
        ('[{"public_key": "k", "secret": "s3cr3t-value", "subaccounts": "x"}]', "'subaccounts' must be a list"),
        ('[{"public_key": "k", "secret": "a1"}, {"public_key": "k", "secret": "a2"}]', "appears twice"),
    ],
)
def test_bad_accounts_files_are_command_errors(tmp_path: Path, content: str, message: str):
    path = tmp_path / "accounts.json"
    path.write_text(content)
    with pytest.raises(CommandError) as caught:
        call_command("qfex_simulator", "--accounts", str(path))
    assert message in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_missing_accounts_file(tmp_path: Path):
    with pytest.raises(CommandError, match="cannot read the accounts file"):
        call_command("qfex_simulator", "--accounts", str(tmp_path / "missing.json"))


def test_options_build_the_described_simulator(tmp_path: Path):
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps([{"public_key": "pk", "secret": "sk", "subaccounts": ["s1"], "orders": 4, "twaps": 1}]))
    simulator = build_simulator(
        {
            "accounts": str(path),
            "seed": 3,
            "pace": 2.5,
            "page_latency": 0.02,
            "port": 0,
            "fault": [("reply_delay", "2.5"), ("silent", "true"), ("response_shape", "legacy")],
        }
    )
    assert not simulator.running
    assert [a.public_key for a in simulator.accounts] == ["pk"]
    assert len(simulator.open_orders("pk")) == 4
    assert simulator.pace == 2.5
    assert simulator.page_latency == 0.02
    assert (simulator.faults.reply_delay, simulator.faults.silent) == (2.5, True)
    assert simulator.faults.response_shape == "legacy"
    defaults = build_simulator({"port": 0, "fault": []})
    assert defaults.accounts == DEMO_ACCOUNTS


def test_demo_accounts_are_marked_simulator_only():
    for account in DEMO_ACCOUNTS:
        assert account.secret.endswith("SIMULATOR_ONLY")
        assert account.secret not in repr(account)


def test_command_serves_until_sigterm(tmp_path: Path):
    account = SimAccount(public_key="qfex_pub_cmd", secret="qfex_secret_cmd_value", subaccounts=("sub-cmd",))
    path = tmp_path / "accounts.json"
    path.write_text(
        json.dumps([{"public_key": account.public_key, "secret": account.secret, "subaccounts": ["sub-cmd"]}])
    )
    command = [sys.executable, "manage.py", "qfex_simulator", "--port", "0", "--accounts", str(path)]
    command += ["--pace", "0", "--fault", "reply_delay=0", "--seed", "5"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    listening = threading.Event()

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl+C"):
                listening.set()

    reader = threading.Thread(target=read_stdout)
    reader.start()
    try:
        assert listening.wait(60), f"the simulator did not start: {lines} {process.poll()}"
        url = lines[0].split(" on ", 1)[1].strip()
        assert url.startswith("ws://127.0.0.1:")
        with authed(url, account) as client:
            assert len(client.orders()["all_orders_response"]["orders"]) == 50
        process.send_signal(signal.SIGTERM)
        assert process.wait(PATIENT * 3) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join()
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()
        stderr = process.stderr.read()
        process.stderr.close()
    output = "".join(lines) + stderr
    assert "qfex_pub_cmd" in output
    assert "sub-cmd" in output
    assert account.secret not in output
    assert "stopped" in lines[-1]
