"""The QFEX client against the exchange simulator over real loopback sockets: auth, paging, pushes, F1-F8.

Every test also proves (through the autouse fixture in conftest.py) that no thread and no socket
outlives it, and checks that the simulator saw every connection close.
"""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest

from orders.qfex import (
    AuthenticationRejected,
    ConnectionFailed,
    ConnectionLost,
    Credentials,
    ForbiddenMessage,
    ProtocolError,
    QfexSession,
    QfexTimeout,
    RateLimited,
    fetch_open_orders,
    new_nonce,
    sign,
)
from orders.simulator import SimAccount, Simulator

from .conftest import wait_until

PUBLIC, SECRET = "qfex_pub_itest", "qfex_secret_itest_never_logged"
USER_ID = "7d3c2b1a-0000-4000-8000-00000000a001"
SUB_ID = "7d3c2b1a-0000-4000-8000-00000000b001"
CREDS = Credentials(PUBLIC, SECRET)


def account(orders: int = 50, twaps: int = 3, **extra) -> SimAccount:
    return SimAccount(
        public_key=PUBLIC,
        secret=SECRET,
        user_id=USER_ID,
        subaccounts=(SUB_ID,),
        orders=orders,
        twaps=twaps,
        subaccount_orders=extra.pop("subaccount_orders", 20),
        **extra,
    )


@pytest.fixture
def sim():
    with Simulator(accounts=[account()], seed=7) as simulator:
        yield simulator
        assert wait_until(lambda: simulator.connection_count == 0), "a connection was left open"


@pytest.fixture
def big_sim():
    with Simulator(accounts=[account(orders=2500, twaps=4)], seed=11) as simulator:
        yield simulator
        assert wait_until(lambda: simulator.connection_count == 0), "a connection was left open"


def session(sim: Simulator, timeout: float = 5.0, **kwargs) -> QfexSession:
    return QfexSession(sim.url, kwargs.pop("credentials", CREDS), timeout=timeout, **kwargs)


