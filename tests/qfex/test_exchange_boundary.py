"""The client at the exchange boundary (issue 13, part 10), against the simulator over loopback.

KycRequired / TncRequired / PermissionDenied on a read are one typed exception that says what to do; a
reply without its ``orders`` array is an empty page; ``incoming_message`` echoed as JSON text still
pairs the error with its request; QFEX closing the session right after login is a lost connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from orders.qfex import AccountActionRequired, ConnectionLost, Credentials, QfexSession, fetch_open_orders
from orders.simulator import SimAccount, Simulator

PUBLIC, SECRET = "qfex_pub_boundary", "qfex_secret_boundary_7e2a9c4d1b"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(accounts=[SimAccount(public_key=PUBLIC, secret=SECRET, orders=3, twaps=1)], seed=6) as simulator:
        yield simulator


def _session(sim: Simulator) -> QfexSession:
    return QfexSession(sim.url, Credentials(PUBLIC, SECRET), timeout=5)


@pytest.mark.parametrize("code", ["KycRequired", "TncRequired", "PermissionDenied"])
@pytest.mark.parametrize("as_string", [False, True])
def test_account_action_errors_on_a_read(sim: Simulator, code: str, as_string: bool) -> None:
    sim.faults.read_error_code = code
    sim.faults.incoming_message_as_string = as_string
    with _session(sim) as session, pytest.raises(AccountActionRequired) as caught:
        fetch_open_orders(session)
    assert caught.value.error_code == code
    assert "QFEX's web app" in caught.value.user_message
    assert sim.request_count("get_user_orders") == 1  # answered at once, not waited out


@pytest.mark.parametrize("style", ["missing", "null"])
def test_a_reply_without_orders_is_an_empty_book(sim: Simulator, style: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="orders.qfex.records")
    sim.faults.orders_array = style
    with _session(sim) as session:
        snapshot = fetch_open_orders(session)
    assert snapshot.orders == ()
    assert len(snapshot.twaps) == 1  # the rest of the reply is still read
    assert "no orders array" in caplog.text


def test_qfex_closing_right_after_login(sim: Simulator) -> None:
    sim.faults.close_after_auth = True
    session = _session(sim)
    session.connect()  # the login itself succeeded
    with pytest.raises(ConnectionLost):
        session.get_user_orders()
    assert session.closed
