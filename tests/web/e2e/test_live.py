"""The live page against the real stack: simulator → feed → consumer → Daphne → Chromium.

The simulator has pace 0: each test changes a book itself and waits until the page shows exactly the
simulator's book. Every wait is on a page condition (its test hooks) or a Playwright ``expect``.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from bench.harness.demo import PATIENCE_MS, Site
from orders.simulator import Simulator
from tests.web.e2e.stack import SHOWN_ORDERS, Browsing, book, wait_book, wait_live, wait_rows

pytestmark = pytest.mark.browser

MAIN = "Desk main"  # the biggest of the small books
HEDGES = "Desk hedges"
PERSONAL = "Demo personal"


def open_live(browsing: Browsing, site: Site, label: str) -> Page:
    page = browsing.page(site.live_path(label))
    wait_live(page)
    return page


def field_of(page: Page, table: str, column: str) -> str:
    """Tabulator's field for a column (decimal columns sort on a numeric copy with its own field name)."""
    return page.evaluate("([t, c]) => window.qfexLive.views[t].specById.get(c).field", [table, column])


def header(page: Page, column: str) -> Locator:
    return page.locator(f"#orders-table .tabulator-col[data-column='{column}']")


def shown(page: Page, *fields: str) -> list[list[Any]]:
    return page.evaluate(f"fields => {SHOWN_ORDERS}.map(d => fields.map(f => d[f]))", list(fields))


def test_account_page_shows_the_exchange_book(browsing: Browsing, site: Site, sim: Simulator) -> None:
    key = site.keys[MAIN]
    order_ids, twap_ids = book(sim, key)
    page = open_live(browsing, site, MAIN)

    wait_rows(page, order_ids, twap_ids)
    expect(page.locator("#orders-count")).to_have_text(f"{len(order_ids)} orders")
    expect(page.locator("#twaps-count")).to_have_text(f"{len(twap_ids)} TWAPs")
    expect(page.locator("#live-status-badge")).to_have_text("Live")
    expect(page.locator("#live-status-time")).to_contain_text("Data as of")
    assert page.title().startswith(MAIN)

    # What is rendered is the exchange's data: pick one order and read its cells in the DOM.
    order = sim.open_orders(key)[7]
    page.fill("#live-search", order["order_id"])
    expect(page.locator("#orders-count")).to_have_text(f"shown 1 of {len(order_ids)} orders")
    row = page.locator("#orders-table .tabulator-row")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-id", order["order_id"])
    for column in ("symbol", "client_order_id"):
        cell = row.locator(f"[tabulator-field='{field_of(page, 'orders', column)}']")
        expect(cell).to_have_text(order[column])
    # Codes are shown in words, the code itself in the tooltip.
    side = row.locator(f"[tabulator-field='{field_of(page, 'orders', 'side')}'] [title]")
    expect(side).to_have_text({"BUY": "Buy", "SELL": "Sell"}[order["side"]])
    expect(side).to_have_attribute("title", order["side"])
    expect(row.locator(f"[tabulator-field='{field_of(page, 'orders', 'status')}'] [title]")).to_have_attribute(
        "title", order["status"]
    )
    price = row.locator(f"[tabulator-field='{field_of(page, 'orders', 'price')}']").text_content()
    assert price is not None
    assert Decimal(price.replace(",", "")) == Decimal(str(order["price"]))


def test_sort_by_price_both_ways_and_by_keyboard(browsing: Browsing, site: Site, sim: Simulator) -> None:
    key = site.keys[MAIN]
    page = open_live(browsing, site, MAIN)
    wait_book(page, sim, key)
    price = header(page, "price")

    price.click()
    expect(price).to_have_attribute("aria-sort", "ascending")
    rows = [(Decimal(p), i) for p, i in shown(page, "price", "id")]
    assert rows == sorted(rows), "ascending by price, ties by id"
    # The rendered rows (the virtual DOM shows those in view) follow the same order.
    rendered = page.locator(f"#orders-table .tabulator-row [tabulator-field='{field_of(page, 'orders', 'price')}']")
    texts = rendered.all_text_contents()
    assert len(texts) >= 5
    assert [Decimal(t.replace(",", "")) for t in texts] == [p for p, _ in rows[: len(texts)]]

    price.click()
    expect(price).to_have_attribute("aria-sort", "descending")
    prices = [Decimal(p) for (p,) in shown(page, "price")]
    assert prices == sorted(prices, reverse=True)
    assert len(prices) == len(sim.open_orders(key))
    assert "orders_sort=price.desc" in page.url

    # Keyboard: the headers are focusable and Enter sorts like a click.
    quantity = header(page, "quantity_remaining")
    quantity.focus()
    page.keyboard.press("Enter")
    expect(quantity).to_have_attribute("aria-sort", "ascending")
    expect(price).to_have_attribute("aria-sort", "none")
    quantities = [Decimal(q) for (q,) in shown(page, "quantity_remaining")]
    assert quantities == sorted(quantities)
    page.keyboard.press("Enter")
    expect(quantity).to_have_attribute("aria-sort", "descending")
    quantities = [Decimal(q) for (q,) in shown(page, "quantity_remaining")]
    assert quantities == sorted(quantities, reverse=True)


