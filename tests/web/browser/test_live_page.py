"""The live page in real Chromium, fed over a real WebSocket by a fake server that speaks the live protocol.

Every wait is on a page condition (the page's test hooks) or on a frame reaching the fake server; no sleeps.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from bench.livepage import (
    ACCOUNT,
    AS_OF,
    diff,
    order_row,
    serious_axe_violations,
    snapshot,
    snapshot_parts,
    status,
    twap_row,
)
from tests.web.browser.conftest import LiveSite

pytestmark = pytest.mark.browser

ORDER_ROWS = "window.qfexLive.orders.getData('active').filter(d => !d._gone)"


def _rows(n: int) -> list[dict]:
    return [order_row(i) for i in range(n)]


def _cell(site: LiveSite, table: str, row_id: str, column: str) -> str:
    """CSS selector of one rendered cell. Tabulator marks cells with its field, which for decimal columns is
    a numeric copy of the column's value: ask the page for it. Rows carry their id (data-id)."""
    field = site.js("([t, c]) => window.qfexLive.views[t].specById.get(c).field", [table, column])
    return f"#{table}-table .tabulator-row[data-id='{row_id}'] [tabulator-field='{field}']"


def _header(table: str, column: str) -> str:
    return f"#{table}-table .tabulator-col[data-column='{column}']"


def _column_values(site: LiveSite, field: str) -> list:
    return site.js(f"() => {ORDER_ROWS}.map(d => d[{field!r}])")  # type: ignore[return-value]


def test_snapshot_renders_rows_and_status(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(5), [twap_row(1), twap_row(2, filled_num_orders=3)])])
    page = site.open()
    site.wait_seq(1)

    assert page.locator("body").get_attribute("data-socket") == "open"
    assert page.locator("body").get_attribute("data-state") == "live"
    assert page.locator("#orders-count").text_content() == "5 orders"
    assert page.locator("#twaps-count").text_content() == "2 TWAPs"
    assert page.locator("#live-status-badge").text_content() == "Live"
    assert page.locator(_cell(site, "orders", "ord-00002", "price")).text_content() == "102.25"
    assert page.locator(_cell(site, "orders", "ord-00002", "notional")).text_content() == "1,020.50"
    # TWAP progress: the bar with its accessible value, and the percentage beside it.
    progress = page.locator(_cell(site, "twaps", "twap-001", "progress"))
    assert progress.locator("[role=progressbar]").get_attribute("aria-valuetext") == "25.0%"
    assert progress.locator(".twap-progress-pct").text_content() == "25.0%"
    assert page.locator(_cell(site, "twaps", "twap-002", "slices")).text_content() == "3 / 8"
    assert page.locator(_cell(site, "twaps", "twap-001", "slices")).text_content() == "≈ 2 / 8"  # estimated
    age = page.locator(_cell(site, "orders", "ord-00002", "age") + " time")
    assert re.fullmatch(r"\d+ (s|min|h)( \d+ min)?", age.text_content())  # "12 s": how old, not "12 s ago"
    assert age.get_attribute("title").endswith(" UTC")  # the exact time, labelled


def test_diff_flashes_changed_cell_and_removed_row_lingers_then_goes(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(4))])
    page = site.open()
    site.wait_seq(1)

    site.ws.send(
        diff(2, orders=[order_row(1, price="555.5", status="MODIFIED"), order_row(9)], remove_orders=["ord-00002"])
    )
    site.wait_seq(2)

    price = page.locator(_cell(site, "orders", "ord-00001", "price"))
    assert price.text_content() == "555.50"  # at the symbol's two decimals
    assert "cell-flash" in price.get_attribute("class")
    assert "cell-flash" not in page.locator(_cell(site, "orders", "ord-00001", "side")).get_attribute("class")
    removed = page.locator("#orders-table .tabulator-row[data-id='ord-00002']")
    assert "row-gone" in removed.get_attribute("class")
    assert "line-through" in removed.locator("[tabulator-field='symbol']").evaluate(
        "el => getComputedStyle(el).textDecorationLine"
    )
    assert page.locator("#orders-count").text_content() == "4 orders"  # the lingering row is not counted
    assert "cell-flash" in page.locator(_cell(site, "orders", "ord-00009", "symbol")).get_attribute("class")

    # The flash fades and the struck-through row goes by themselves.
    site.wait("() => !document.querySelector('#orders-table .cell-flash')")
    site.wait("() => !document.querySelector('#orders-table .row-gone')")
    assert page.locator("#orders-table .tabulator-row[data-id='ord-00002']").count() == 0
    assert sorted(_column_values(site, "id")) == ["ord-00000", "ord-00001", "ord-00003", "ord-00009"]


