"""S29: what one browser may cost the server — sockets per user, and resyncs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orders.live import consumers
from orders.live import protocol as lp
from orders.live.limits import ResyncLimiter
from orders.models import ExchangeAccount
from orders.simulator import Simulator
from tests.live.consumers.conftest import Browser, async_session_cookie, shows_truth

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_user_may_open_only_so_many_sockets(
    settings: Any, application: Any, trader: Any, viewer: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    settings.QFEXDASH_WS_MAX_SOCKETS_PER_USER = 2
    path = f"/ws/accounts/{live_team_account.pk}/"
    cookie = await async_session_cookie(trader)
    first, second, third = (Browser(application, path, cookie) for _ in range(3))
    assert (await first.connect())[0]
    assert (await second.connect())[0]
    assert (await third.connect())[0]  # accepted, then closed at once with the code the page explains
    assert await third.close_code() == lp.CLOSE_TOO_MANY_SOCKETS
    # Another user is not affected; a socket closed frees a place.
    other = Browser(application, path, await async_session_cookie(viewer))
    assert (await other.connect())[0]
    await other.until(shows_truth(other, sim, live_team_account))
    await first.disconnect()
    again = Browser(application, path, cookie)
    assert (await again.connect())[0]
    await again.until(shows_truth(again, sim, live_team_account))
    for browser in (second, other, again):
        await browser.disconnect()


async def _snapshots_after(browser: Browser, resyncs: int) -> int:
    """Send ``resyncs`` resync frames, then count the snapshot parts 1 received until the socket is quiet."""
    for _ in range(resyncs):
        await browser.communicator.send_to(text_data='{"type": "resync"}')
    received = 0
    while not await browser.communicator.receive_nothing(timeout=1.0):
        message = orjson.loads(await browser.communicator.receive_from())
        received += message["type"] == lp.SNAPSHOT and message["part"] == 1
    return received


async def test_resyncs_are_answered_at_most_once_a_window_and_not_when_nothing_is_missing(
    settings: Any,
    application: Any,
    trader: Any,
    live_team_account: ExchangeAccount,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    connected: list[Any],
) -> None:
    settings.QFEXDASH_RECONCILE_SECONDS = 60.0  # no heartbeat moves the state during the test
    settings.QFEXDASH_WS_RATE = 1000
    monkeypatch.setattr(consumers, "ResyncLimiter", lambda: ResyncLimiter(0.5))
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    # The socket already holds the current state: twenty resyncs pull nothing (they pulled 35 MB).
    assert await _snapshots_after(browser, 20) == 0
    # A socket that did miss something gets one snapshot, not twenty.
    (consumer,) = connected
    consumer.sent[live_team_account.pk] -= 1
    assert await _snapshots_after(browser, 20) == 1
    consumer.sent[live_team_account.pk] -= 1
    assert await _snapshots_after(browser, 1) == 1  # the window has passed meanwhile: answered
    await browser.disconnect()


async def test_open_sockets_are_counted_for_the_metrics(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from orders.live import metrics

    def sockets() -> float:
        families = text_string_to_metric_families(metrics.METRICS.render().decode())
        return next(
            sample.value for family in families for sample in family.samples if sample.name == "qfexdash_sockets"
        )

    before = sockets()
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    assert sockets() == before + 1
    await browser.disconnect()
    assert sockets() == before
