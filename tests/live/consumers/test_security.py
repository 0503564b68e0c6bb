"""Who may open a live socket, and what happens to sockets that misbehave or lose access (S2-S5, S15, S16)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test.utils import CaptureQueriesContext

import orders.live.feed.service
from orders.accounts import teams
from orders.live import protocol as lp
from orders.live.access import access_verdict
from orders.models import ExchangeAccount, Membership
from orders.simulator import Simulator
from tests.live.consumers.conftest import (
    HOST,
    ORIGIN,
    PATIENCE,
    Browser,
    async_session_cookie,
    headers,
    session_cookie,
    shows_truth,
)

pytestmark = pytest.mark.django_db(transaction=True)


def _feed_untouched() -> bool:
    feed = orders.live.feed.service._feed
    return feed is None or not feed.statuses()


# --- S2: origins -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        None,  # missing
        "null",
        "http://evil.example",
        f"http://{HOST}:8080",  # other port
        f"https://{HOST}",  # other scheme
        f"http://{HOST}.evil.example",
        f"http://{HOST}/path",
        "not a url",
    ],
)
async def test_foreign_origins_are_refused_before_anything_else(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator, origin: str | None
) -> None:
    browser = Browser(
        application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader), origin=origin
    )
    assert await browser.connect() == (False, lp.CLOSE_FORBIDDEN)
    assert _feed_untouched()
    assert sim.handshake_count == 0


async def test_two_origin_headers_are_refused(
    application: Any, trader: Any, live_team_account: ExchangeAccount
) -> None:
    key = await async_session_cookie(trader)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/accounts/{live_team_account.pk}/",
        headers=[*headers(key), (b"origin", b"http://evil.example")],
    )
    assert await communicator.connect(timeout=PATIENCE) == (False, lp.CLOSE_FORBIDDEN)


async def test_a_host_outside_allowed_hosts_is_refused_even_when_origin_matches(
    application: Any, trader: Any, live_team_account: ExchangeAccount
) -> None:
    # A DNS-rebinding page has a matching origin and host: ALLOWED_HOSTS still says no.
    browser = Browser(
        application,
        f"/ws/accounts/{live_team_account.pk}/",
        await async_session_cookie(trader),
        origin="http://rebound.example:8000",
        host="rebound.example:8000",
    )
    assert await browser.connect() == (False, lp.CLOSE_FORBIDDEN)


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        (ORIGIN, HOST, "ws"),
        (f"{ORIGIN}:80", HOST, "ws"),  # default port written out
        (f"http://{HOST}:8000", f"{HOST}:8000", "ws"),
        (f"https://{HOST}", HOST, "wss"),
        ("https://desk.example.com", HOST, "ws"),  # listed in CSRF_TRUSTED_ORIGINS
    ],
)
async def test_own_and_trusted_origins_are_accepted(
    application: Any,
    settings: Any,
    trader: Any,
    live_team_account: ExchangeAccount,
    sim: Simulator,
    origin: str,
    host: str,
    scheme: str,
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://desk.example.com"]
    key = await async_session_cookie(trader)
    communicator = WebsocketCommunicator(
        application, f"/ws/accounts/{live_team_account.pk}/", headers=headers(key, origin=origin, host=host)
    )
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=PATIENCE)
    assert connected
    first = await communicator.receive_json_from(timeout=PATIENCE)
    assert first["type"] == "snapshot"
    assert first["account"] == live_team_account.pk
    await communicator.disconnect()


# --- S3 / S4: session and access -----------------------------------------------------------------


@pytest.mark.parametrize("cookie", [None, "not-a-session", "x" * 40])
async def test_no_or_bad_session_is_closed_4001_before_any_upstream_call(
    application: Any, live_team_account: ExchangeAccount, sim: Simulator, cookie: str | None
) -> None:
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", cookie)
    connected, _ = await browser.connect()
    assert connected  # accepted only to carry the close code; nothing is sent before it
    assert await browser.communicator.receive_output(PATIENCE) == {"type": "websocket.close", "code": 4001}
    assert _feed_untouched()
    assert sim.handshake_count == 0


async def test_inactive_user_is_refused(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    key = await async_session_cookie(trader)
    trader.is_active = False
    await sync_to_async(trader.save)()
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", key)
    await browser.connect()
    assert await browser.close_code() == lp.CLOSE_NOT_AUTHENTICATED
    assert sim.handshake_count == 0


async def test_another_teams_account_is_indistinguishable_from_a_missing_one(
    application: Any, outsider: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    key = await async_session_cookie(outsider)
    outputs = []
    for path in (f"/ws/accounts/{live_team_account.pk}/", "/ws/accounts/987654/"):
        browser = Browser(application, path, key)
        outputs.append((await browser.connect(), await browser.communicator.receive_output(PATIENCE)))
    assert outputs[0] == outputs[1] == ((True, None), {"type": "websocket.close", "code": 4004})
    assert _feed_untouched()
    assert sim.handshake_count == 0


# --- S5: losing access while connected ------------------------------------------------------------


async def _watching(application: Any, user: Any, account: ExchangeAccount, sim: Simulator) -> tuple[Browser, str]:
    key = await async_session_cookie(user)
    browser = Browser(application, f"/ws/accounts/{account.pk}/", key)
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, account))
    return browser, key


async def test_logout_ends_the_stream(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser, key = await _watching(application, trader, live_team_account, sim)
    await sync_to_async(SessionStore(session_key=key).delete)()
    assert await browser.close_code() == lp.CLOSE_NOT_AUTHENTICATED


async def test_password_change_ends_the_stream(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser, _ = await _watching(application, trader, live_team_account, sim)
    trader.set_password("a-brand-new-Passw0rd")
    await sync_to_async(trader.save)()
    assert await browser.close_code() == lp.CLOSE_NOT_AUTHENTICATED


async def test_deactivation_ends_the_stream(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser, _ = await _watching(application, trader, live_team_account, sim)
    trader.is_active = False
    await sync_to_async(trader.save)()
    assert await browser.close_code() == lp.CLOSE_NOT_AUTHENTICATED


async def test_removal_from_the_team_ends_the_stream(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser, _ = await _watching(application, trader, live_team_account, sim)
    membership = await sync_to_async(Membership.objects.get)(user=trader)
    await sync_to_async(teams.membership_remove)(actor=None, membership=membership)
    assert await browser.close_code() == lp.CLOSE_FORBIDDEN


async def test_removal_from_the_team_ends_the_all_accounts_stream(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    key = await async_session_cookie(trader)
    browser = Browser(application, "/ws/accounts/all/", key)
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    membership = await sync_to_async(Membership.objects.get)(user=trader)
    await sync_to_async(teams.membership_remove)(actor=None, membership=membership)
    assert await browser.close_code() == lp.CLOSE_FORBIDDEN


async def test_an_unaffected_user_keeps_streaming(
    application: Any, trader: Any, viewer: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    leaving, _ = await _watching(application, trader, live_team_account, sim)
    staying, _ = await _watching(application, viewer, live_team_account, sim)
    membership = await sync_to_async(Membership.objects.get)(user=trader)
    await sync_to_async(teams.membership_remove)(actor=None, membership=membership)
    assert await leaving.close_code() == lp.CLOSE_FORBIDDEN
    sim.step(10)
    await staying.until(shows_truth(staying, sim, live_team_account))
    await staying.disconnect()


# --- S15: junk, oversized and flooding frames ------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json at all", lp.BAD_MESSAGE),
        ("[1, 2, 3]", lp.BAD_MESSAGE),
        ('{"no": "type"}', lp.BAD_MESSAGE),
        ('{"type": ["refresh"]}', lp.BAD_MESSAGE),
        ('{"type": "cancel_order", "params": {"order_id": "x"}}', lp.UNKNOWN_TYPE),
        ('{"type": "resync", "account": "1"}', lp.BAD_MESSAGE),
        ('{"type": "resync", "account": 987654}', lp.BAD_MESSAGE),
        (b"\x00\x01binary", lp.BAD_MESSAGE),
    ],
)
async def test_junk_frames_get_an_error_and_the_socket_stays(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator, frame: str | bytes, code: str
) -> None:
    browser, _ = await _watching(application, trader, live_team_account, sim)
    if isinstance(frame, bytes):
        await browser.communicator.send_to(bytes_data=frame)
    else:
        await browser.communicator.send_to(text_data=frame)
    message = await _next_of_type(browser, "error")
    assert message["code"] == code
    assert message["account"] == live_team_account.pk
    # Still served: the next frame is answered too.
    await browser.send({"type": "probe"})
    assert (await _next_of_type(browser, "error"))["code"] == lp.UNKNOWN_TYPE
    assert sim.forbidden_received == []
    await browser.disconnect()


async def _next_of_type(browser: Browser, kind: str) -> dict[str, Any]:
    while True:
        message = await browser.receive()
        if message["type"] == kind:
            return message


@pytest.mark.parametrize("size", [4097, 2 * 1024 * 1024])
async def test_oversized_frames_are_refused_with_the_too_large_close(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator, size: int
) -> None:
    browser, _ = await _watching(application, trader, live_team_account, sim)
    await browser.communicator.send_to(text_data='{"type": "refresh", "pad": "' + "x" * size + '"}')
    message = await _next_of_type(browser, "error")
    assert message["code"] == lp.TOO_LARGE
    assert await browser.close_code() == lp.CLOSE_TOO_LARGE


async def test_flooding_is_limited_then_closed_and_others_are_unaffected(
    application: Any, trader: Any, viewer: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    flooder, _ = await _watching(application, trader, live_team_account, sim)
    bystander, _ = await _watching(application, viewer, live_team_account, sim)
    for _ in range(20):
        await flooder.send({"type": "refresh"})
    await flooder.send({"type": "refresh"})
    assert (await _next_of_type(flooder, "error"))["code"] == lp.RATE_LIMITED
    for _ in range(40):
        await flooder.send({"type": "refresh"})
    assert await flooder.close_code() == lp.CLOSE_POLICY
    sim.step(10)
    await bystander.until(shows_truth(bystander, sim, live_team_account))
    await bystander.send({"type": "probe"})  # and still answered
    assert (await _next_of_type(bystander, "error"))["code"] == lp.UNKNOWN_TYPE
    await bystander.disconnect()


# --- S16: exchange strings are data ----------------------------------------------------------------


async def test_html_in_client_order_id_passes_through_unchanged(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser, _ = await _watching(application, trader, live_team_account, sim)
    nasty = '<img src=x onerror="alert(document.cookie)"><script>alert(1)</script>&amp;'
    added = sim.add_orders(live_team_account.public_key, 1, client_order_id=nasty, symbol="<b>AAPL</b>-USD")[0]
    await browser.until(lambda: added["order_id"] in browser.orders[live_team_account.pk])
    row = browser.orders[live_team_account.pk][added["order_id"]]
    assert row["client_order_id"] == nasty
    assert row["symbol"] == "<b>AAPL</b>-USD"
    await browser.disconnect()


def test_the_recheck_of_one_account_is_one_query(trader: Any, live_team_account: ExchangeAccount) -> None:
    key = session_cookie(trader)
    session_hash = SessionStore(session_key=key)[HASH_SESSION_KEY]
    with CaptureQueriesContext(connection) as queries:
        verdict = access_verdict(trader, key, session_hash, live_team_account.pk)
    assert verdict.outcome == "ok"
    assert verdict.visible == {live_team_account.pk}
    assert len(queries) == 1
    assert access_verdict(trader, key, session_hash, 987654).visible == frozenset()
    assert access_verdict(trader, key, "stale-hash", live_team_account.pk).outcome == "not_authenticated"


async def test_a_demoted_superuser_loses_other_teams_streams(
    application: Any, superuser: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser, _ = await _watching(application, superuser, live_team_account, sim)
    superuser.is_superuser = False
    await sync_to_async(superuser.save)()
    assert await browser.close_code() == lp.CLOSE_FORBIDDEN
