"""Issue 18's awkward pushes through the real feed: a QFEX stand-in over loopback sends exactly the pushes
each finding needs (tests/live/feed/scripted_exchange.py), and the feed, its session and its merge rule
(docs/qfex-protocol.md §4.4) are the real ones. No order open at QFEX may stay hidden after a read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from orders.live import protocol as lp
from orders.models import ExchangeAccount
from tests.live.feed.conftest import PATIENCE, GroupListener, wait_until
from tests.live.feed.scripted_exchange import ScriptedExchange, order
from tests.personas import point_at

pytestmark = pytest.mark.django_db(transaction=True)

A, B = order("ord-a"), order("ord-b", quantity=5, quantity_remaining=5)


async def _watch(make_feed: Any, account: ExchangeAccount, exchange: ScriptedExchange, **config: Any) -> Any:
    account = await sync_to_async(point_at)(account, exchange.url)
    feed = make_feed(reconcile_seconds=60.0, rate_budget_share=1.0, **config)  # prompt reads are not held back
    listener = await GroupListener(feed.channel_layer, account.pk).start()
    await feed.watch(account.pk, "viewer")
    await feed.wait_for(account.pk, lambda s: set(s.orders) == {"ord-a", "ord-b"}, PATIENCE)
    return feed, listener, account.pk


async def _read_once_more(feed: Any, account_id: int, exchange: ScriptedExchange) -> None:
    reads = exchange.reads
    assert await asyncio.wait_for(await feed.refresh(account_id, max_age=0), PATIENCE)
    assert exchange.reads > reads


@pytest.mark.parametrize("status", ["REJECTED", "CANNOT_MODIFY_PARTIAL_FILL", "FAILED_MARGIN_CHECK", "RATE_LIMITED"])
async def test_a_refusal_pushed_under_a_live_orders_id_leaves_it_on_the_table(
    make_feed: Any, owner_account: ExchangeAccount, status: str
) -> None:
    """Finding 1: QFEX answers a refused modify or cancel under the order's own id; the order stays open."""
    with ScriptedExchange([A, B]) as exchange:
        feed, _listener, account_id = await _watch(make_feed, owner_account, exchange)
        reads = exchange.reads
        exchange.push(A, status=status, price=1.0, quantity_remaining=0)
        await wait_until(lambda: exchange.reads > reads, what="the read a refusal of a shown order asks for")
        await _read_once_more(feed, account_id, exchange)
        snapshot = await feed.snapshot(account_id)
        assert set(snapshot.orders) == {"ord-a", "ord-b"}
        assert snapshot.orders["ord-a"]["price"] == "187.25"  # no field of the row changed
        assert snapshot.closed == ()


async def test_a_wrong_close_gives_way_to_the_next_read_without_update_time(
    make_feed: Any, owner_account: ExchangeAccount
) -> None:
    """Finding 2: a close is not a veto on every later read. QFEX keeps listing the order, and no push or
    page carries update_time: the next complete read shows it again and withdraws its Closed row."""
    with ScriptedExchange([A, B]) as exchange:
        feed, listener, account_id = await _watch(make_feed, owner_account, exchange)
        exchange.push(A, status="CANCELLED")
        closed = await listener.until(lambda m: m["type"] == lp.DIFF and "ord-a" in m["remove"]["orders"])
        assert [row["id"] for row in closed["closed"]] == ["ord-a"]
        await _read_once_more(feed, account_id, exchange)
        back = await listener.until(lambda m: m["type"] == lp.DIFF and "ord-a" in m["remove"]["closed"])
        assert [row["id"] for row in back["upsert"]["orders"]] == ["ord-a"]
        snapshot = await feed.snapshot(account_id)
        assert set(snapshot.orders) == {"ord-a", "ord-b"}
        assert snapshot.closed == ()


