"""Issue 14, the tables: numbers like an exchange, columns that fit a desk screen, several sorts, TWAPs at a
glance, words for codes, and the small things (Columns popover, "/", copying ids). Driven by the fake server."""

from __future__ import annotations

import time

import pytest

from bench.livepage import diff, order_row, snapshot, twap_row
from tests.web.browser.conftest import LiveSite

pytestmark = pytest.mark.browser

SHOWN = "window.qfexLive.orders.getData('active').filter(d => !d._gone)"


def _field(site: LiveSite, table: str, column: str) -> str:
    field = site.js("([t, c]) => window.qfexLive.views[t].specById.get(c).field", [table, column])
    assert isinstance(field, str), field
    return field


def _cells(site: LiveSite, table: str, column: str) -> str:
    return f"#{table}-table .tabulator-row [tabulator-field='{_field(site, table, column)}']"


def _cell(site: LiveSite, table: str, row_id: str, column: str) -> str:
    return f"#{table}-table .tabulator-row[data-id='{row_id}'] [tabulator-field='{_field(site, table, column)}']"


def _header(table: str, column: str) -> str:
    return f"#{table}-table .tabulator-col[data-column='{column}']"


# --- numbers ------------------------------------------------------------------------------------------


def test_each_symbol_has_one_decimal_count_aligned_on_the_point(live_site) -> None:
    rows = [
        order_row(0, symbol="AAPL-USD", price="69.8", quantity="10", quantity_remaining="10", filled="0.0"),
        order_row(1, symbol="AAPL-USD", price="72.67", quantity="2.5", quantity_remaining="2.25", filled="0.25"),
        order_row(2, symbol="BTC-USD", price="91264000.5", quantity="0.001", quantity_remaining="0.001", filled="0"),
        order_row(3, symbol="BTC-USD", price="1.2999999999999998", quantity="3", quantity_remaining="3", filled="0"),
        order_row(4, symbol="AAPL-USD", price="7", quantity="1", quantity_remaining="1", filled="0.00"),
    ]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)
    page.locator(_header("orders", "price")).click()

    text = {r: page.locator(_cell(site, "orders", f"ord-0000{r}", "price")).text_content() for r in range(5)}
    assert text == {0: "69.80", 1: "72.67", 2: "91,264,000.5", 3: "1.3", 4: "7.00"}
    remaining = {
        r: page.locator(_cell(site, "orders", f"ord-0000{r}", "quantity_remaining")).text_content() for r in (0, 1, 2)
    }
    assert remaining == {0: "10.00", 1: "2.25", 2: "0.001"}
    # "Filled / Size" shows one filled format per symbol, never "0.0" beside "0.00".
    assert page.locator(_cell(site, "orders", "ord-00000", "size")).text_content() == "0.00 / 10.00"
    assert page.locator(_cell(site, "orders", "ord-00004", "size")).text_content() == "0.00 / 1.00"
    # Tabular digits, and every decimal point of the column at the same x (whatever the symbol).
    assert (
        page.locator(_cells(site, "orders", "price") + " .num").first.evaluate(
            "el => getComputedStyle(el).fontVariantNumeric"
        )
        == "tabular-nums"
    )
    points = page.locator(_cells(site, "orders", "price") + " .num-f").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().left)"
    )
    assert len(points) == 5
    assert max(points) - min(points) < 0.5, points
    # Never cut off: the column grew to its widest value (91,264,000.5 padded to the widest fraction).
    for column in ("price", "quantity_remaining", "size"):
        assert page.locator(_cells(site, "orders", column)).evaluate_all(
            "els => els.every(e => e.scrollWidth <= e.clientWidth)"
        ), column
    # Sorting is by the exact value, not the text: 1.3 < 7 < 69.8 < 72.67 < 91264000.5.
    assert site.js(f"() => {SHOWN}.map(d => d.id)") == [f"ord-0000{n}" for n in (3, 4, 0, 1, 2)]


def test_a_new_value_with_more_decimals_redraws_its_symbol(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [order_row(0, price="69.8"), order_row(3, price="70")])])
    page = site.open()
    site.wait_seq(1)
    assert page.locator(_cell(site, "orders", "ord-00003", "price")).text_content() == "70.0"
    site.ws.send(diff(2, orders=[order_row(6, price="71.125")]))  # AAPL-USD too (n % 3 == 0)
    site.wait_seq(2)
    assert page.locator(_cell(site, "orders", "ord-00003", "price")).text_content() == "70.000"
    assert page.locator(_cell(site, "orders", "ord-00000", "price")).text_content() == "69.800"


