"""Issue 14: the Closed tab (from the snapshot's and the diffs' closed rows), the summary bar, grouping by
symbol, filters whose effect is visible and clears in one click."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from bench.livepage import closed_row, diff, order_row, snapshot

pytestmark = pytest.mark.browser

CLOSED = "window.qfexLive.closed.getData('active').map(d => d.id)"


def test_closed_tab_lists_filled_and_cancelled_orders_newest_first(live_site, tmp_path: Path) -> None:
    closed = [closed_row(1), closed_row(2, outcome="cancelled", status="CANCELLED", filled="0", fill_price=None,
                                        reason="Cancelled by the trader")]  # fmt: skip
    site = live_site(lambda _: [snapshot(1, [order_row(5), order_row(6)], closed=closed)])
    page = site.open()
    site.wait_seq(1)
    assert page.locator("#closed-count").text_content() == "2 orders"
    assert not page.locator("#panel-closed").is_visible()

    page.get_by_role("tab", name="Closed").click()
    assert page.locator("#panel-closed").is_visible()
    assert page.get_by_role("tab", name="Closed").get_attribute("aria-selected") == "true"
    assert "tab=closed" in page.url
    outcome = page.locator("#closed-table .tabulator-row[data-id='ord-00002'] [tabulator-field='outcome']")
    assert outcome.text_content() == "Cancelled"
    reason = page.locator("#closed-table .tabulator-row[data-id='ord-00002'] [tabulator-field='reason']")
    assert reason.text_content() == "Cancelled by the trader"
    fill = page.locator("#closed-table .tabulator-row[data-id='ord-00001'] [tabulator-field='_n_fill_price']")
    assert fill.text_content() == "101.20"

    # An order filled since: it leaves the open orders saying so, and tops the Closed list.
    site.ws.send(diff(2, remove_orders=["ord-00005"], closed=[closed_row(5, closed_at=closed[0]["closed_at"] + 60)]))
    site.wait_seq(2)
    assert site.js(CLOSED)[0] == "ord-00005"
    assert page.locator("#closed-count").text_content() == "3 orders"
    assert page.locator("#orders-count").text_content() == "1 order"

    # Arrow keys move between the tabs.
    page.get_by_role("tab", name="Closed").focus()
    page.keyboard.press("ArrowLeft")
    assert page.get_by_role("tab", name="Open orders").get_attribute("aria-selected") == "true"
    page.keyboard.press("ArrowRight")

    with page.expect_download() as info:
        page.locator("[data-export='closed']").click()
    target = tmp_path / "closed.csv"
    info.value.save_as(target)
    table = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    head = table[0]
    assert {"Outcome", "Outcome (code)", "Reason", "Closed", "Fill price"} <= set(head)
    assert [r[head.index("Outcome")] for r in table[1:]] == ["Filled", "Filled", "Cancelled"]


def test_closed_list_keeps_the_last_500_per_account(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [], closed=[closed_row(n) for n in range(495)])])
    page = site.open()
    site.wait_seq(1)
    site.ws.send(diff(2, closed=[closed_row(1000 + n) for n in range(10)]))
    site.wait_seq(2)
    assert page.locator("#closed-count").text_content() == "500 orders"
    ids = site.js("() => window.qfexLive.closed.getData().map(d => d.id)")
    assert "ord-01009" in ids
    assert "ord-00494" not in ids  # the oldest went


def test_summary_bar_counts_notional_per_symbol_and_a_symbol_filters(live_site) -> None:
    rows = [
        order_row(0, symbol="AAPL-USD", side="BUY", notional="1000.50"),
        order_row(1, symbol="AAPL-USD", side="SELL", notional="250.25"),
        order_row(2, symbol="TSLA-USD", side="SELL", notional="99.99"),
    ]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)
    site.wait("() => document.getElementById('summary-count').textContent === '3'")
    assert page.locator("#summary-buy").text_content() == "1,000.50"
    assert page.locator("#summary-sell").text_content() == "350.24"
    symbols = page.locator("#summary-symbols .summary-symbol").all_text_contents()
    assert symbols == ["AAPL-USD 2 orders net +750.25", "TSLA-USD 1 order net -99.99"]

    page.locator("#summary-symbols .summary-symbol", has_text="TSLA-USD").click()
    assert page.input_value("#live-symbol") == "TSLA-USD"
    site.wait("() => document.getElementById('summary-count').textContent === '1 shown'")
    assert page.locator("#summary-sell").text_content() == "99.99"


def test_filters_say_what_they_hide_and_clear_in_one_click(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [order_row(n) for n in range(9)])])
    page = site.open()
    site.wait_seq(1)
    assert page.locator("#live-filter-note").is_hidden()

    page.fill("#live-search", "nothing-matches-this")
    site.wait("() => !document.getElementById('live-filter-note').hidden")
    note = page.locator("#live-filter-text").text_content()
    assert note.startswith("Filtered by search “nothing-matches-this”: showing 0 of 9 open orders")
    placeholder = page.locator("#orders-table .live-placeholder")
    assert "Nothing matches the filters." in placeholder.text_content()
    assert "No open orders" not in placeholder.text_content()

    placeholder.get_by_role("button", name="Clear filters").click()
    site.wait("() => document.getElementById('orders-count').textContent === '9 orders'")
    assert page.input_value("#live-search") == ""
    assert page.locator("#live-filter-note").is_hidden()

    page.select_option("#live-symbol", "NVDA-USD")
    page.locator("#live-clear").click()
    site.wait("() => document.getElementById('orders-count').textContent === '9 orders'")
    assert "symbol=" not in page.url


def test_grouping_by_symbol(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [order_row(n) for n in range(9)])])
    page = site.open()
    site.wait_seq(1)
    page.get_by_label("Group by symbol").check()
    groups = page.locator("#orders-table .tabulator-group")
    site.wait("() => document.querySelectorAll('#orders-table .tabulator-group').length === 3")
    assert sorted(g.split(" ")[0] for g in groups.all_text_contents()) == ["AAPL-USD", "NVDA-USD", "TSLA-USD"]
    assert "group=symbol" in page.url
    page.reload()
    site.ws.wait_connections(2)
    site.wait_seq(1)
    assert page.get_by_label("Group by symbol").is_checked()
    site.wait("() => document.querySelectorAll('#orders-table .tabulator-group').length === 3")


def test_one_closed_row_per_order_and_a_re_listed_order_leaves_the_closed_tab(live_site) -> None:
    """Issue 18: a diff's closed row replaces the order's row (never a second one); its remove.closed
    withdraws it when a complete read lists the order again."""
    site = live_site(lambda _: [snapshot(1, [order_row(5)], closed=[closed_row(6, outcome="closed")])])
    page = site.open()
    site.wait_seq(1)
    assert page.locator("#closed-count").text_content() == "1 order"
    relisted = diff(2, orders=[order_row(6)])
    relisted["remove"]["closed"] = ["ord-00006"]
    site.ws.send(relisted)
    site.wait_seq(2)
    site.wait("() => document.getElementById('closed-count').textContent === '0 orders'")
    assert page.locator("#orders-count").text_content() == "2 orders"
    late = closed_row(5, outcome="cancelled", status="CANCELLED", reason="Cancelled")
    site.ws.send(diff(3, remove_orders=["ord-00005"], closed=[closed_row(5)]))
    site.ws.send(diff(4, closed=[late]))  # a late push for the same order
    site.wait_seq(4)
    assert site.js("() => window.qfexLive.closed.getData().map(d => d.id)") == ["ord-00005"]
    assert page.locator("#closed-count").text_content() == "1 order"
    page.get_by_role("tab", name="Closed").click()
    reason = page.locator("#closed-table .tabulator-row[data-id='ord-00005'] [tabulator-field='reason']")
    assert reason.text_content() == "Cancelled"
