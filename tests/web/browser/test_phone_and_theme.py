"""Issue 14: the live page on a phone (390 px: a compact list, details on tap, nothing scrolls sideways)
and in both themes (dark under prefers-color-scheme: dark or when chosen), with 0 serious or critical axe
violations in every state and theme."""

from __future__ import annotations

import pytest

from bench.livepage import AS_OF, closed_row, diff, order_row, serious_axe_violations, snapshot, status, twap_row
from tests.web.browser.conftest import PHONE

pytestmark = pytest.mark.browser


def _book() -> list[dict]:
    return [snapshot(1, [order_row(n) for n in range(40)], [twap_row(1), twap_row(2)], closed=[closed_row(90)])]


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("path", ["/", "/all"])
def test_phone_shows_a_compact_list_with_details_on_tap(live_site, path: str) -> None:
    site = live_site(lambda _: _book(), viewport=PHONE)
    page = site.open(path)
    site.wait("() => window.qfexLive && window.qfexLive.seqs[7] === 1")
    titles = page.locator("#orders-table .tabulator-col:visible .tabulator-col-title").all_text_contents()
    assert titles == ["Symbol", "Side", "Price", "Left / Size", "Status", "Age"]
    assert _no_sideways_scroll(page)
    holder = page.locator("#orders-table .tabulator-tableholder")
    assert holder.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    twaps = page.locator("#twaps-table .tabulator-col:visible .tabulator-col-title").all_text_contents()
    assert twaps == ["Symbol", "Side", "Progress", "Time left"]

    page.locator("#orders-table .tabulator-row[data-id='ord-00004'] [tabulator-field='symbol']").tap()
    dialog = page.locator("#row-details")
    assert dialog.is_visible()
    assert "Client ID" in dialog.text_content()
    assert "desk-4" in dialog.text_content()
    page.get_by_role("button", name="Close").click()
    assert not dialog.is_visible()


def test_phone_column_chooser_and_menus_stay_on_screen(live_site) -> None:
    site = live_site(lambda _: _book(), viewport=PHONE)
    page = site.open()
    site.wait_seq(1)
    page.locator(".live-columns summary").first.click()
    box = page.locator("#orders-columns").bounding_box()
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE[0]
    assert _no_sideways_scroll(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_dark_mode_follows_the_system_unless_chosen(live_site, scheme: str) -> None:
    site = live_site(lambda _: _book(), color_scheme=scheme)
    page = site.open()
    site.wait_seq(1)
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    rows = page.locator("#orders-table .tabulator-row").first.evaluate("el => getComputedStyle(el).backgroundColor")
    dark = scheme == "dark"
    for colour in (background, rows):
        red = int(colour.split("(")[1].split(",")[0])
        assert (red < 60) == dark, colour

    chosen = live_site(lambda _: _book(), color_scheme=scheme, theme="light" if dark else "dark")
    other = chosen.open()
    chosen.wait_seq(1)
    colour = other.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert (int(colour.split("(")[1].split(",")[0]) < 60) == (not dark)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [(1440, 900), PHONE])
def test_axe_in_every_state_in_both_themes(live_site, scheme: str, viewport: tuple[int, int]) -> None:
    site = live_site(lambda _: _book(), color_scheme=scheme, viewport=viewport)
    page = site.open("/all")
    site.wait("() => window.qfexLive && window.qfexLive.seqs[7] === 1")
    site.wait("() => document.body.dataset.summarized")
    assert serious_axe_violations(page) == [], "live"

    site.ws.send(diff(2, orders=[order_row(3, price="1.00")], remove_orders=["ord-00004"], closed=[closed_row(4)]))
    retry = site.js("() => Date.now() / 1000") + 30
    site.ws.send(status(2, "stale", reason="QFEX is not answering.", next_retry_at=retry, since=AS_OF - 5))
    site.wait("() => document.body.dataset.state === 'stale' && document.querySelector('.row-gone')")
    page.locator(".live-columns summary").first.click()
    assert serious_axe_violations(page) == [], "stale, a row leaving, the column chooser open"

    page.keyboard.press("Escape")
    site.ws.send(status(2, "error", reason="QFEX refused the API key.", action="Replace the key in My accounts."))
    site.wait("() => document.body.dataset.state === 'error'")
    page.get_by_label("Group by symbol").check()
    page.get_by_role("tab", name="Closed").click()
    assert serious_axe_violations(page) == [], "error, grouped, the Closed tab"
