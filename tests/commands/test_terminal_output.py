"""S39: what the commands print never passes an exchange's control characters to the terminal.

The findings: client order ids and symbols carrying ESC/OSC sequences reached stdout from ``qfex_orders``
(its cell only folded whitespace), and ``qfex_account list`` printed labels as they were. Every character of
Unicode category C (C0 and C1 controls, bidi overrides, zero-width and private-use characters) is replaced
in tables and messages, and escaped in JSON so the JSON still reads back exactly.
"""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command, load_command_class

from orders.management.terminal import REPLACEMENT, TerminalSafeCommand, json_for_terminal, printable
from orders.models import ExchangeAccount
from orders.simulator import SimAccount, Simulator
from tests.personas import *  # noqa: F403
from tests.qfex.scripted_server import Conn, ScriptedServer

ACCOUNT = SimAccount(public_key="qfex_pub_term", secret="qfex_secret_term_0001", orders=3, twaps=1)
# A window title, a screen clear, a hyperlink, an 8-bit CSI, a right-to-left override, a zero-width joiner,
# a private-use character and a tag character beyond the BMP.
HOSTILE = "\x1b]0;owned\x07\x1b[2J\x1b]8;;http://x/\x1b\\id\x9b31m\u202eexe.txt\u200d\ue000\U000e0041"


def _unprintables(text: str) -> list[str]:
    return [hex(ord(ch)) for ch in text if unicodedata.category(ch).startswith("C") and ch != "\n"]


@pytest.fixture
def sim() -> Any:
    with Simulator([ACCOUNT], seed=5) as simulator:
        simulator.add_orders(ACCOUNT.public_key, 1, client_order_id=HOSTILE, symbol="AAPL\u202e-USD")
        yield simulator


def _orders(*args: str) -> str:
    out = StringIO()
    call_command("qfex_orders", *args, stdout=out)
    return out.getvalue()


def test_qfex_orders_table_replaces_control_characters(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QFEX_SECRET_KEY", ACCOUNT.secret)
    out = _orders("--url", sim.url, "--public-key", ACCOUNT.public_key)
    assert _unprintables(out) == []
    assert f"{REPLACEMENT}]0;owned{REPLACEMENT}" in out  # shown, harmlessly, so the operator sees something odd
    assert "AAPL\ufffd-USD" in out


def test_qfex_orders_json_escapes_them_and_reads_back_exactly(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QFEX_SECRET_KEY", ACCOUNT.secret)
    out = _orders("--url", sim.url, "--public-key", ACCOUNT.public_key, "--format", "json")
    assert _unprintables(out) == []
    printed = json.loads(out, parse_float=Decimal)
    assert HOSTILE in {order["client_order_id"] for order in printed["orders"]}


def test_qfex_orders_failure_line_replaces_them(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """The exchange's own error code reaches the one-line failure Django prints from ``CommandError``."""

    def script(conn: Conn) -> None:
        conn.expect_auth()
        while conn.recv_json()["type"] != "get_user_orders":
            pass
        conn.send_json({"err": {"error_code": "\x1b]0;owned\x07Bad\u202e", "incoming_message": "get_user_orders"}})
        conn.wait_closed()

    monkeypatch.setenv("QFEX_SECRET_KEY", ACCOUNT.secret)
    with ScriptedServer(script) as server:
        command = load_command_class("orders", "qfex_orders")
        with pytest.raises(SystemExit):
            command.run_from_argv(
                ["manage.py", "qfex_orders", "--url", server.url, "--public-key", "k", "--timeout", "5"]
            )
    err = capsys.readouterr().err
    assert "CommandError" in err
    assert "]0;owned" in err
    assert _unprintables(err) == []


def test_qfex_account_list_replaces_them_in_labels(personas: Any) -> None:
    ExchangeAccount.objects.filter(pk=personas.team_account.pk).update(label="Desk\x1b[2J \u202eniam")
    table = StringIO()
    call_command("qfex_account", "list", stdout=table)
    assert _unprintables(table.getvalue()) == []
    assert f"Desk{REPLACEMENT}[2J {REPLACEMENT}niam" in table.getvalue()
    as_json = StringIO()
    call_command("qfex_account", "list", "--format", "json", stdout=as_json)
    assert _unprintables(as_json.getvalue()) == []
    assert "Desk\x1b[2J \u202eniam" in {row["label"] for row in json.loads(as_json.getvalue())}


def test_every_command_here_prints_through_the_terminal_filter() -> None:
    from django.core.management import get_commands

    ours = [name for name, app in get_commands().items() if app == "orders"]
    assert {"qfex_orders", "qfex_account", "demo", "qfex_simulator", "rotate_encryption_keys"} <= set(ours)
    for name in ours:
        assert isinstance(load_command_class("orders", name), TerminalSafeCommand), name


@pytest.mark.parametrize("text", [HOSTILE, "plain text", "tab\there", "line\nbreak", "\x7f\x85\u2028\u2066"])
def test_printable_and_json_for_terminal(text: str) -> None:
    assert _unprintables(printable(text)) == []
    assert "\n" not in printable(text)
    assert printable(text, keep_newlines=True).count("\n") == text.count("\n")
    encoded = json_for_terminal(json.dumps({"v": text}, ensure_ascii=False))
    assert _unprintables(encoded) == []
    assert json.loads(encoded) == {"v": text}