def test_first_data_arriving_as_diffs_after_an_empty_snapshot_does_not_flash(live_site) -> None:
    # Before the server's first fetch a viewer gets an empty snapshot (as_of null); the first fetch
    # then arrives as diffs — for a big book several, all with the same as_of. That is a first load.
    empty = snapshot(1, [])
    empty["as_of"] = None
    empty["status"] = {"state": "connecting", "reason": "", "as_of": None, "next_retry_at": None}
    site = live_site(lambda _: [empty])
    page = site.open()
    site.wait_seq(1)

    site.ws.send(diff(2, orders=_rows(3), as_of=AS_OF + 1))
    site.ws.send(diff(3, orders=[order_row(n) for n in range(4, 7)], as_of=AS_OF + 1))
    site.wait_seq(3)
    assert page.locator("#orders-count").text_content() == "6 orders"
    assert page.locator("#orders-table .cell-flash").count() == 0

    # A later change is a change: it flashes.
    site.ws.send(diff(4, orders=[order_row(9)], as_of=AS_OF + 2))
    site.wait_seq(4)
    assert "cell-flash" in page.locator(_cell(site, "orders", "ord-00009", "symbol")).get_attribute("class")


def test_seq_gap_asks_for_a_snapshot_and_ignores_diffs_until_then(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(3))])
    page = site.open()
    site.wait_seq(1)

    site.ws.send(diff(3, orders=[order_row(0, price="1.00")]))  # seq 2 went missing
    _, frame = site.ws.wait_frame(lambda f: f.get("type") == "resync")
    assert frame == {"type": "resync"}
    site.ws.send(diff(4, orders=[order_row(0, price="2.00")]))  # still waiting for the snapshot: ignored
    assert page.locator("body").get_attribute("data-rendered-seq") == "1"

    site.ws.send(snapshot(4, [order_row(0, price="3.00"), order_row(1)]))
    site.wait_seq(4)
    site.ws.send(diff(5, orders=[order_row(1, price="4.00")]))
    site.wait_seq(5)
    assert sorted(_column_values(site, "price")) == ["3.00", "4.00"]  # exact text as sent
    assert page.locator("#orders-count").text_content() == "2 orders"


def test_a_snapshot_in_parts_renders_once_complete_and_a_missing_part_asks_for_resync(live_site) -> None:
    parts = snapshot_parts(1, _rows(1200), [twap_row(1), twap_row(2)], rows_per_message=500)
    assert [(p["part"], p["parts"], len(p["orders"])) for p in parts] == [(1, 3, 498), (2, 3, 500), (3, 3, 202)]
    site = live_site(lambda _: parts)
    page = site.open()
    site.wait_seq(1)
    assert page.locator("#orders-count").text_content() == "1,200 orders"
    assert page.locator("#twaps-count").text_content() == "2 TWAPs"
    assert sorted(_column_values(site, "id")) == [f"ord-{n:05d}" for n in range(1200)]

    # Part 2 of the next snapshot never comes: the set is dropped, the rows stay, the page asks again.
    later = snapshot_parts(2, [order_row(n, price="9.99") for n in range(1000, 2100)], rows_per_message=500)
    site.ws.send(later[0])
    site.ws.send(later[2])
    _, frame = site.ws.wait_frame(lambda f: f.get("type") == "resync")
    assert frame == {"type": "resync"}
    site.ws.send(diff(3, orders=[order_row(0, price="1.00")]))  # waiting for a snapshot: ignored
    assert page.locator("body").get_attribute("data-rendered-seq") == "1"
    assert page.locator("#orders-count").text_content() == "1,200 orders"

    for message in snapshot_parts(6, [order_row(n, price="9.99") for n in range(1000, 2100)], rows_per_message=500):
        site.ws.send(message)
    site.wait_seq(6)
    assert page.locator("#orders-count").text_content() == "1,100 orders"
    assert page.locator("#twaps-count").text_content() == "0 TWAPs"
    assert set(_column_values(site, "price")) == {"9.99"}


