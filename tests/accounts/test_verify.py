"""``account_verify`` and ``qfex_account verify`` against the real simulator over loopback sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orders.accounts import display, exchange_accounts, verify
from orders.models import AuditEvent, ExchangeAccount
from orders.qfex import AuthenticationRejected, Credentials, QfexSession
from orders.simulator import SimAccount, Simulator
from tests.accounts.conftest import KEY_OTHER
from tests.personas import KEYS, point_at

SUBACCOUNT = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
UNREADABLE = "The stored secret can't be decrypted — re-enter it."


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)  # polling interval for a condition with a deadline, not a fixed wait


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    accounts = [
        SimAccount(
            public_key=public,
            secret=secret,
            subaccounts=(SUBACCOUNT,) if label == "Desk A main" else (),
            orders=2,
            twaps=0,
            subaccount_orders=2,
            subaccount_twaps=0,
        )
        for label, (public, secret) in KEYS.items()
    ]
    sim = Simulator(accounts=accounts, seed=7, pace=0.0, page_latency=0.0, host="127.0.0.1", port=0)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback port that was just free and is not listening: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


def _verify(account: ExchangeAccount, actor=None, timeout: float = 5.0) -> verify.VerifyResult:
    result = verify.account_verify(actor=actor, account=account, timeout=timeout)
    account.refresh_from_db()
    return result


def test_good_key_is_verified(personas, simulator) -> None:
    account = point_at(personas.owner_account, simulator.url)
    result = _verify(account, actor=personas.owner)
    assert result == verify.VerifyResult(ok=True, message="QFEX accepted the API key.")
    assert account.last_verified_at is not None
    assert account.last_error == ""
    assert display.account_key_status(account).code == "verified"
    event = AuditEvent.objects.filter(account=account).order_by("pk").last()
    assert event is not None
    assert (event.action, event.actor, event.detail) == ("account_verified", personas.owner, {})
    assert simulator.request_count("auth") == 1
    _wait_for(lambda: simulator.connection_count == 0)  # the session was closed


def test_subaccount_is_sent_and_accepted(personas, simulator) -> None:
    account = point_at(personas.team_account, simulator.url)
    secret = KEYS[account.label][1]  # a new subaccount is a new destination: the secret is typed again (S21)
    exchange_accounts.account_update(actor=None, account=account, subaccount_id=SUBACCOUNT, secret=secret)
    assert _verify(account).ok
    # The simulator refuses a subaccount the key does not own, so the id really travelled in the auth.
    exchange_accounts.account_update(
        actor=None, account=account, subaccount_id="00000000-0000-4000-8000-000000000000", secret=secret
    )
    assert not _verify(account).ok


def test_rejected_key_gives_the_clients_message(personas, simulator) -> None:
    account = point_at(personas.owner_account, simulator.url)
    exchange_accounts.account_set_secret(actor=personas.owner, account=account, secret="qfex_secret_wrong_000000000000")
    # What the protocol client itself says for this rejection.
    bad_credentials = Credentials(account.public_key, "qfex_secret_wrong_000000000000")
    with pytest.raises(AuthenticationRejected) as direct, QfexSession(simulator.url, bad_credentials, timeout=5):
        pass

    result = _verify(account, actor=personas.owner)
    assert result.ok is False
    assert result.message == direct.value.user_message
    assert account.last_error == direct.value.user_message
    assert account.last_verified_at is None
    state = display.account_key_status(account)
    assert (state.code, state.detail) == ("error", direct.value.user_message)
    event = AuditEvent.objects.filter(account=account).order_by("pk").last()
    assert event is not None
    assert (event.action, event.detail) == ("account_verify_failed", {"reason": direct.value.user_message})


def test_revoked_key_fails_and_a_later_success_clears_the_error(personas, simulator) -> None:
    account = point_at(personas.owner_account, simulator.url)
    assert _verify(account).ok
    simulator.revoke(account.public_key)
    result = _verify(account)
    assert not result.ok
    assert account.last_error == result.message
    assert display.account_key_status(account).code == "error"


def test_unreachable_endpoint_gives_a_clear_message(personas, closed_port_url) -> None:
    account = point_at(personas.owner_account, closed_port_url)
    result = _verify(account)
    assert result.ok is False
    assert "connect" in result.message.lower()
    assert "QFEX" in result.message
    assert account.last_error == result.message


def test_silent_server_times_out_without_raising(personas, simulator) -> None:
    simulator.faults.silent = True
    account = point_at(personas.owner_account, simulator.url)
    result = _verify(account, timeout=0.5)
    assert result.ok is False
    assert "in time" in result.message


def test_wrong_encryption_key_never_reaches_the_exchange(personas, simulator, use_keys) -> None:
    account = point_at(personas.owner_account, simulator.url)
    use_keys(KEY_OTHER)
    result = _verify(account)
    assert result == verify.VerifyResult(ok=False, message=UNREADABLE)
    assert display.account_key_status(account).code == "secret_unreadable"
    assert simulator.request_count("auth") == 0


def test_ciphertext_copied_from_another_row_fails(personas, simulator) -> None:
    """S11 end to end: another row's ciphertext does not decrypt here, so nothing is signed with it."""
    team_account = point_at(personas.team_account, simulator.url)
    ExchangeAccount.objects.filter(pk=team_account.pk).update(
        secret_ciphertext=personas.owner_account.secret_ciphertext
    )
    team_account.refresh_from_db()
    result = _verify(team_account)
    assert result == verify.VerifyResult(ok=False, message=UNREADABLE)
    state = display.account_key_status(team_account)
    assert (state.code, state.detail) == ("secret_unreadable", UNREADABLE)
    assert simulator.request_count("auth") == 0


def test_credentials_never_show_the_secret(personas) -> None:
    credentials = exchange_accounts.account_credentials(personas.owner_account)
    secret = KEYS["Owner personal"][1]
    assert credentials.secret == secret
    assert secret not in repr(credentials)
    assert secret not in str(credentials)


def test_verify_command_success_and_failure(personas, simulator, closed_port_url) -> None:
    point_at(personas.owner_account, simulator.url)
    out = StringIO()
    call_command("qfex_account", "verify", "Owner personal", stdout=out)
    assert out.getvalue().startswith("OK: 'Owner personal'")

    point_at(personas.team_account, closed_port_url)
    with pytest.raises(CommandError) as caught:
        call_command("qfex_account", "verify", "--id", str(personas.team_account.pk), "--timeout", "2")
    message = str(caught.value)
    assert message.startswith(f"Verification of 'Desk A main' (id {personas.team_account.pk}) failed: ")
    assert "\n" not in message

    # A numeric label that is not a label is taken as an id.
    out = StringIO()
    call_command("qfex_account", "verify", str(personas.owner_account.pk), stdout=out)
    assert "OK:" in out.getvalue()