def test_money_and_percent_formats(live_site) -> None:
    rows = [
        order_row(0, notional="111062.430125", fill_pct="0"),
        order_row(1, notional="5", fill_pct="90.9"),
        order_row(2, notional="1234567890.5", fill_pct="93.33"),
    ]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)
    page.locator("#orders-columns").evaluate("el => el.closest('details').open = true")
    page.locator("#orders-columns").get_by_label("Fill %").check()

    notional = [page.locator(_cell(site, "orders", f"ord-0000{n}", "notional")).text_content() for n in range(3)]
    assert notional == ["111,062.43", "5.00", "1,234,567,890.50"]
    pct = [page.locator(_cell(site, "orders", f"ord-0000{n}", "fill_pct")).text_content() for n in range(3)]
    assert pct == ["0.0%", "90.9%", "93.3%"]
    # Never cut off: every notional cell shows all of its text.
    assert page.locator(_cells(site, "orders", "notional")).evaluate_all(
        "els => els.every(e => e.scrollWidth <= e.clientWidth)"
    )


# --- columns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/all"])
def test_default_columns_fit_a_desk_screen_newest_first(live_site, path: str) -> None:
    rows = [order_row(n, account=7 + n % 2, client_order_id=f"desk-rebalance-{n:06d}") for n in range(30)]
    twaps = [twap_row(1), twap_row(2, account=8)]
    site = live_site(lambda _: [snapshot(1, rows[::2], twaps[:1]), snapshot(1, rows[1::2], twaps[1:], account=8)])
    page = site.open(path)
    site.wait("() => window.qfexLive && Object.keys(window.qfexLive.seqs).length >= 1")

    titles = page.locator("#orders-table .tabulator-col:visible .tabulator-col-title").all_text_contents()
    expected = [
        "Symbol",
        "Side",
        "Type",
        "Price",
        "Filled / Size",
        "Remaining",
        "Notional",
        "Status",
        "Age",
        "Client ID",
    ]
    assert titles == (["Account", *expected] if path == "/all" else expected)
    assert page.locator(_header("orders", "age")).get_attribute("aria-sort") == "ascending"  # youngest first
    ages = site.js(f"() => {SHOWN}.map(d => d._placed)")
    assert ages == sorted(ages, reverse=True)
    # No sideways scrolling: not the page, not the tables.
    assert site.js("() => document.documentElement.scrollWidth <= window.innerWidth")
    for table in ("orders", "twaps"):
        holder = f"#{table}-table .tabulator-tableholder"
        assert page.locator(holder).evaluate("el => el.scrollWidth <= el.clientWidth"), table
    # The TWAP table's last header is whole, not "Upd".
    last = page.locator("#twaps-table .tabulator-col:visible .tabulator-col-title").last
    assert last.evaluate("el => el.scrollWidth <= el.clientWidth")


def test_symbol_stays_when_scrolling_sideways_and_the_header_when_scrolling_down(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [order_row(n) for n in range(80)])])
    page = site.open()
    site.wait_seq(1)
    page.locator(".live-columns summary").first.click()
    for label in ("Time in force", "Size", "Filled", "Fill %", "Take profit", "Stop loss", "Order ID", "Updated"):
        page.locator("#orders-columns").get_by_label(label, exact=True).check()
    page.keyboard.press("Escape")
    holder = page.locator("#orders-table .tabulator-tableholder")
    assert holder.evaluate("el => el.scrollWidth > el.clientWidth")  # now it is wider than the screen
    symbol = page.locator(_cell(site, "orders", "ord-00000", "symbol"))
    before = symbol.bounding_box()
    header = page.locator(_header("orders", "price")).bounding_box()
    holder.evaluate("el => { el.scrollLeft = 400; el.scrollTop = 600; el.dispatchEvent(new Event('scroll')); }")
    site.wait("() => document.querySelector('#orders-table .tabulator-tableholder').scrollLeft >= 300")
    assert page.locator(_header("orders", "price")).bounding_box()["y"] == header["y"]
    frozen = page.locator("#orders-table .tabulator-row:visible [tabulator-field='symbol']").first.bounding_box()
    assert abs(frozen["x"] - before["x"]) < 1


