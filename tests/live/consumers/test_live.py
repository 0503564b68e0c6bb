"""What a page receives: snapshot on join, diffs in seq order, refresh/resync, gaps healed (F9), floods (S18)."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.contrib.auth import get_user_model
from django.urls import path

from orders.accounts import exchange_accounts, teams
from orders.live import protocol as lp
from orders.live.consumers import AccountStreamConsumer
from orders.live.feed import get_feed
from orders.live.routing import ExactOriginMiddleware, SessionUserMiddleware
from orders.models import ExchangeAccount, Membership
from orders.simulator import Simulator
from tests.live.consumers.conftest import PATIENCE, Browser, async_session_cookie, shows_truth, truth
from tests.personas import PASSWORD, point_at

pytestmark = pytest.mark.django_db(transaction=True)


async def test_snapshot_on_join_then_live_diffs(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    first = await browser.receive()
    assert first["type"] == "snapshot"
    assert first["account"] == live_team_account.pk
    assert first["status"]["state"] in ("connecting", "live")
    await browser.apply(first)
    await browser.until(shows_truth(browser, sim, live_team_account))
    # A live change arrives as a diff, in seq order, without asking.
    seq = browser.seq[live_team_account.pk]
    added = sim.add_orders(live_team_account.public_key, 1, client_order_id="fresh")[0]
    await browser.until(lambda: added["order_id"] in browser.orders[live_team_account.pk])
    assert browser.seq[live_team_account.pk] > seq
    assert browser.gaps == 0
    assert browser.orders[live_team_account.pk] == truth(sim, live_team_account)[0]
    await browser.disconnect()


async def test_feed_diffs_skip_the_database_thread_but_browser_frames_do_not(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator, monkeypatch: Any
) -> None:
    """P4: Channels hops to its database thread before every handler; a feed diff needs no database."""
    import channels.consumer

    hops: list[str] = []
    original = channels.consumer.aclose_old_connections

    async def counting() -> None:
        hops.append("hop")
        await original()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting)
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    before, seq = len(hops), browser.seq[live_team_account.pk]
    for n in range(3):
        added = sim.add_orders(live_team_account.public_key, 1, client_order_id=f"fresh-{n}")[0]

        def shown(order_id: str = added["order_id"]) -> bool:
            return order_id in browser.orders[live_team_account.pk]

        await browser.until(shown)
    assert browser.seq[live_team_account.pk] >= seq + 3
    assert len(hops) == before
    await browser.send({"type": "refresh"})  # a frame from the page still gets Channels' usual handling
    await browser.until(lambda: len(hops) > before)
    await browser.disconnect()


async def test_a_second_viewer_gets_the_cached_snapshot_at_once(
    application: Any, trader: Any, viewer: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    first = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await first.connect())[0]
    await first.until(shows_truth(first, sim, live_team_account))
    second = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(viewer))
    assert (await second.connect())[0]
    snapshot = await second.receive()
    assert snapshot["type"] == "snapshot"
    assert snapshot["status"]["state"] == "live"
    assert {row["id"] for row in snapshot["orders"]} == set(first.orders[live_team_account.pk])
    assert sim.connection_count == 1  # one upstream session for both
    await first.disconnect()
    await second.disconnect()


async def test_resync_answers_with_a_snapshot_to_that_socket_only(
    application: Any,
    trader: Any,
    viewer: Any,
    live_team_account: ExchangeAccount,
    sim: Simulator,
    connected: list[Any],
) -> None:
    asking = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    quiet = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(viewer))
    for browser in (asking, quiet):
        assert (await browser.connect())[0]
        await browser.until(shows_truth(browser, sim, live_team_account))
    connected[0].sent[live_team_account.pk] -= 1  # as if a diff never reached it (a full channel inbox)
    await asking.send({"type": "resync"})
    answer = await asking.receive()
    while answer["type"] == "status":  # a heartbeat may come first
        answer = await asking.receive()
    assert answer["type"] == "snapshot"
    assert answer["seq"] == asking.seq[live_team_account.pk]
    # The other socket gets no snapshot (heartbeats may come and go).
    while not await quiet.communicator.receive_nothing(timeout=0.3):
        assert (await quiet.receive())["type"] != "snapshot"
    await asking.disconnect()
    await quiet.disconnect()


async def test_refresh_fetches_again(
    application: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    feed = get_feed()
    before = feed.stats(live_team_account.pk).fetches
    await browser.send({"type": "refresh"})
    # A fetch that changes nothing announces itself with a live heartbeat carrying a newer as_of.
    await browser.until(lambda: feed.stats(live_team_account.pk).fetches > before)
    await browser.disconnect()


async def test_all_accounts_stream_carries_every_visible_account(
    application: Any, team_admin: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    # The team admin also owns a personal account; both must appear, each with its own seq.
    personal = await sync_to_async(exchange_accounts.account_create)(
        actor=team_admin,
        label="Adam personal",
        public_key="qfex_pub_owner_personal",
        secret="qfex_secret_owner_personal_7f3a9c2e51d8",
        owner_user=team_admin,
        endpoint=ExchangeAccount.Endpoint.CUSTOM,
        custom_url=sim.url,
    )
    browser = Browser(application, "/ws/accounts/all/", await async_session_cookie(team_admin))
    assert (await browser.connect())[0]
    await browser.until(
        lambda: shows_truth(browser, sim, live_team_account)() and shows_truth(browser, sim, personal)()
    )
    assert set(browser.seq) == {live_team_account.pk, personal.pk}
    # Per-account resync and refresh.
    await browser.send({"type": "resync", "account": personal.pk})
    await browser.until(lambda: browser.seq.get(personal.pk) is not None)
    sim.add_orders(personal.public_key, 2)
    await browser.until(shows_truth(browser, sim, personal))
    await browser.disconnect()


async def test_snapshots_and_changes_bigger_than_a_message_come_in_bounded_pieces(
    settings: Any,
    application: Any,
    team_admin: Any,
    live_team_account: ExchangeAccount,
    sim: Simulator,
    connected: list[Any],
) -> None:
    """Each account's snapshot in parts (back to back), a big change in consecutive diffs: the page converges."""
    settings.QFEXDASH_WS_ROWS_PER_MESSAGE = 7
    personal = await sync_to_async(exchange_accounts.account_create)(
        actor=team_admin,
        label="Adam personal",
        public_key="qfex_pub_owner_personal",
        secret="qfex_secret_owner_personal_7f3a9c2e51d8",
        owner_user=team_admin,
        endpoint=ExchangeAccount.Endpoint.CUSTOM,
        custom_url=sim.url,
    )
    accounts = (live_team_account, personal)
    browser = Browser(application, "/ws/accounts/all/", await async_session_cookie(team_admin))
    assert (await browser.connect())[0]
    await browser.until(lambda: all(shows_truth(browser, sim, account)() for account in accounts))
    # Ask for snapshots now that the books are in (the feed may also send one by itself meanwhile). A
    # socket that holds everything is sent no snapshot for a resync: make it miss one diff of each.
    for account in accounts:
        connected[0].sent[account.pk] -= 1
    browser.parts_seen.clear()
    await browser.send({"type": "resync"})

    def parts_of(account: ExchangeAccount) -> list[tuple[int, int]]:
        return [(part, parts) for pk, _, part, parts in browser.parts_seen if pk == account.pk]

    await browser.until(lambda: all(len(parts_of(account)) >= 5 for account in accounts))
    for account in accounts:
        parts = parts_of(account)
        # 30 orders and 2 TWAPs at 7 rows per message: 5 parts, in order, each snapshot whole.
        assert parts == [(n, 5) for n in range(1, 6)] * (len(parts) // 5)
        assert shows_truth(browser, sim, account)()
    assert browser.broken_parts == 0
    assert browser.interleaved == 0

    seq = browser.seq[live_team_account.pk]
    sim.add_orders(live_team_account.public_key, 20)
    await browser.until(shows_truth(browser, sim, live_team_account))
    assert browser.seq[live_team_account.pk] >= seq + 3  # 20 rows, 7 per diff
    assert max(browser.diff_sizes) <= 7
    # A reconcile that saw the new orders before their pushes arrived may jump the seq instead of sending
    # more than two messages' worth of diff: the page resyncs then, which is allowed (and converges).
    assert (browser.broken_parts, browser.interleaved) == (0, 0)
    await browser.disconnect()


async def test_all_accounts_stream_picks_up_a_newly_shared_account(
    application: Any, outsider: Any, live_team_account: ExchangeAccount, team: Any, sim: Simulator
) -> None:
    browser = Browser(application, "/ws/accounts/all/", await async_session_cookie(outsider))
    assert (await browser.connect())[0]
    await sync_to_async(teams.membership_add)(actor=None, team=team, user=outsider, role=Membership.Role.VIEWER)
    await browser.until(shows_truth(browser, sim, live_team_account))
    await browser.disconnect()


class _SlowConsumer(AccountStreamConsumer):
    """A consumer that stalls relaying while `stall` is clear — a viewer too slow to keep up."""

    stall: asyncio.Event  # not `gate`: the consumer has its own (FrameGate)

    async def feed_message(self, event: dict[str, Any]) -> None:
        await type(self).stall.wait()
        await super().feed_message(event)


async def test_a_viewer_that_misses_diffs_heals_through_resync(
    settings: Any, trader: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    """F9: with a tiny channel capacity, group messages to a stalled viewer are dropped; the page sees
    the seq gap, asks for a snapshot and converges to the exchange's state."""
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "qfexdash.channel_layers.SweepingInMemoryChannelLayer", "CONFIG": {"capacity": 1}}
    }
    _SlowConsumer.stall = asyncio.Event()
    _SlowConsumer.stall.set()
    application = ExactOriginMiddleware(
        SessionMiddlewareStack(
            SessionUserMiddleware(URLRouter([path("ws/accounts/<int:account_id>/", _SlowConsumer.as_asgi())]))
        )
    )
    browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(shows_truth(browser, sim, live_team_account))
    feed = get_feed()
    _SlowConsumer.stall.clear()
    # Three separate changes, each fetched and published while the viewer is stalled.
    for _ in range(3):
        fetches = feed.stats(live_team_account.pk).fetches
        sim.add_orders(live_team_account.public_key, 1)

        def fetched_again(s: Any, n: int = fetches) -> bool:
            return feed.stats(s.account).fetches > n

        await feed.wait_for(live_team_account.pk, fetched_again, PATIENCE)
        await feed.wait_for(
            live_team_account.pk, lambda s: set(s.orders) == set(truth(sim, live_team_account)[0]), PATIENCE
        )
    _SlowConsumer.stall.set()
    sim.add_orders(live_team_account.public_key, 1)
    await browser.until(lambda: browser.gaps > 0 and shows_truth(browser, sim, live_team_account)())
    await browser.disconnect()