def _search_hit(order: dict[str, Any], query: str) -> bool:
    """The page's search rule: case-insensitive, in the symbol, the ids, the client id, side, type or status
    (as codes and as words)."""
    fields = (order["symbol"], order["order_id"], order["client_order_id"], order["status"], order["side"],
              order["type"])  # fmt: skip
    return any(query.lower() in str(value).lower() for value in fields if value is not None)


def test_symbol_filter_and_text_search_narrow_rows_and_counts(browsing: Browsing, site: Site, sim: Simulator) -> None:
    key = site.keys[MAIN]
    page = open_live(browsing, site, MAIN)
    wait_book(page, sim, key)
    orders = sim.open_orders(key)
    twaps = sim.active_twaps(key)
    symbol, _ = Counter(o["symbol"] for o in orders).most_common(1)[0]
    of_symbol = [o for o in orders if o["symbol"] == symbol]
    twaps_of_symbol = [t for t in twaps if t["symbol"] == symbol]

    options = page.locator("#live-symbol option").all_text_contents()
    assert options == ["All symbols", *sorted({o["symbol"] for o in orders} | {t["symbol"] for t in twaps})]
    page.select_option("#live-symbol", symbol)
    expect(page.locator("#orders-count")).to_have_text(f"shown {len(of_symbol)} of {len(orders)} orders")
    expect(page.locator("#twaps-count")).to_have_text(f"shown {len(twaps_of_symbol)} of {len(twaps)} TWAPs")
    assert sorted(i for (i,) in shown(page, "id")) == sorted(o["order_id"] for o in of_symbol)

    # A client-id prefix that several orders of this symbol share (the simulator names them "<desk>-<n>").
    prefixes = Counter(o["client_order_id"].split("-")[0] for o in of_symbol if o["client_order_id"])
    query = prefixes.most_common(1)[0][0].upper()  # the search ignores case
    hits = [o for o in of_symbol if _search_hit(o, query)]
    assert 0 < len(hits) < len(of_symbol)
    page.fill("#live-search", query)
    expect(page.locator("#orders-count")).to_have_text(f"shown {len(hits)} of {len(orders)} orders")
    assert sorted(i for (i,) in shown(page, "id")) == sorted(o["order_id"] for o in hits)
    assert f"symbol={symbol}" in page.url
    assert f"q={query}" in page.url

    page.select_option("#live-symbol", "")
    page.fill("#live-search", "")
    expect(page.locator("#orders-count")).to_have_text(f"{len(orders)} orders")
    expect(page.locator("#twaps-count")).to_have_text(f"{len(twaps)} TWAPs")


def test_live_changes_appear_without_a_reload(browsing: Browsing, site: Site, sim: Simulator) -> None:
    key = site.keys[PERSONAL]
    page = open_live(browsing, site, PERSONAL)
    wait_book(page, sim, key)
    page.evaluate("() => { window.__sameDocument = true; }")

    [added] = sim.add_orders(key, 1, client_order_id="e2e-new")
    wait_book(page, sim, key)
    assert (
        page.evaluate(
            "id => window.qfexLive.orders.getData().find(d => d.id === id).client_order_id", added["order_id"]
        )
        == "e2e-new"
    )
    page.fill("#live-search", "e2e-new")
    expect(page.locator("#orders-table .tabulator-row")).to_have_count(1)
    expect(page.locator("#orders-table .tabulator-row")).to_have_attribute("data-id", added["order_id"])

    # A cancelled order leaves: struck through for a moment, then gone.
    assert sim.remove_order(key, added["order_id"]) is not None
    # Checked in the page on every frame: the struck-through moment is short and must not be missed.
    page.wait_for_function(
        "id => document.querySelector(`#orders-table .tabulator-row.row-gone[data-id='${id}']`)",
        arg=added["order_id"],
        timeout=PATIENCE_MS,
    )
    expect(page.locator("#orders-table .tabulator-row")).to_have_count(0)
    page.fill("#live-search", "")
    wait_book(page, sim, key)

    # Fills, new orders and cancellations from the exchange's own activity.
    sim.step(12)
    wait_book(page, sim, key)
    assert page.evaluate("() => window.__sameDocument") is True


def test_two_tabs_both_show_an_update(browsing: Browsing, site: Site, sim: Simulator) -> None:
    key = site.keys[HEDGES]
    context = browsing.context()
    tabs = [context.new_page(), context.new_page()]
    for tab in tabs:
        tab.goto(site.page_url(site.live_path(HEDGES)))
        wait_live(tab)
        wait_book(tab, sim, key)

    [added] = sim.add_orders(key, 1, client_order_id="e2e-two-tabs")
    for tab in tabs:
        wait_book(tab, sim, key)
        assert tab.evaluate("id => window.qfexLive.orders.getData().some(d => d.id === id)", added["order_id"])
    # Both tabs are served by one upstream session.
    assert sim.authenticated_connections(key) == 1