def test_sort_by_price_both_ways_numerically_with_aria_sort_and_keyboard(live_site) -> None:
    prices = ["9.5", "100", "25.25", "100", "1000.01", "0.5"]
    rows = [order_row(i, price=p) for i, p in enumerate(prices)]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)
    header = page.locator(_header("orders", "price"))

    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert _column_values(site, "price") == ["0.5", "9.5", "25.25", "100", "100", "1000.01"]
    # Ties are broken by id, so the two "100" rows keep one order.
    assert _column_values(site, "id")[3:5] == ["ord-00001", "ord-00003"]
    rendered = page.locator("#orders-table .tabulator-row [tabulator-field='_n_price']").all_text_contents()
    # Each symbol has one decimal count (AAPL-USD: 9.5 and 100 → one; the others two).
    assert rendered == ["0.50", "9.5", "25.25", "100.00", "100.0", "1,000.01"]

    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert _column_values(site, "price") == ["1000.01", "100", "100", "25.25", "9.5", "0.5"]

    # The keyboard does the same: headers are focusable, Enter and Space sort.
    qty = page.locator(_header("orders", "notional"))
    qty.focus()
    page.keyboard.press("Enter")
    assert qty.get_attribute("aria-sort") == "ascending"
    assert header.get_attribute("aria-sort") == "none"
    page.keyboard.press(" ")
    assert qty.get_attribute("aria-sort") == "descending"
    notionals = [float(v) for v in _column_values(site, "notional")]
    assert notionals == sorted(notionals, reverse=True)


def test_symbol_filter_text_search_and_counts(live_site) -> None:
    rows = _rows(9)  # AAPL, NVDA, TSLA three times each
    site = live_site(lambda _: [snapshot(1, rows, [twap_row(1), twap_row(2, symbol="AAPL-USD")])])
    page = site.open()
    site.wait_seq(1)

    options = page.locator("#live-symbol option").all_text_contents()
    assert options == ["All symbols", "AAPL-USD", "NVDA-USD", "TSLA-USD"]
    page.select_option("#live-symbol", "NVDA-USD")
    site.wait("() => document.getElementById('orders-count').textContent === 'shown 3 of 9 orders'")
    assert page.locator("#twaps-count").text_content() == "shown 1 of 2 TWAPs"
    assert set(_column_values(site, "symbol")) == {"NVDA-USD"}

    page.fill("#live-search", "DESK-4")  # case-insensitive, matches the client order id
    site.wait("() => document.getElementById('orders-count').textContent === 'shown 1 of 9 orders'")
    assert _column_values(site, "id") == ["ord-00004"]
    assert page.locator("#twaps-count").text_content() == "shown 0 of 2 TWAPs"
    assert "symbol=NVDA-USD" in page.url
    assert "q=DESK-4" in page.url

    # A live change that makes a row match shows it; the counts follow.
    site.ws.send(diff(2, orders=[order_row(7, client_order_id="desk-4-bis")]))
    site.wait("() => document.getElementById('orders-count').textContent === 'shown 2 of 9 orders'")

    page.select_option("#live-symbol", "")
    page.fill("#live-search", "")
    site.wait("() => document.getElementById('orders-count').textContent === '9 orders'")
    assert page.locator("#twaps-count").text_content() == "2 TWAPs"