def test_columns_chooser_remembers_per_person_and_closes_with_esc_or_outside(live_site) -> None:
    saved = {"columns": {"orders": {"hidden": ["type"], "shown": ["order_id"]}}}
    site = live_site(lambda _: [snapshot(1, [order_row(1)])], config={"preferences": saved})
    page = site.open()
    site.wait_seq(1)
    assert not page.locator(_header("orders", "type")).is_visible()
    assert page.locator(_header("orders", "order_id")).is_visible()

    details = page.locator("details.live-columns").first
    page.locator(".live-columns summary").first.click()
    assert details.get_attribute("open") is not None
    page.locator("#orders-columns").get_by_label("Order ID").focus()
    page.keyboard.press("Escape")
    assert details.get_attribute("open") is None
    assert page.evaluate("() => document.activeElement.tagName") == "SUMMARY"  # focus goes back to it
    page.locator(".live-columns summary").first.click()
    page.locator("h1").click()
    assert details.get_attribute("open") is None


def test_shift_click_and_shift_enter_sort_by_several_columns(live_site) -> None:
    rows = [order_row(n, symbol=["B-USD", "A-USD"][n % 2], price=f"{100 - n % 3}.5") for n in range(12)]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)

    page.locator(_header("orders", "symbol")).click()
    page.locator(_header("orders", "price")).click(modifiers=["Shift"])
    page.locator(_header("orders", "price")).click(modifiers=["Shift"])  # flips the second sort only
    got = site.js(f"() => {SHOWN}.map(d => [d.symbol, Number(d.price)])")
    assert got == sorted(got, key=lambda r: (r[0], -r[1]))
    assert page.locator(_header("orders", "symbol")).get_attribute("data-sort-rank") == "1"
    assert page.locator(_header("orders", "price")).get_attribute("data-sort-rank") == "2"
    assert "orders_sort=symbol.asc%2Cprice.desc" in page.url

    # The keyboard does the same.
    page.locator(_header("orders", "side")).focus()
    page.keyboard.press("Enter")
    page.locator(_header("orders", "notional")).focus()
    page.keyboard.press("Shift+Enter")
    got = site.js(f"() => {SHOWN}.map(d => [d.side, Number(d.notional)])")
    assert got == sorted(got)
    assert page.locator(_header("orders", "symbol")).get_attribute("data-sort-rank") is None


def test_slash_focuses_search_and_search_reads_words_and_codes(live_site) -> None:
    rows = [
        order_row(0, side="BUY", type="TAKE_PROFIT", status="ACK", filled="0"),
        order_row(1, side="SELL", type="LIMIT", status="FILLED", quantity_remaining="1"),
        order_row(2, side="SELL", type="ALO", status="MODIFIED", filled="0"),
    ]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)
    page.locator("h1").click()
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "live-search"
    for query, ids in (
        ("take profit", ["ord-00000"]),
        ("TAKE_PROFIT", ["ord-00000"]),
        ("partially", ["ord-00001"]),
        ("post-only", ["ord-00002"]),
        ("buy", ["ord-00000"]),
    ):
        page.fill("#live-search", query)
        site.wait(f"() => new URLSearchParams(location.search).get('q') === {query!r}")
        assert sorted(site.js(f"() => {SHOWN}.map(d => d.id)")) == ids, query


def test_ids_copy_to_the_clipboard(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [order_row(1)], [twap_row(1)])])
    page = site.open()
    site.wait_seq(1)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.locator(".live-columns summary").first.click()
    page.locator("#orders-columns").get_by_label("Order ID").check()
    page.keyboard.press("Escape")
    button = page.locator(_cell(site, "orders", "ord-00001", "order_id") + " button.copy-button")
    assert button.get_attribute("aria-label") == "Copy order ID ord-00001"
    button.click()
    site.wait("() => document.querySelector('[data-copied]')")
    assert page.evaluate("() => navigator.clipboard.readText()") == "ord-00001"


# --- words ------------------------------------------------------------------------------------------------


def test_codes_are_words_with_the_code_in_the_tooltip(live_site) -> None:
    rows = [
        order_row(0, status="FILLED", quantity="10", quantity_remaining="0.7", filled="9.3", type="TAKE_PROFIT"),
        order_row(1, status="ACK", filled="0", quantity_remaining="10", type="STOP_LOSS"),
        order_row(2, status="MODIFIED", filled="0", quantity_remaining="10", type="ALO"),
    ]
    site = live_site(lambda _: [snapshot(1, rows)])
    page = site.open()
    site.wait_seq(1)
    status = page.locator(_cell(site, "orders", "ord-00000", "status") + " .status")
    assert status.text_content() == "Partially filled"  # 93 % filled and open: not "FILLED"
    assert status.get_attribute("title") == "FILLED"
    assert page.locator(_cell(site, "orders", "ord-00001", "status")).text_content() == "Open"
    assert page.locator(_cell(site, "orders", "ord-00002", "status")).text_content() == "Modified"
    types = [page.locator(_cell(site, "orders", f"ord-0000{n}", "type")).text_content() for n in range(3)]
    assert types == ["Take profit", "Stop loss", "Post-only limit"]