async def test_twenty_users_flooding_refresh_stay_within_the_upstream_policy(
    application: Any, team: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    """S18: one upstream session; fetches bounded by coalescing, whatever 20 users click."""
    users = []
    for n in range(20):
        user = await sync_to_async(get_user_model().objects.create_user)(username=f"clicker{n}", password=PASSWORD)
        await sync_to_async(teams.membership_add)(actor=None, team=team, user=user, role=Membership.Role.VIEWER)
        users.append(user)
    browsers = []
    for user in users:
        browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(user))
        assert (await browser.connect())[0]
        browsers.append(browser)
    for browser in browsers:
        await browser.until(shows_truth(browser, sim, live_team_account))
    feed = get_feed()
    fetches, pages = feed.stats(live_team_account.pk).fetches, feed.stats(live_team_account.pk).pages
    requests = sim.request_count("get_user_orders")
    started = time.monotonic()
    for _ in range(15):  # each user clicks 15 times: within the per-socket rate, far beyond any need
        for browser in browsers:
            await browser.send({"type": "refresh"})
    # An unknown frame answered (with an error) means every earlier frame of that socket was handled.
    for browser in browsers:
        await browser.send({"type": "barrier"})

        def answered(b: Any = browser) -> bool:
            return b.last_type == "error"

        await browser.until(answered)
    elapsed = time.monotonic() - started
    made = feed.stats(live_team_account.pk).fetches - fetches
    coalesce = settings_value("QFEXDASH_REFRESH_COALESCE_SECONDS")
    reconcile = settings_value("QFEXDASH_RECONCILE_SECONDS")
    assert made <= math.ceil(elapsed / coalesce) + math.ceil(elapsed / reconcile) + 2
    assert made < 20 * 15
    assert sim.request_count("get_user_orders") - requests <= feed.stats(live_team_account.pk).pages - pages + 2
    assert sim.connection_count == 1
    for browser in browsers:
        await browser.disconnect()


