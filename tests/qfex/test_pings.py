"""QFEX's keep-alive pings never hold up the reading of idle sessions.

Found by P10 (docs/performance.md): the simulator pings every connection every 20 s, like most
exchanges; the idle read answered a ping and then waited for a *message* until its grace ran out, so
the one reader thread shared by every account stalled 50 ms per pinged session — 2.5 s for 50
accounts, every 20 s, with every account's pushes queued behind it. Here the grace is made a minute
long, so a read that waits behind a ping cannot go unnoticed; the simulator pings every 20 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from orders.live.feed.reader import PushReader
from orders.qfex import Credentials, Order, QfexSession
from orders.qfex import session as session_module
from orders.simulator import SimAccount, Simulator

from .conftest import wait_until
from .test_simulator_integration import CREDS, USER_ID, account

QUIET = SimAccount(
    public_key="qfex_pub_quiet",
    secret="qfex_secret_quiet_never_logged",
    user_id="7d3c2b1a-0000-4000-8000-00000000a0ff",
    orders=5,
    twaps=0,
)
QUIET_CREDS = Credentials(QUIET.public_key, QUIET.secret)

BOUND = 10.0  # seconds a read may take here; waiting behind a ping would take the 60 s grace


@pytest.fixture
def pinging_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    monkeypatch.setattr(session_module, "_DRAIN_FRAME_GRACE", 60.0)
    with Simulator(accounts=[account(), QUIET], seed=7, ping_interval=0.02) as simulator:
        yield simulator
        assert wait_until(lambda: simulator.connection_count == 0), "a connection was left open"


def test_an_idle_read_answers_a_ping_and_returns(pinging_sim: Simulator) -> None:
    with QfexSession(pinging_sim.url, CREDS, timeout=5.0) as qfex:
        qfex.subscribe(["order_responses"])
        pushes: list[Order] = []
        qfex.on_push = pushes.append
        assert wait_until(qfex._require_transport().data_ready), "no ping arrived"
        reading = threading.Thread(target=qfex.read_available)
        reading.start()
        reading.join(BOUND)
        assert not reading.is_alive(), "the idle read waited behind a ping for a message"
        added = pinging_sim.add_orders(USER_ID, 1)[0]
        assert wait_until(lambda: bool(qfex.read_available() or pushes))
        assert [push.order_id for push in pushes] == [added["order_id"]]
        orders, _twaps = qfex.get_user_orders()  # the session is still usable for requests
        assert added["order_id"] in {order.order_id for order in orders}


def test_one_reader_delivers_a_push_while_quiet_sessions_are_pinged(pinging_sim: Simulator) -> None:
    """Four quiet accounts are pinged and never push; the fifth account's push still arrives at once."""
    reader = PushReader(name="test-push-reader")
    quiet = [QfexSession(pinging_sim.url, QUIET_CREDS, timeout=5.0) for _ in range(4)]
    busy = QfexSession(pinging_sim.url, CREDS, timeout=5.0)
    received: list[str | None] = []
    registrations = []
    try:
        for qfex in [busy, *quiet]:
            qfex.connect()
            qfex.subscribe(["order_responses"])
            qfex.on_push = lambda order: received.append(order.order_id)
        # A ping is waiting on every quiet session when the reader first looks at it.
        assert wait_until(lambda: all(q._require_transport().data_ready() for q in quiet)), "no ping arrived"
        registrations = [reader.add(qfex, lambda exc: None) for qfex in [*quiet, busy]]
        added = pinging_sim.add_orders(USER_ID, 1)[0]["order_id"]
        assert wait_until(lambda: added in received, timeout=BOUND), "the push waited behind a quiet session's ping"
        assert received == [added]
    finally:
        for registration in registrations:
            registration.remove()
        reader.close()
        for qfex in [*quiet, busy]:
            qfex.close()