def test_sort_filter_search_and_columns_restored_from_the_url(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(9))])
    page = site.open()
    site.wait_seq(1)

    page.locator(_header("orders", "price")).click()
    page.locator(_header("orders", "price")).click()
    page.select_option("#live-symbol", "TSLA-USD")
    page.fill("#live-search", "desk")
    page.locator(".live-columns summary").first.click()
    chooser = page.locator("#orders-columns")
    chooser.get_by_label("Client ID").uncheck()
    chooser.get_by_label("Order ID").check()
    site.wait("() => new URLSearchParams(location.search).get('q') === 'desk'")
    query = dict(part.split("=", 1) for part in page.url.split("?", 1)[1].split("&"))
    assert query["orders_sort"] == "price.desc"
    assert query["symbol"] == "TSLA-USD"
    assert query["orders_hide"] == "client_order_id"
    assert query["orders_show"] == "order_id"

    page.reload()
    site.ws.wait_connections(2)
    site.wait_seq(1)
    assert page.input_value("#live-symbol") == "TSLA-USD"
    assert page.input_value("#live-search") == "desk"
    header = page.locator(_header("orders", "price"))
    assert header.get_attribute("aria-sort") == "descending"
    assert not page.locator(_header("orders", "client_order_id")).is_visible()
    assert page.locator(_header("orders", "order_id")).is_visible()
    assert page.locator("#orders-count").text_content() == "shown 3 of 9 orders"
    assert _column_values(site, "price") == ["108.25", "105.25", "102.25"]
    page.locator(".live-columns summary").first.click()
    assert not page.locator("#orders-columns").get_by_label("Client ID").is_checked()


def test_csv_export_is_the_current_view_with_its_as_of_time(live_site, tmp_path: Path) -> None:
    rows = _rows(6)
    rows[4]["client_order_id"] = '=HYPERLINK("http://x")'
    rows[1]["price"] = "1.2999999999999998"  # a float's artefact upstream: exported as the value it stands for
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)

    page.select_option("#live-symbol", "NVDA-USD")  # ord-00001, ord-00004
    page.locator(_header("orders", "price")).click()
    page.locator(_header("orders", "price")).click()  # descending
    page.locator(".live-columns summary").first.click()
    page.locator("#orders-columns").get_by_label("Type", exact=True).uncheck()
    page.locator("#orders-columns").get_by_label("Order ID", exact=True).check()

    with page.expect_download() as info:
        page.locator("[data-export='orders']").click()
    download = info.value
    stamp = site.js("() => new Date(window.qfexLive.status().dataAsOf * 1000).toISOString()")
    compact = stamp[:19].replace("-", "").replace(":", "")
    assert download.suggested_filename == f"orders-account-{ACCOUNT}-{compact}Z.csv"
    target = tmp_path / "orders.csv"
    download.save_as(target)
    table = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))

    assert table[0] == [
        "Symbol", "Side", "Price", "Filled", "Size", "Remaining", "Notional", "Status", "Status (code)",
        "Placed", "Client ID", "Order ID", "Data as of",
    ]  # fmt: skip
    as_of = site.js("t => window.qfexLive.clock.text(t)", AS_OF)
    assert as_of.endswith(" UTC")
    assert [r[11] for r in table[1:]] == ["ord-00004", "ord-00001"]
    assert table[1][2] == "104.25"  # exact decimal text, no grouping
    assert table[2][2] == "1.3"
    assert table[1][6] == "1040.50"  # notional exact, not money-rounded
    assert table[1][7:9] == ["Partially filled", "ACK"]  # words and the raw code
    assert table[1][10] == '\'=HYPERLINK("http://x")'  # a formula from the exchange is not run
    assert table[2][9] == site.js("t => window.qfexLive.clock.text(t)", AS_OF - 1)
    assert {r[12] for r in table[1:]} == {as_of}
    assert len(table) == 3