def settings_value(name: str) -> float:
    from django.conf import settings

    return float(getattr(settings, name))


async def test_viewer_count_does_not_change_upstream_traffic(
    application: Any, team: Any, team_admin: Any, live_team_account: ExchangeAccount, sim: Simulator
) -> None:
    """P3 in miniature: joining viewers are served from the cache, not by new fetches."""
    first = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(team_admin))
    assert (await first.connect())[0]
    await first.until(shows_truth(first, sim, live_team_account))
    feed = get_feed()
    fetches = feed.stats(live_team_account.pk).fetches
    reconcile = settings_value("QFEXDASH_RECONCILE_SECONDS")
    started = time.monotonic()
    others = []
    for n in range(10):
        user = await sync_to_async(get_user_model().objects.create_user)(username=f"watcher{n}", password=PASSWORD)
        await sync_to_async(teams.membership_add)(actor=None, team=team, user=user, role=Membership.Role.VIEWER)
        browser = Browser(application, f"/ws/accounts/{live_team_account.pk}/", await async_session_cookie(user))
        assert (await browser.connect())[0]
        assert (await browser.receive())["type"] == "snapshot"
        others.append(browser)
    elapsed = time.monotonic() - started
    # Only the reconcile ticks fetch; ten joins add nothing.
    assert feed.stats(live_team_account.pk).fetches - fetches <= math.ceil(elapsed / reconcile) + 1
    for browser in [first, *others]:
        await browser.disconnect()


async def test_feed_follows_an_account_moved_to_another_endpoint(
    application: Any, trader: Any, team_account: ExchangeAccount, sim: Simulator
) -> None:
    # Pointing a persona account at the simulator after the page opened: the error clears on its own.
    browser = Browser(application, f"/ws/accounts/{team_account.pk}/", await async_session_cookie(trader))
    assert (await browser.connect())[0]
    await browser.until(lambda: browser.states.get(team_account.pk) == lp.STALE)
    await sync_to_async(point_at)(team_account, sim.url)
    await browser.until(shows_truth(browser, sim, team_account))
    await browser.disconnect()
