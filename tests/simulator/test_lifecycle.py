"""Starting, stopping and restarting: no thread or connection left behind."""

from __future__ import annotations

import pytest
import websocket

from orders.simulator import Simulator

from .conftest import ACCOUNT_A, EPOCH, PATIENT, authed, connect, live_simulator_threads, wait_until


def test_port_zero_picks_a_free_port_and_stop_leaves_no_thread():
    before = live_simulator_threads()
    simulator = Simulator([ACCOUNT_A], epoch=EPOCH, close_timeout=1.0)
    simulator.start()
    assert simulator.port > 0
    assert simulator.url == f"ws://127.0.0.1:{simulator.port}"
    assert len(live_simulator_threads()) == len(before) + 1
    simulator.stop()
    simulator.stop()  # twice is fine
    assert live_simulator_threads() == before
    assert not simulator.running


def test_stop_closes_every_connection_including_silent_ones():
    simulator = Simulator([ACCOUNT_A], epoch=EPOCH, close_timeout=1.0).start()
    client = authed(simulator)
    simulator.faults.silent = True
    silent = connect(simulator)
    wait_until(lambda: simulator.connection_count == 2, what="both connections")
    simulator.faults.silent = False  # the second connection stays silent; the first talks again
    simulator.stop()
    try:
        assert client.recv_close() == (1001, "")
        with pytest.raises((ConnectionError, websocket.WebSocketConnectionClosedException)):
            silent.ws.recv()
    finally:
        client.close()
        silent.close()
    assert simulator.connection_count == 0
    assert not live_simulator_threads()


def test_restart_keeps_the_port_and_the_books():
    with Simulator([ACCOUNT_A], epoch=EPOCH, close_timeout=1.0) as simulator:
        port = simulator.port
        simulator.step(5)
        before = simulator.open_orders(ACCOUNT_A.user_id)
        client = authed(simulator)
        simulator.restart()
        try:
            assert client.recv_close()[0] == 1001
        finally:
            client.close()
        assert simulator.port == port
        with authed(simulator) as again:
            assert again.orders()["all_orders_response"]["orders"] == before
    assert not live_simulator_threads()


def test_start_on_a_busy_port_fails_cleanly():
    with Simulator([ACCOUNT_A], epoch=EPOCH) as first:
        second = Simulator([ACCOUNT_A], port=first.port)
        with pytest.raises(OSError, match="cannot listen"):
            second.start()
        assert not second.running
        assert len(live_simulator_threads()) == 1
    assert not live_simulator_threads()


def test_start_twice_is_an_error():
    with Simulator([ACCOUNT_A], epoch=EPOCH) as simulator, pytest.raises(RuntimeError):
        simulator.start()


def test_only_loopback_hosts_are_allowed():
    with pytest.raises(ValueError, match="loopback"):
        Simulator([ACCOUNT_A], host="0.0.0.0")  # noqa: S104 - the point of the test


def test_repr_never_shows_a_secret():
    simulator = Simulator([ACCOUNT_A])
    assert ACCOUNT_A.secret not in repr(simulator)
    assert ACCOUNT_A.secret not in repr(simulator.accounts)


def test_changes_before_start_are_served_after_start():
    simulator = Simulator([ACCOUNT_A], epoch=EPOCH, close_timeout=1.0)
    simulator.step(3)  # no loop yet: the changes simply wait in the book
    [added] = simulator.add_orders(ACCOUNT_A.user_id, 1, client_order_id="pre-start")
    with simulator, authed(simulator) as client:
        orders = client.orders()["all_orders_response"]["orders"]
    assert added in orders


def test_server_sends_websocket_pings():
    simulator = Simulator([ACCOUNT_A], epoch=EPOCH, ping_interval=0.2, close_timeout=1.0)
    with simulator, authed(simulator) as client:
        client.ws.settimeout(PATIENT)
        opcode, _ = client.ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PING