def test_html_in_exchange_strings_is_shown_as_text(live_site) -> None:
    evil = "<img src=x onerror=window.__xss=1>"
    rows = [order_row(0, client_order_id=evil, symbol="<b>X</b>"), order_row(1)]
    twaps = [twap_row(1, client_twap_id=evil, status="<i>RUNNING</i>")]
    site = live_site(lambda _: [snapshot(1, rows, twaps)])
    page = site.open()
    site.wait_seq(1)
    site.ws.send(status(1, "stale", reason=evil))
    site.wait("() => document.body.dataset.state === 'stale'")

    assert page.locator(_cell(site, "orders", "ord-00000", "client_order_id")).text_content() == evil
    assert page.locator(_cell(site, "orders", "ord-00000", "symbol")).text_content() == "<b>X</b>"
    assert page.locator(_cell(site, "twaps", "twap-001", "client_twap_id")).text_content() == evil
    assert page.locator(_cell(site, "twaps", "twap-001", "status")).text_content() == "<i>running</i>"
    assert page.locator("#live-status-reason").text_content() == evil
    assert "<b>X</b>" in page.locator("#live-symbol option").all_text_contents()
    assert page.locator("main img, main b, main i").count() == 0
    assert site.js("() => window.__xss") is None


def test_status_shows_stale_with_reason_and_data_time_then_live(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(2))])
    page = site.open()
    site.wait_seq(1)

    reason = "QFEX is not answering."
    retry_at = site.js("() => Date.now() / 1000") + 60
    site.ws.send(status(1, "stale", reason=reason, as_of=AS_OF - 30, next_retry_at=retry_at, since=AS_OF - 20))
    site.wait("() => document.body.dataset.state === 'stale'")
    assert page.locator("#live-status").get_attribute("data-state") == "stale"
    assert page.locator("#live-status-badge").text_content() == "Stale"
    assert page.locator("#live-status-reason").text_content() == reason
    since = site.js("t => window.qfexLive.clock.text(t)", AS_OF - 20)
    assert page.locator("#live-status-since").text_content().startswith(f"since {since}")
    data_time = site.js("t => window.qfexLive.clock.text(t)", AS_OF - 30)
    assert page.locator("#live-status-time").text_content().startswith(f"Data as of {data_time}")
    assert page.locator("#live-status-retry").text_content().startswith("Next try in ")
    assert page.locator("#live-announcer").text_content() == f"Stale: {reason}"
    assert page.locator("#orders-count").text_content() == "2 orders"  # the last good data stays

    site.ws.send(status(1, "live", as_of=AS_OF + 5))
    site.wait("() => document.body.dataset.state === 'live'")
    assert page.locator("#live-status-reason").text_content() == ""
    assert page.locator("#live-status-retry").text_content() == ""
    assert page.locator("#live-status-since").text_content() == ""
    assert page.locator("#live-announcer").text_content() == "Live"


def test_reconnects_after_the_server_closes_and_gets_a_new_snapshot(live_site) -> None:
    def on_connect(index: int) -> list[dict]:
        if index == 0:
            return [snapshot(1, _rows(3))]
        return [snapshot(10, _rows(5))]  # a different server state after the restart

    site = live_site(on_connect)
    page = site.open()
    site.wait_seq(1)

    site.ws.close(code=1012, reason="restart")
    site.ws.wait_connections(2)
    site.wait_seq(10)
    assert page.locator("body").get_attribute("data-socket") == "open"
    assert page.locator("body").get_attribute("data-state") == "live"
    assert page.locator("#orders-count").text_content() == "5 orders"

    # The new connection continues from its own snapshot's seq.
    site.ws.send(diff(11, orders=[order_row(0, price="7.00")]))
    site.wait_seq(11)