def test_a_removed_row_says_filled_or_cancelled_while_it_lingers(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [order_row(n) for n in range(4)])])
    page = site.open()
    site.wait_seq(1)
    closed = [
        {"id": "ord-00001", "outcome": "filled", "status": "FILLED"},
        {"id": "ord-00002", "outcome": "cancelled", "status": "CANCELLED"},
    ]
    site.ws.send(diff(2, remove_orders=["ord-00001", "ord-00002", "ord-00003"], closed=closed))
    site.wait_seq(2)
    assert page.locator(_cell(site, "orders", "ord-00001", "status")).text_content() == "Filled"
    assert page.locator(_cell(site, "orders", "ord-00002", "status")).text_content() == "Cancelled"
    assert "row-gone-filled" in page.locator("#orders-table .tabulator-row[data-id='ord-00001']").get_attribute("class")
    # The status word itself is not struck through, so it can be read.
    decoration = page.locator(_cell(site, "orders", "ord-00001", "status") + " .status").evaluate(
        "el => getComputedStyle(el).textDecorationLine"
    )
    assert decoration == "none"


# --- TWAPs --------------------------------------------------------------------------------------------


def test_twap_progress_slices_schedule_and_an_overdue_one(live_site) -> None:
    now = time.time()  # the schedule is measured against the page's clock
    twaps = [
        # 8 slices a minute apart, started 250 s ago: 5 due, 2 done by quantity (estimated): 3 min behind.
        twap_row(1, total_quantity="201600.0", filled_quantity="50400.0", progress_pct="25", created_at=now - 250,
                 estimated_end=now - 250 + 420, total_num_orders=8, order_interval_secs=60),
        # Running 5 minutes past its estimated end.
        twap_row(2, total_quantity="100", filled_quantity="66.6", progress_pct="66.6", filled_num_orders=7,
                 created_at=now - 720, estimated_end=now - 300, total_num_orders=8, order_interval_secs=60),
    ]  # fmt: skip
    site = live_site(lambda _: [snapshot(1, [], twaps)])
    page = site.open()
    site.wait_seq(1)

    pct = page.locator(_cell(site, "twaps", "twap-001", "progress") + " .twap-progress-pct")
    assert pct.text_content() == "25.0%"
    # Beside the bar, whole: not clipped, not on top of the bar.
    assert pct.evaluate("el => el.scrollWidth <= el.clientWidth")
    bar = page.locator(_cell(site, "twaps", "twap-001", "progress") + " .twap-progress-track").bounding_box()
    box = pct.bounding_box()
    cell = page.locator(_cell(site, "twaps", "twap-001", "progress")).bounding_box()
    assert box["x"] >= bar["x"] + bar["width"]
    assert box["x"] + box["width"] <= cell["x"] + cell["width"]

    slices = page.locator(_cell(site, "twaps", "twap-001", "slices") + " span")
    assert slices.text_content() == "≈ 2 / 8"
    assert "Estimated" in slices.get_attribute("title")
    assert page.locator(_cell(site, "twaps", "twap-002", "slices")).text_content() == "7 / 8"
    assert page.locator(_cell(site, "twaps", "twap-001", "schedule")).text_content().startswith("Behind")
    # No order price of the symbol seen: the average keeps its own decimals.
    assert page.locator(_cell(site, "twaps", "twap-001", "average_fill_price")).text_content() == "131.1"
    assert page.locator(_cell(site, "twaps", "twap-001", "time_left")).text_content().endswith("left")
    assert page.locator(_cell(site, "twaps", "twap-001", "filled_quantity")).text_content() == "50,400.0 / 201,600.0"

    late = page.locator("#twaps-table .tabulator-row[data-id='twap-002']")
    assert "row-overdue" in late.get_attribute("class")
    assert page.locator(_cell(site, "twaps", "twap-002", "time_left")).text_content().startswith("Overdue 5 min")
    assert "row-overdue" not in page.locator("#twaps-table .tabulator-row[data-id='twap-001']").get_attribute("class")


def test_a_twap_leaving_the_active_list_says_it_ended(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, [], [twap_row(1), twap_row(2)])])
    page = site.open()
    site.wait_seq(1)
    site.ws.send(diff(2, remove_twaps=["twap-001"]))
    site.wait_seq(2)
    assert page.locator(_cell(site, "twaps", "twap-001", "status")).text_content() == "Ended"
    assert page.locator(_cell(site, "twaps", "twap-002", "status")).text_content() == "Running"
    assert page.locator("#twaps-count").text_content() == "1 TWAP"