async def test_a_modify_under_a_new_id_shaped_like_another_order_removes_nothing_else(
    make_feed: Any, owner_account: ExchangeAccount
) -> None:
    """Finding 3: A shrinks from 10 to 5 under a new id and now looks like B; B stays, A goes with a read."""
    with ScriptedExchange([A, B]) as exchange:
        feed, _listener, account_id = await _watch(make_feed, owner_account, exchange)
        a2 = order("ord-a2", quantity=5, quantity_remaining=5, status="MODIFIED")
        exchange.set_book([B, a2])
        reads = exchange.reads
        exchange.push(a2)
        await wait_until(lambda: exchange.reads > reads, what="the read a new id asks for")
        await feed.wait_for(account_id, lambda s: set(s.orders) == {"ord-b", "ord-a2"}, PATIENCE)
        snapshot = await feed.snapshot(account_id)
        assert [(row["id"], row["outcome"]) for row in snapshot.closed] == [("ord-a", "closed")]
        assert "modified under a new id" in snapshot.closed[0]["reason"]


async def test_late_pushes_after_a_read_never_hide_or_double_an_order(
    make_feed: Any, owner_account: ExchangeAccount
) -> None:
    """Finding 4: A is cancelled at QFEX and its pushes arrive only after a read that shows it gone. The late
    fill shows it unconfirmed until the read it asks for; the late cancel replaces its one Closed row."""
    with ScriptedExchange([A, B]) as exchange:
        feed, listener, account_id = await _watch(make_feed, owner_account, exchange)
        exchange.set_book([B])
        await _read_once_more(feed, account_id, exchange)
        await feed.wait_for(account_id, lambda s: set(s.orders) == {"ord-b"}, PATIENCE)
        seq = (await feed.snapshot(account_id)).seq
        exchange.push(A, status="FILLED", quantity_remaining=4)  # late: from before the cancel
        unconfirmed = await listener.until(lambda m: m["type"] == lp.DIFF and m["seq"] > seq)
        assert [(row["id"], row.get("unconfirmed")) for row in unconfirmed["upsert"]["orders"]] == [("ord-a", True)]
        await feed.wait_for(account_id, lambda s: set(s.orders) == {"ord-b"}, PATIENCE)  # the prompt read
        exchange.push(A, status="CANCELLED", quantity_remaining=4)  # the late cancel
        await listener.until(lambda m: m["type"] == lp.DIFF and [r["reason"] for r in m["closed"]] == [
            "Partly filled, the rest cancelled"])  # fmt: skip
        await _read_once_more(feed, account_id, exchange)
        snapshot = await feed.snapshot(account_id)
        assert set(snapshot.orders) == {"ord-b"}
        assert [row["id"] for row in snapshot.closed] == ["ord-a"]  # one Closed row, never two


@pytest.mark.parametrize(
    ("tif", "order_type", "words"),
    [("IOC", "LIMIT", "immediate-or-cancel"), ("FOK", "LIMIT", "fill-or-kill"), ("IOC", "MARKET", "market order")],
)
async def test_an_ioc_fok_or_market_partial_fill_closes_at_once_with_the_right_reason(
    make_feed: Any, owner_account: ExchangeAccount, tif: str, order_type: str, words: str
) -> None:
    """Finding 5: a partial FILLED of an order that cannot rest ends it; no read is needed to remove it."""
    with ScriptedExchange([A, B]) as exchange:
        feed, listener, account_id = await _watch(make_feed, owner_account, exchange, prompt_reconcile_seconds=60.0)
        quick = order("ord-q", time_in_force=tif, type=order_type)
        exchange.push(quick)  # ACK
        await feed.wait_for(account_id, lambda s: "ord-q" in s.orders, PATIENCE)
        reads = exchange.reads
        exchange.push(quick, status="FILLED", quantity_remaining=6)
        message = await listener.until(lambda m: m["type"] == lp.DIFF and "ord-q" in m["remove"]["orders"])
        (closed,) = message["closed"]
        assert (closed["outcome"], closed["filled"]) == ("cancelled", "4")
        assert closed["reason"] == f"Partly filled, the rest cancelled ({words})"
        assert exchange.reads == reads