def test_closed_socket_marks_data_stale_until_back(live_site) -> None:
    site = live_site(lambda index: [snapshot(1 + index, _rows(2))])
    page = site.open()
    site.wait_seq(1)
    # Hold the page in "disconnected" long enough to look: make its next attempt far away.
    site.js("() => { window.qfexLive.socket.baseDelayMs = 60000; window.qfexLive.socket._attempt = 5; }")

    site.ws.close(code=1011)
    site.wait("() => document.body.dataset.socket === 'closed'")
    assert page.locator("body").get_attribute("data-state") == "stale"
    assert "Connection to the server lost." in page.locator("#live-status-reason").text_content()
    assert page.locator("#live-status-retry").text_content().startswith("Next try in ")
    assert page.locator("#orders-count").text_content() == "2 orders"

    site.js("() => window.dispatchEvent(new Event('online'))")  # the network is back: try at once
    site.wait_seq(2)
    assert page.locator("body").get_attribute("data-state") == "live"


def test_refused_access_is_an_error_without_retries(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(2))])
    page = site.open()
    site.wait_seq(1)

    site.ws.close(code=4003)
    site.wait("() => document.body.dataset.state === 'error'")
    assert "Access to this account was refused" in page.locator("#live-status-reason").text_content()
    assert site.js("() => window.qfexLive.socket.nextRetryAt") is None


def test_too_many_sockets_says_what_to_do_without_retries(live_site) -> None:
    site = live_site(lambda _: [{"__close__": 4029}])
    page = site.open()
    site.wait("() => document.body.dataset.state === 'error'")
    assert "too many live pages" in page.locator("#live-status-reason").text_content()
    assert "Close some" in page.locator("body").text_content()
    assert site.js("() => window.qfexLive.socket.nextRetryAt") is None


def test_a_page_closed_for_falling_behind_reconnects(live_site) -> None:
    site = live_site(lambda index: [snapshot(1 + index, _rows(2 + index))])
    page = site.open()
    site.wait_seq(1)
    site.ws.close(code=4013)  # what the page says meanwhile: tests/js/socket.test.js
    site.ws.wait_connections(2)
    site.wait_seq(2)
    assert page.locator("#orders-count").text_content() == "3 orders"


def test_signed_out_close_is_checked_once_at_once_and_the_page_carries_on(live_site) -> None:
    """After a server key rotation another tab's page load re-signs the session and this socket is
    closed 4001: one immediate reconnect finds the session valid again."""
    site = live_site(lambda index: [snapshot(1 + index, _rows(2 + index))])
    page = site.open()
    site.wait_seq(1)

    site.ws.close(code=4001)
    site.ws.wait_connections(2)
    site.wait_seq(2)
    assert page.locator("body").get_attribute("data-state") == "live"
    assert page.locator("#orders-count").text_content() == "3 orders"

    # Working again, so a later sign-out is checked once more too.
    site.ws.close(code=4001)
    site.ws.wait_connections(3)
    site.wait_seq(3)


def test_signed_out_twice_in_a_row_is_final(live_site) -> None:
    site = live_site(lambda index: [snapshot(1, _rows(2))] if index == 0 else [{"__close__": 4001}])
    page = site.open()
    site.wait_seq(1)

    site.ws.close(code=4001)
    site.wait("() => document.body.dataset.state === 'error'")
    assert "signed out" in page.locator("#live-status-reason").text_content()
    assert site.js("() => window.qfexLive.socket.nextRetryAt") is None
    assert site.ws.connection_count == 2  # one check, no reconnect loop


def test_refresh_button_sends_refresh(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(1))])
    page = site.open()
    site.wait_seq(1)

    page.locator("#live-refresh").click()
    _, frame = site.ws.wait_frame(lambda f: f.get("type") == "refresh")
    assert frame == {"type": "refresh"}
    assert page.locator("#live-refresh").is_disabled()  # a short cooldown against click floods