def test_upstream_silence_shows_stale_then_recovers(browsing: Browsing, site: Site, sim: Simulator) -> None:
    key = site.keys[PERSONAL]
    page = open_live(browsing, site, PERSONAL)
    wait_book(page, sim, key)
    count = page.locator("#orders-count").text_content()

    sim.faults.silent = True  # QFEX keeps the socket open but answers nothing
    try:
        page.wait_for_function("() => document.body.dataset.state === 'stale'", timeout=PATIENCE_MS)
        expect(page.locator("#live-status-badge")).to_have_text("Stale")
        reason = page.locator("#live-status-reason").text_content()
        assert reason is not None
        assert "QFEX" in reason
        assert "next try" not in reason.lower()  # one countdown, the page's own
        expect(page.locator("#live-status-retry")).to_contain_text("Next try in")
        assert not re.search(r"Traceback|Exception|Error\(|<", reason), reason
        # The last good data stays on screen, with its time.
        assert page.locator("#orders-count").text_content() == count
        expect(page.locator("#live-status-time")).to_contain_text("Data as of")
        sim.add_orders(key, 2, client_order_id="e2e-during-fault")
    finally:
        sim.faults.silent = False

    wait_live(page)
    wait_book(page, sim, key)
    expect(page.locator("#live-status-reason")).to_have_text("")


def test_html_in_client_order_id_is_shown_as_text(browsing: Browsing, site: Site, sim: Simulator) -> None:
    key = site.keys[HEDGES]
    evil = '<img src=x onerror="window.__xss=1">'
    [added] = sim.add_orders(key, 1, client_order_id=evil)
    page = open_live(browsing, site, HEDGES)
    wait_book(page, sim, key)

    page.fill("#live-search", "onerror")
    row = page.locator("#orders-table .tabulator-row")
    expect(row).to_have_count(1)
    cell = row.locator(f"[tabulator-field='{field_of(page, 'orders', 'client_order_id')}']")
    expect(cell).to_have_text(evil)
    expect(row).to_have_attribute("data-id", added["order_id"])
    assert page.locator("main img").count() == 0
    assert page.evaluate("() => window.__xss") is None


def test_csv_export_is_the_current_view(browsing: Browsing, site: Site, sim: Simulator, tmp_path: Path) -> None:
    key = site.keys[MAIN]
    page = open_live(browsing, site, MAIN)
    wait_book(page, sim, key)
    orders = {o["order_id"]: o for o in sim.open_orders(key)}
    symbol, _ = Counter(o["symbol"] for o in orders.values()).most_common(1)[0]
    page.select_option("#live-symbol", symbol)
    header(page, "price").click()
    header(page, "price").click()
    expect(header(page, "price")).to_have_attribute("aria-sort", "descending")
    page.locator(".live-columns summary").first.click()
    chooser = page.locator("#orders-columns")
    chooser.get_by_label("Type", exact=True).uncheck()
    chooser.get_by_label("Order ID", exact=True).check()
    expect(header(page, "type")).to_be_hidden()
    view = [i for (i,) in shown(page, "id")]

    with page.expect_download() as info:
        page.locator("[data-export='orders']").click()
    download = info.value
    target = tmp_path / "orders.csv"
    download.save_as(target)
    table = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))

    head, rows = table[0], table[1:]
    assert head[0] == "Symbol"
    assert head[-1] == "Data as of"
    assert "Type" not in head  # a hidden column is not exported
    assert "Take profit" not in head  # nor one hidden by default
    assert "Status (code)" in head
    column = {name: head.index(name) for name in ("Symbol", "Price", "Client ID", "Order ID")}
    assert [r[column["Order ID"]] for r in rows] == view
    assert sorted(view) == sorted(i for i, o in orders.items() if o["symbol"] == symbol)
    for r in rows:
        order = orders[r[column["Order ID"]]]
        assert r[column["Symbol"]] == symbol
        assert Decimal(r[column["Price"]]) == Decimal(str(order["price"]))  # exact text, no grouping
        assert r[column["Client ID"]] == order["client_order_id"]
    prices = [Decimal(r[column["Price"]]) for r in rows]
    assert prices == sorted(prices, reverse=True)

    # Every row carries the time its data was taken; the file's name carries it too.
    as_of = {r[-1] for r in rows}
    assert len(as_of) == 1
    [stamp] = as_of
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", stamp)  # the person's zone, labelled
    compact = stamp.removesuffix(" UTC").replace("-", "").replace(":", "").replace(" ", "T")
    assert download.suggested_filename == f"orders-account-{site.accounts[MAIN]}-{compact}Z.csv"