def exact(value):
    """A value as the client should hold it: JSON numbers as the Decimal of their shortest text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: exact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [exact(item) for item in value]
    return value


def ids(items) -> list[str]:
    return [item["order_id"] if isinstance(item, dict) else item.order_id for item in items]


# -- authentication ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_auth_success_in_both_shapes(sim, shape):
    sim.faults.auth_success_shape = shape
    with session(sim) as qfex:
        assert not qfex.closed
        assert sim.connection_count == 1
    assert sim.request_count("auth") == 1


@pytest.mark.parametrize("style", ["err", "authenticated_false"])
@pytest.mark.parametrize(
    "failure", ["bad_signature", "unknown_key", "revoked_key", "clock_skew", "reused_nonce", "reject_all"]
)
def test_each_auth_failure_is_authentication_rejected(sim, failure, style):
    sim.faults.auth_failure_style = style
    kwargs: dict = {}
    if failure == "bad_signature":
        kwargs["credentials"] = Credentials(PUBLIC, "qfex_secret_wrong")
    elif failure == "unknown_key":
        kwargs["credentials"] = Credentials("qfex_pub_nobody", SECRET)
    elif failure == "revoked_key":
        sim.revoke(PUBLIC)
    elif failure == "clock_skew":
        kwargs["clock"] = lambda: time.time() - 3600
    elif failure == "reused_nonce":
        nonce = new_nonce()
        kwargs["nonce_factory"] = lambda: nonce
        with session(sim, **kwargs):
            pass  # the first use of the nonce is fine
    elif failure == "reject_all":
        sim.faults.reject_auth = True
    qfex = session(sim, **kwargs)
    with pytest.raises(AuthenticationRejected) as raised:
        qfex.connect()
    assert qfex.closed
    assert raised.value.user_message.startswith("QFEX rejected the API key")
    assert SECRET not in str(raised.value)


def test_auth_failure_by_close_is_connection_lost_not_rejection(sim):
    sim.faults.auth_failure_style = "close"
    sim.faults.reject_auth = True
    with pytest.raises(ConnectionLost) as raised:
        session(sim).connect()
    assert not isinstance(raised.value, AuthenticationRejected)


def test_two_connects_use_two_nonces(sim):
    used: list[str] = []

    def recording_nonce() -> str:
        used.append(new_nonce())
        return used[-1]

    qfex = session(sim, nonce_factory=recording_nonce)
    qfex.connect()
    qfex.close()
    qfex.connect()  # a reused nonce would be refused by the simulator
    qfex.close()
    assert len(used) == 2
    assert used[0] != used[1]


def test_subaccount_session_sees_the_subaccount_book(sim):
    with session(sim, account_id=SUB_ID) as qfex:
        snapshot = fetch_open_orders(qfex)
    assert ids(snapshot.orders) == ids(sim.open_orders(SUB_ID))
    assert set(ids(snapshot.orders)).isdisjoint(ids(sim.open_orders(USER_ID)))


def test_unknown_subaccount_is_rejected(sim):
    with pytest.raises(AuthenticationRejected):
        session(sim, account_id="not-my-subaccount").connect()


# -- orders, TWAPs and pushes ------------------------------------------------------------------------


def test_snapshot_equals_the_truth(sim):
    with session(sim) as qfex:
        snapshot = fetch_open_orders(qfex)
    truth = sim.open_orders(USER_ID)
    assert ids(snapshot.orders) == ids(truth)
    assert [t.twap_id for t in snapshot.twaps] == [t["twap_id"] for t in sim.active_twaps(USER_ID)]
    by_id = {o.order_id: o for o in snapshot.orders}
    for order in truth:  # every field arrives exactly as the simulator holds it
        assert by_id[order["order_id"]].to_json() == {key: exact(value) for key, value in order.items()}
    assert snapshot.pages == 2  # a short first page on a fresh session is checked with one probe


@pytest.mark.parametrize("shape", ["mid", "legacy"])
def test_older_reply_shapes(sim, shape):
    sim.faults.response_shape = shape
    with session(sim) as qfex:
        snapshot = fetch_open_orders(qfex)
    assert ids(snapshot.orders) == ids(sim.open_orders(USER_ID))
    if shape == "legacy":
        assert snapshot.twaps == ()


def test_symbol_filter(sim):
    symbol = sim.open_orders(USER_ID)[0]["symbol"]
    with session(sim) as qfex:
        snapshot = fetch_open_orders(qfex, symbol=symbol)
    expected = [o for o in sim.open_orders(USER_ID) if o["symbol"] == symbol]
    assert ids(snapshot.orders) == ids(expected)
    assert {o.symbol for o in snapshot.orders} == {symbol}


def test_subscribe_and_pushes_while_waiting_for_a_reply(sim):
    sim.faults.reply_delay = 1.0
    added: list[dict] = []

    def add_orders_while_the_reply_is_delayed() -> None:
        if wait_until(lambda: sim.request_count("get_user_orders") == 1):
            added.extend(sim.add_orders(USER_ID, 3))

    with session(sim) as qfex:
        qfex.subscribe(["order_responses"])
        helper = threading.Thread(target=add_orders_while_the_reply_is_delayed)
        helper.start()
        try:
            orders, _twaps = qfex.get_user_orders()
        finally:
            helper.join()
        assert len(added) == 3
        pushes = qfex.wait_for_pushes(0)
        assert ids(pushes) == ids(added)
        assert all(p.status == "ACK" for p in pushes)
        assert set(ids(added)) <= set(ids(orders))  # the delayed page was taken after the orders were added
        sim.faults.reply_delay = 0
        assert qfex.wait_for_pushes(0.2) == []
        qfex.unsubscribe(["order_responses"])


def test_wait_for_pushes_returns_live_activity(sim):
    with session(sim) as qfex:
        qfex.subscribe(["order_responses"])
        changes = [change for change in sim.step(8) if change["user_id"] == USER_ID]  # not the subaccount's
        assert changes
        received: list = []
        assert wait_until(lambda: len(received.__iadd__(qfex.wait_for_pushes(0.2))) >= len(changes))
        assert ids(received) == ids(changes)


def test_paging_2500_orders_equals_the_truth(big_sim):
    with session(big_sim) as qfex:
        snapshot = fetch_open_orders(qfex)
        assert ids(snapshot.orders) == ids(big_sim.open_orders(USER_ID))
        assert len(snapshot.twaps) == 4
        again = fetch_open_orders(qfex)
    assert ids(again.orders) == ids(snapshot.orders)
    assert again.pages == 3  # the session now knows the server sends full 1000-order pages


def test_paging_while_the_book_changes_between_pages(big_sim):
    big_sim.faults.page_mutation = 40
    before = set(ids(big_sim.open_orders(USER_ID)))
    with session(big_sim) as qfex:
        snapshot = fetch_open_orders(qfex)
    after = set(ids(big_sim.open_orders(USER_ID)))
    got = ids(snapshot.orders)
    assert len(got) == len(set(got)), "duplicates in the snapshot"
    assert before & after <= set(got), "an order that existed during the whole fetch is missing"
    assert before != after  # the book really did change between pages


def test_a_page_cap_below_the_asked_limit_is_learned(big_sim):
    big_sim.faults.page_cap = 300
    with session(big_sim) as qfex:
        first = fetch_open_orders(qfex)
        assert qfex.page_limits.cap == 300
        second = fetch_open_orders(qfex)
    truth = ids(big_sim.open_orders(USER_ID))
    assert ids(first.orders) == truth
    assert ids(second.orders) == truth
    assert second.pages <= first.pages


def test_small_page_size(sim):
    with session(sim) as qfex:
        snapshot = fetch_open_orders(qfex, page_size=7)
    assert ids(snapshot.orders) == ids(sim.open_orders(USER_ID))


# -- faults F1-F8 ------------------------------------------------------------------------------------


def test_f1_refused_handshake(sim):
    sim.faults.refuse_handshake = True
    with pytest.raises(ConnectionFailed) as raised:
        session(sim).connect()
    assert raised.value.status == 503


def test_f1_reset_handshake(sim):
    sim.faults.reset_handshake = True
    with pytest.raises(ConnectionFailed):
        session(sim).connect()


def test_silent_handshake_times_out(sim):
    sim.faults.silent_handshake = True
    with pytest.raises(QfexTimeout):
        session(sim, timeout=0.5).connect()


def test_f2_drop_mid_reply(sim):
    with session(sim) as qfex:
        sim.faults.drop_mid_reply = True
        with pytest.raises(ConnectionLost):
            qfex.get_user_orders()
        assert qfex.closed


def test_f3_reply_slower_than_the_timeout(sim):
    sim.faults.reply_delay = 3.0
    with session(sim, timeout=0.5) as qfex:
        started = time.monotonic()
        with pytest.raises(QfexTimeout):
            qfex.get_user_orders()
        elapsed = time.monotonic() - started
        assert qfex.closed  # its late reply can never be taken for another request's
    assert elapsed < 2.5  # about the 0.5 s timeout, not the 3 s delay


def test_f4_silent_socket(sim):
    sim.faults.silent = True
    started = time.monotonic()
    with pytest.raises(QfexTimeout):
        session(sim, timeout=0.5).connect()
    assert time.monotonic() - started < 2.5


def test_f4_socket_going_silent_after_auth(sim):
    with session(sim, timeout=0.5) as qfex:
        sim.faults.silent = True
        with pytest.raises(QfexTimeout):
            qfex.get_user_orders()


@pytest.mark.parametrize("fault", ["malformed_json", "wrong_schema", "oversized_reply_bytes"])
def test_f5_bad_replies_are_protocol_errors(sim, fault):
    setattr(sim.faults, fault, 200_000 if fault == "oversized_reply_bytes" else True)
    with session(sim, max_message_bytes=64 * 1024) as qfex:
        with pytest.raises(ProtocolError):
            fetch_open_orders(qfex)
        assert qfex.closed


def test_f7_rate_limited_with_the_exchange_hint(sim):
    sim.faults.rate_limit_weight = 12  # get_user_orders weighs 5: two pass, the third is refused
    sim.faults.rate_limit_window = 60
    with session(sim) as qfex:
        qfex.get_user_orders()
        qfex.get_user_orders()
        with pytest.raises(RateLimited) as raised:
            qfex.get_user_orders()
        assert raised.value.retry_after is not None
        assert raised.value.retry_after > 0
        assert f"{raised.value.retry_after:g} s" in raised.value.user_message
        assert not qfex.closed  # rate limiting does not break the session


def test_f8_duplicate_and_unrelated_frames(big_sim):
    big_sim.faults.duplicate_replies = True
    big_sim.faults.unrelated_frames = True
    with session(big_sim) as qfex:
        qfex.subscribe(["order_responses"])
        first = fetch_open_orders(qfex)
        second = fetch_open_orders(qfex, page_size=500)
        orders, _ = qfex.get_user_orders(limit=5)
    truth = ids(big_sim.open_orders(USER_ID))
    assert ids(first.orders) == truth
    assert ids(second.orders) == truth
    assert ids(orders) == truth[:5]


def test_f11_server_closing_at_max_lifetime(sim):
    sim.faults.max_lifetime = 0.3
    with session(sim) as qfex:
        with pytest.raises(ConnectionLost):
            qfex.wait_for_pushes(5)
        assert qfex.closed


# -- safety across a whole session -------------------------------------------------------------------


def test_a_whole_session_never_sends_a_forbidden_message(sim, caplog):
    fixed_now = int(time.time())
    nonce = new_nonce()
    signature = sign(SECRET, nonce, fixed_now)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("websocket").setLevel(logging.DEBUG)
        try:
            with session(sim, clock=lambda: fixed_now, nonce_factory=lambda: nonce) as qfex:
                qfex.subscribe(["order_responses", "fills"])
                sim.step(10)
                fetch_open_orders(qfex)
                qfex.wait_for_pushes(0.2)
                for kind in ("cancel_on_disconnect", "cancel_all_orders", "add_order", "close_position"):
                    with pytest.raises(ForbiddenMessage):
                        qfex._send({"type": kind, "params": {"cancel_on_disconnect": True}})
                    with pytest.raises(ForbiddenMessage):
                        qfex._transport.send_text(f'{{"type": "{kind}", "params": {{}}}}')
                qfex.unsubscribe(["fills"])
                qfex.get_user_orders(limit=3)
        finally:
            logging.getLogger("websocket").setLevel(logging.NOTSET)
    assert sim.forbidden_received == []
    assert {kind for _key, kind in sim.received_log} <= {"auth", "subscribe", "unsubscribe", "get_user_orders"}
    assert sim.request_count("cancel_on_disconnect") == 0
    logs = caplog.text + "".join(str(record.args) for record in caplog.records)
    assert "QFEX session open" in logs
    assert SECRET not in logs
    assert signature not in logs