def test_all_accounts_page_shows_accounts_and_resyncs_per_account(live_site) -> None:
    def on_connect(_: int) -> list[dict]:
        return [
            snapshot(1, [order_row(0), order_row(1)], [twap_row(1)]),
            snapshot(5, [order_row(0, account=8), order_row(2, account=8)], account=8),
        ]

    site = live_site(on_connect)
    page = site.open("/all")
    site.wait("() => window.qfexLive.seqs[7] === 1 && window.qfexLive.seqs[8] === 5")

    assert page.locator("#orders-count").text_content() == "4 orders"  # same order id in two accounts: two rows
    assert page.locator("#orders-table .cell-flash").count() == 0  # a first snapshot is not a change
    assert page.locator(_header("orders", "account_label")).is_visible()
    labels = page.locator("#orders-table .tabulator-row [tabulator-field='account_label']").all_text_contents()
    assert sorted(labels) == ["Desk 8", "Desk 8", "Desk A main", "Desk A main"]

    site.ws.send(diff(7, orders=[order_row(3, account=8)], account=8))  # account 8 missed seq 6
    _, frame = site.ws.wait_frame(lambda f: f.get("type") == "resync")
    assert frame == {"type": "resync", "account": 8}
    site.ws.send(diff(2, remove_orders=["ord-00001"]))  # account 7 is unaffected
    site.wait("() => window.qfexLive.seqs[7] === 2")

    site.ws.send(status(2, "stale", reason="QFEX is not answering."))
    site.wait("() => document.body.dataset.state === 'stale'")
    assert page.locator("#live-status-reason").text_content() == "Desk A main: QFEX is not answering."


def test_all_accounts_page_collects_snapshot_parts_per_account(live_site) -> None:
    seven = snapshot_parts(1, _rows(25), [twap_row(1)], rows_per_message=10)
    eight = snapshot_parts(5, [order_row(n, account=8) for n in range(12)], rows_per_message=10, account=8)
    assert (len(seven), len(eight)) == (3, 2)
    # Parts of different accounts may interleave; each account's set is collected on its own.
    site = live_site(lambda _: [seven[0], eight[0], seven[1], eight[1], seven[2]])
    page = site.open("/all")
    site.wait("() => window.qfexLive.seqs[7] === 1 && window.qfexLive.seqs[8] === 5")
    assert page.locator("#orders-count").text_content() == "37 orders"
    assert page.locator("#twaps-count").text_content() == "1 TWAP"

    # A part of another seq in the middle of account 8's set: that set is dropped and account 8 resynced.
    site.ws.send(snapshot_parts(6, [order_row(n, account=8) for n in range(3)], rows_per_message=2, account=8)[0])
    site.ws.send(snapshot_parts(7, [order_row(n, account=8) for n in range(3)], rows_per_message=2, account=8)[1])
    _, frame = site.ws.wait_frame(lambda f: f.get("type") == "resync")
    assert frame == {"type": "resync", "account": 8}
    site.ws.send(diff(2, remove_orders=["ord-00000"]))  # account 7 goes on
    site.wait("() => window.qfexLive.seqs[7] === 2")
    assert site.js("() => window.qfexLive.seqs[8]") == 5
    assert page.locator("#orders-count").text_content() == "36 orders"


def test_page_passes_an_axe_audit_empty_and_full(live_site) -> None:
    site = live_site()  # the server sends nothing at first: empty tables, "connecting"
    page = site.open()
    site.ws.wait_connections(1)
    site.wait("() => document.body.dataset.socket === 'open' && window.qfexLive.orders.getDataCount() === 0")
    assert serious_axe_violations(page) == []

    site.ws.send(snapshot(1, _rows(30), [twap_row(1), twap_row(2, reduce_only=True)]))
    site.wait_seq(1)
    page.locator(_header("orders", "price")).click()
    site.ws.send(diff(2, orders=[order_row(3, price="1.00")], remove_orders=["ord-00004"]))
    site.ws.send(status(2, "stale", reason="QFEX is not answering."))
    site.wait("() => document.body.dataset.state === 'stale' && document.querySelector('.row-gone')")
    page.locator(".live-columns summary").first.click()  # the open column chooser too
    assert serious_axe_violations(page) == []


