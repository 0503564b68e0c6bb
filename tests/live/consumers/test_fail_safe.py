"""The consumer fails safe: an access re-check it cannot complete closes the socket; a status older
than the snapshot a socket got is never shown over it; sending to a socket that just closed is not an
error."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orders.live import access as live_access
from orders.live import protocol as lp
from orders.models import ExchangeAccount
from orders.simulator import Simulator
from tests.live.consumers.conftest import Browser, async_session_cookie, shows_truth

pytestmark = pytest.mark.django_db(transaction=True)


async def test_an_access_recheck_that_fails_closes_the_socket(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the sessions table is gone")

    monkeypatch.setattr(live_access, "access_verdict", broken)
    # Never left open unchecked: closed as "not authenticated", so the page checks whether it is signed in.
    assert await browser.close_code() == lp.CLOSE_NOT_AUTHENTICATED


async def test_a_status_queued_before_a_snapshot_never_overwrites_it(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator, connected: list[Any]
) -> None:
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    (consumer,) = connected
    account = live_team_account.pk
    seq, stamp = consumer.status_sent[account]
    old = lp.Status(lp.STALE, "Lost the connection to QFEX", None, None)
    text = lp.encode(lp.status_message(account, seq, old))
    # A status published before the snapshot this socket holds, delivered late (as a full inbox would).
    await consumer.feed_message({"account": account, "seq": seq, "kind": lp.STATUS, "text": text, "stamp": stamp - 1})
    await consumer.feed_message({"account": account, "seq": seq - 1, "kind": lp.STATUS, "text": text, "stamp": 9e18})
    newer = lp.encode(lp.status_message(account, seq, lp.Status(lp.LIVE, "", 1.0, None)))
    await consumer.feed_message({"account": account, "seq": seq, "kind": lp.STATUS, "text": newer, "stamp": stamp + 1})
    frames: list[dict[str, Any]] = []
    while not any(frame.get("as_of") == 1.0 for frame in frames):  # the newer status is delivered…
        frames.append(orjson.loads(await browser.communicator.receive_from(timeout=5)))
    # …and neither older one was: not the one from before the snapshot, nor the one of an older seq.
    assert not [frame for frame in frames if frame.get("reason") == "Lost the connection to QFEX"]
    await browser.disconnect()


class Disconnected(RuntimeError):
    """What Daphne (autobahn) raises when a frame is sent on a socket that has just closed."""


async def test_sending_to_a_socket_that_just_closed_is_not_an_error(
    application: Any,
    trader: Any,
    live_team_account: ExchangeAccount,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    connected: list[Any],
) -> None:
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    (consumer,) = connected

    async def closed_protocol(message: dict[str, Any]) -> None:
        raise Disconnected("Attempt to send on a closed protocol")

    monkeypatch.setattr(consumer, "base_send", closed_protocol)
    text = lp.encode(lp.status_message(live_team_account.pk, 10**15, lp.Status(lp.LIVE)))
    event = {"account": live_team_account.pk, "seq": 10**15, "kind": lp.STATUS, "text": text, "stamp": 9e18}
    await consumer.feed_message(event)  # no exception: the socket is closing, its disconnect is on its way
    assert consumer.closing
    consumer.closing = False

    async def other_failure(message: dict[str, Any]) -> None:
        raise ValueError("something else")

    monkeypatch.setattr(consumer, "base_send", other_failure)
    with pytest.raises(ValueError, match="something else"):  # any other failure is still one
        await consumer.feed_message({**event, "stamp": 9.1e18})
