"""``qfex_account`` add / list / verify from the command line (S14 for list)."""

from __future__ import annotations

import io
import json
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.accounts.encryption import Destination, decrypt_secret
from orders.management.commands import qfex_account
from orders.models import AuditEvent, ExchangeAccount
from tests.accounts.conftest import KEY_OTHER
from tests.personas import KEYS

SECRET = "qfex_secret_cli_test_3a7c9e1b5d"


def _run(*args: str) -> str:
    out = StringIO()
    call_command("qfex_account", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.delenv("QFEX_SECRET_KEY", raising=False)


@pytest.fixture
def secret_in_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("QFEX_SECRET_KEY", SECRET)
    return SECRET


def test_add_personal_account_with_secret_from_env(owner, secret_in_env) -> None:
    out = _run("add", "--label", "Main", "--owner", owner.username, "--public-key", "qfex_pub_cli")
    account = ExchangeAccount.objects.get(label="Main")
    assert (account.owner_user, account.owner_team, account.endpoint) == (owner, None, "prod")
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == SECRET
    assert f"Added account {account.pk} 'Main' for user {owner.username} ({settings.QFEX_TRADE_URL})" in out
    assert SECRET not in out
    assert SECRET[-4:] not in out
    assert AuditEvent.objects.get(action="account_added").actor is None


@pytest.mark.parametrize(
    ("endpoint", "stored", "url"),
    [("uat", "uat", "QFEX_UAT_TRADE_URL"), ("ws://127.0.0.1:8765", "custom", "ws://127.0.0.1:8765")],
)
def test_add_team_account_with_endpoint_and_subaccount(team, secret_in_env, endpoint, stored, url) -> None:
    sub = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    _run("add", "--label", "Desk", "--team", "Desk A", "--public-key", "k", "--endpoint", endpoint, "--account-id", sub)
    account = ExchangeAccount.objects.get(label="Desk")
    assert (account.owner_team, account.endpoint, account.trade_url(), account.subaccount_id) == (
        team,
        stored,
        getattr(settings, url, url),
        sub,
    )


def test_add_without_env_or_terminal_refuses_clearly(owner, no_terminal) -> None:
    with pytest.raises(CommandError) as caught:
        _run("add", "--label", "Main", "--owner", owner.username, "--public-key", "k")
    assert "QFEX_SECRET_KEY" in str(caught.value)
    assert "terminal" in str(caught.value)
    assert not ExchangeAccount.objects.exists()


def test_add_prompts_without_echo_on_a_terminal(owner, no_terminal, monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return SECRET

    monkeypatch.setattr(qfex_account, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr(qfex_account.getpass, "getpass", fake_getpass)
    _run("add", "--label", "Main", "--owner", owner.username, "--public-key", "k")
    assert len(prompts) == 1
    assert "hidden" in prompts[0]
    account = ExchangeAccount.objects.get(label="Main")
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == SECRET


def test_secret_is_never_accepted_as_an_argument(owner, secret_in_env) -> None:
    with pytest.raises(CommandError):
        _run("add", "--label", "Main", "--owner", owner.username, "--public-key", "k", "--secret", "s3cr3t")
    assert not ExchangeAccount.objects.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--owner", "nobody"], "No user named 'nobody'."),
        (["--team", "Nowhere"], "No team named 'Nowhere'."),
        (["--owner", "olivia_owner", "--endpoint", "https://x"], "--endpoint must be prod, uat or a ws://"),
        (["--owner", "olivia_owner", "--account-id", "nope"], "Enter the subaccount id exactly as QFEX shows it"),
        (
            ["--owner", "olivia_owner", "--label", "Owner personal"],
            "olivia_owner already has an account called “Owner personal”",
        ),
    ],
)
def test_add_failures_are_one_line(personas, secret_in_env, args, expected) -> None:
    base = ["add", "--public-key", "k"] + ([] if "--label" in args else ["--label", "New"])
    with pytest.raises(CommandError) as caught:
        _run(*base, *args)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_owner_and_team_are_mutually_exclusive(personas, secret_in_env) -> None:
    with pytest.raises(CommandError):
        _run("add", "--label", "X", "--owner", "olivia_owner", "--team", "Desk A", "--public-key", "k")


def test_list_json_has_the_fields_and_never_the_secret(personas) -> None:
    rows = json.loads(_run("list", "--format", "json"))
    by_label = {row["label"]: row for row in rows}
    assert set(by_label) == {"Owner personal", "Desk A main", "Desk B main"}
    team_row = by_label["Desk A main"]
    assert team_row == {
        "id": personas.team_account.pk,
        "label": "Desk A main",
        "owner": "team Desk A",
        "owner_user": None,
        "owner_team": "Desk A",
        "endpoint": "ws://127.0.0.1:9",
        "subaccount": None,
        "enabled": True,
        "status": "unverified",
        "status_detail": "The key has not been checked against QFEX yet.",
    }
    assert by_label["Owner personal"]["owner_user"] == "olivia_owner"
    text = json.dumps(rows)
    for label, (_public, secret) in KEYS.items():
        account = ExchangeAccount.objects.get(label=label)
        assert secret not in text
        assert account.secret_ciphertext not in text


def test_list_table(personas) -> None:
    lines = _run("list").splitlines()
    assert lines[0].split() == ["id", "label", "owner", "endpoint", "subaccount", "enabled", "status"]
    assert len(lines) == 4
    assert any("Desk A main" in line and "team Desk A" in line and "unverified" in line for line in lines)


def test_list_shows_unreadable_secrets_without_failing(personas, use_keys) -> None:
    use_keys(KEY_OTHER)
    rows = json.loads(_run("list", "--format", "json"))
    assert {row["status"] for row in rows} == {"secret_unreadable"}
    assert rows[0]["status_detail"] == "The stored secret can't be decrypted — re-enter it."


def test_list_when_empty(db) -> None:
    assert _run("list").strip() == "No accounts stored."
    assert json.loads(_run("list", "--format", "json")) == []


def test_verify_resolves_labels_ids_and_ambiguity(personas, secret_in_env) -> None:
    # The same label for another owner makes the label ambiguous.
    _run("add", "--label", "Owner personal", "--team", "Desk A", "--public-key", "k", "--endpoint", "ws://127.0.0.1:9")
    ids = sorted(ExchangeAccount.objects.filter(label="Owner personal").values_list("pk", flat=True))
    with pytest.raises(CommandError) as caught:
        _run("verify", "Owner personal")
    assert "2 accounts are labelled 'Owner personal'" in str(caught.value)
    assert all(f"id {pk}" in str(caught.value) for pk in ids)
    assert "--id" in str(caught.value)

    with pytest.raises(CommandError, match="No account labelled 'Nope'"):
        _run("verify", "Nope")
    with pytest.raises(CommandError, match="No account with id 424242"):
        _run("verify", "--id", "424242")
    with pytest.raises(CommandError, match="Name the account"):
        _run("verify")


# --- verification before storing; S21 edits -------------------------------------------------------


@pytest.fixture
def cli_sim(settings):
    from orders.simulator import SimAccount, Simulator

    with Simulator(accounts=[SimAccount(public_key="qfex_pub_cli", secret=SECRET, orders=1)], seed=4) as simulator:
        settings.QFEX_TRADE_URL = simulator.url
        yield simulator


def test_add_refuses_a_key_qfex_rejects_and_stores_nothing(owner, cli_sim, monkeypatch) -> None:
    monkeypatch.setenv("QFEX_SECRET_KEY", "qfex_secret_cli_wrong_0000000000")
    with pytest.raises(CommandError, match="QFEX did not accept this key, so nothing was stored"):
        _run("add", "--label", "Main", "--owner", owner.username, "--public-key", "qfex_pub_cli")
    assert not ExchangeAccount.objects.exists()


def test_add_verifies_an_accepted_key(owner, cli_sim, secret_in_env) -> None:
    out = _run("add", "--label", "Main", "--owner", owner.username, "--public-key", "qfex_pub_cli")
    assert "QFEX accepted the API key." in out
    assert ExchangeAccount.objects.get(label="Main").last_verified_at is not None


def test_add_refuses_a_custom_url_outside_the_policy(owner, secret_in_env) -> None:
    with pytest.raises(CommandError, match="not on this server's list of allowed QFEX endpoints"):
        _run("add", "--label", "M", "--owner", owner.username, "--public-key", "k", "--endpoint", "ws://10.0.0.9:80")
    assert not ExchangeAccount.objects.exists()


def test_edit_to_another_destination_needs_the_secret(personas, cli_sim, no_terminal) -> None:
    account = personas.owner_account
    with pytest.raises(CommandError, match="No secret key given"):
        _run("edit", "--id", str(account.pk), "--endpoint", "uat")
    with pytest.raises(CommandError, match="No secret key given"):
        _run("edit", "--id", str(account.pk), "--public-key", "qfex_pub_other")
    account.refresh_from_db()
    assert (account.endpoint, account.public_key) == ("custom", KEYS["Owner personal"][0])
    assert cli_sim.handshake_count == 0
    out = _run("edit", "--id", str(account.pk), "--new-label", "Renamed")  # not a destination: no secret needed
    assert "Saved account" in out


def test_edit_with_the_secret_moves_and_verifies(personas, cli_sim, secret_in_env) -> None:
    account = personas.owner_account
    out = _run("edit", "--id", str(account.pk), "--endpoint", "prod", "--public-key", "qfex_pub_cli")
    assert "QFEX accepted the API key." in out
    account.refresh_from_db()
    assert decrypt_secret(account.secret_ciphertext, account.binding, Destination.of(account)) == SECRET