def test_ten_thousand_orders_render_sort_and_take_a_diff(live_site) -> None:
    rows = [order_row(i, price=f"{(i * 7919) % 10007}.5") for i in range(10_000)]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)

    assert page.locator("#orders-count").text_content() == "10,000 orders"
    assert site.js("() => window.qfexLive.orders.getDataCount()") == 10_000
    # The virtual DOM renders only the rows in view.
    assert page.locator("#orders-table .tabulator-row").count() < 200

    page.locator(_header("orders", "price")).click()
    prices = site.js(f"() => {ORDER_ROWS}.map(d => Number(d.price))")
    assert prices == sorted(prices)

    upserts = [order_row(i, price="0.25") for i in range(0, 10_000, 100)]
    site.ws.send(diff(2, orders=upserts, remove_orders=["ord-00001"]))
    site.wait_seq(2)
    head = site.js(f"() => {ORDER_ROWS}.slice(0, 100).map(d => d.price)")
    assert head == ["0.25"] * 100  # changed rows moved into sorted place
    assert page.locator("#orders-count").text_content() == "9,999 orders"


def test_diffs_that_move_rows_keep_every_row_in_sorted_place_filtered_or_not(live_site) -> None:
    """Moved, added and removed rows land where the sort puts them, in both directions, with a symbol
    filter hiding rows that then change, and after it is cleared. Before a re-sort the page puts
    Tabulator's own row list in the shown order (so the sort starts from nearly sorted rows): that list
    must still hold every row exactly once, or rows would go missing or show twice."""
    book = {f"ord-{n:05d}": order_row(n, price=f"{(n * 37) % 101}.5") for n in range(300)}
    site = live_site(lambda _: [snapshot(1, list(book.values()))])
    page = site.open()
    site.wait_seq(1)
    price = page.locator(_header("orders", "price"))
    price.click()

    steps = [  # (direction, symbol filter) for each diff
        ("ascending", ""),
        ("ascending", "NVDA-USD"),
        ("descending", "NVDA-USD"),
        ("descending", ""),
    ]
    for step, (direction, symbol) in enumerate(steps, 1):
        if price.get_attribute("aria-sort") != direction:
            price.click()
        page.select_option("#live-symbol", symbol)
        # Every 7th row gets a new price (shown and hidden rows alike); one row goes, one comes.
        ids = [f"ord-{n:05d}" for n in range(step, 300, 7)]
        moved = [dict(book[i], price=f"{(n * 53 + step * 11) % 97}.75") for n, i in enumerate(ids) if i in book]
        added = order_row(1000 + step, price=f"{step * 20}.125")
        gone = f"ord-{step * 41 + 3:05d}"
        for row in (*moved, added):
            book[row["id"]] = row
        del book[gone]
        site.ws.send(diff(step + 1, orders=[*moved, added], remove_orders=[gone]))
        site.wait_seq(step + 1)

        # Ties go by row key (here: by id); a descending sort flips the whole comparison.
        shown = [row for row in book.values() if not symbol or row["symbol"] == symbol]
        shown.sort(key=lambda row: (float(row["price"]), row["id"]), reverse=direction == "descending")
        assert _column_values(site, "id") == [row["id"] for row in shown], f"step {step}"
        listed = site.js("() => window.qfexLive.orders.rowManager.rows.map(r => r.getData().id)")
        everything = site.js("() => window.qfexLive.orders.getData().map(d => d.id)")
        assert len(listed) == len(set(listed)) == len(everything)
        assert set(listed) == set(everything) >= set(book)  # plus removed rows still lingering
