"""Issue 14 on the real stack (simulator → Daphne → Chromium): every page on a phone and in both themes, the
display menu (time zone, theme), the live page on the simulator's data, and the admin's team page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from bench.harness.demo import DESK, PATIENCE_MS, PHONE, SUPERUSER, Site, sign_in
from orders.simulator import Simulator
from tests.web.e2e.stack import Browsing, book, serious_axe_violations, wait_live, wait_rows

pytestmark = pytest.mark.browser

MAIN = "Desk main"


def _pages(site: Site) -> list[tuple[str, str]]:
    """(path, what) of every page the demo user sees, the live pages included."""
    personal = site.accounts["Demo personal"]
    return [
        ("/", "accounts list"),
        (site.live_path(MAIN), "an account's live page"),
        ("/accounts/all/", "all accounts live"),
        ("/my/accounts/", "My accounts"),
        ("/my/accounts/add/", "add-account form"),
        (f"/my/accounts/{personal}/edit/", "edit-account form"),
        (f"/my/accounts/{personal}/delete/", "remove-account confirmation"),
        ("/audit/", "audit trail"),
        ("/no/such/page/", "404 page"),
    ]


def _settle(page: Page) -> None:
    """Live pages: until the data is in and the summary drawn; other pages are whole when loaded."""
    if page.evaluate("() => !!document.getElementById('live-config')"):
        page.wait_for_function(
            "() => document.body.dataset.state === 'live' && document.body.dataset.summarized",
            timeout=PATIENCE_MS,
        )


def _fits(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize(
    ("viewport", "scheme"), [(PHONE, "light"), (PHONE, "dark"), (DESK, "dark")], ids=["phone", "phone-dark", "dark"]
)
def test_every_page_fits_and_passes_axe(browsing: Browsing, site: Site, viewport: Any, scheme: Any) -> None:
    page = browsing.page(viewport=viewport, color_scheme=scheme)
    problems = []
    for path, what in _pages(site):
        page.goto(site.page_url(path))
        _settle(page)
        if viewport == PHONE and not _fits(page):
            problems.append(f"{what} scrolls sideways at {viewport[0]} px")
        problems += [f"{what}: {v}" for v in serious_axe_violations(page)]
    signed_out = browsing.page("/signin/", signed_in=False, viewport=viewport, color_scheme=scheme)
    if viewport == PHONE and not _fits(signed_out):
        problems.append("sign-in page scrolls sideways")
    problems += [f"sign-in page: {v}" for v in serious_axe_violations(signed_out)]
    forbidden = browsing.page(signed_in=False, viewport=viewport, color_scheme=scheme)
    sign_in(forbidden, site, "teammate")
    forbidden.goto(site.page_url(f"/my/accounts/{site.accounts[MAIN]}/edit/"))
    expect(forbidden.get_by_role("heading", level=1)).to_have_text("Not allowed")
    if viewport == PHONE and not _fits(forbidden):
        problems.append("403 page scrolls sideways")
    problems += [f"403 page: {v}" for v in serious_axe_violations(forbidden)]
    assert problems == []


@pytest.mark.parametrize(("viewport", "scheme"), [(PHONE, "light"), (DESK, "dark")], ids=["phone", "dark"])
def test_admin_pages_fit_and_pass_axe(browsing: Browsing, site: Site, viewport: Any, scheme: Any) -> None:
    page = browsing.page(signed_in=False, viewport=viewport, color_scheme=scheme)
    sign_in(page, site, SUPERUSER)
    problems = []
    for path, what in [
        ("/admin/", "admin index"),
        ("/admin/orders/team/", "teams"),
        ("/admin/orders/exchangeaccount/", "accounts"),
        ("/admin/orders/auditevent/", "audit events"),
    ]:
        page.goto(site.page_url(path))
        if viewport == PHONE and not _fits(page):
            problems.append(f"{what} scrolls sideways at {viewport[0]} px")
        problems += [f"{what}: {v}" for v in serious_axe_violations(page)]
    page.goto(site.page_url("/admin/orders/team/"))
    page.get_by_role("link", name="Demo desk", exact=True).click()
    expect(page.get_by_role("heading", name="Roles")).to_be_visible()
    expect(page.get_by_role("link", name="Live orders").first).to_be_visible()
    if viewport == PHONE and not _fits(page):
        problems.append("team page scrolls sideways")
    problems += [f"team page: {v}" for v in serious_axe_violations(page)]
    assert problems == [], "\n".join(problems)


def test_display_menu_sets_time_zone_and_theme_everywhere(browsing: Browsing, site: Site) -> None:
    # The teammate's own preferences: the demo user's session is shared by other tests.
    page = browsing.context(signed_in=False, timezone_id="Europe/Berlin").new_page()
    sign_in(page, site, "teammate")
    page.goto(site.page_url("/"))
    expect(page.locator("#display-zone")).to_have_text("UTC")
    page.locator(".display-prefs summary").click()
    # site.js offers the browser's own zone, and saves a choice as soon as it is made.
    page.select_option("#pref-zone", "Europe/Berlin")
    expect(page.locator("#display-zone")).to_have_text("Europe/Berlin")
    page.locator(".display-prefs summary").click()
    page.select_option("#pref-theme", "dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != "rgb(255, 255, 255)"

    # The live page labels times in that zone (CET or CEST, as the server would).
    page.goto(site.page_url(site.live_path("Teammate personal")))
    wait_live(page)
    status_time = page.locator("#live-status-time").text_content()
    assert status_time is not None
    assert status_time.startswith("Data as of ")
    assert " CET " in status_time or " CEST " in status_time
    age = page.locator("#orders-table .tabulator-row [tabulator-field='_n_age'] time").first
    title = age.get_attribute("title")
    assert title is not None
    assert title.endswith(("CET", "CEST"))

    # Back to the defaults for any later test.
    page.goto(site.page_url("/"))
    page.locator(".display-prefs summary").click()
    page.select_option("#pref-theme", "system")
    expect(page.locator("html")).not_to_have_attribute("data-theme", "dark")
    page.locator(".display-prefs summary").click()
    page.select_option("#pref-zone", "UTC")
    expect(page.locator("#display-zone")).to_have_text("UTC")


def test_phone_menu_folds_and_opens(browsing: Browsing, site: Site) -> None:
    page = browsing.page("/", viewport=PHONE)
    menu_button = page.get_by_role("button", name="Menu")
    expect(menu_button).to_be_visible()
    expect(page.get_by_role("link", name="My accounts")).to_be_hidden()
    menu_button.click()
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    page.get_by_role("link", name="My accounts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My accounts")
    # Keys in one piece (never broken in the middle of the token), with a copy button.
    key = page.locator("td.key-cell code").first
    assert key.evaluate("el => getComputedStyle(el).whiteSpace") == "nowrap"
    box = key.bounding_box()
    assert box is not None
    assert box["height"] < 30
    expect(page.locator("td.key-cell .copy-button").first).to_be_visible()
    assert _fits(page)


def test_live_page_on_the_simulators_book(browsing: Browsing, site: Site, sim: Simulator) -> None:
    """Demo-like data: one decimal count per symbol, aligned; money notional; TWAP percentages whole."""
    page = browsing.page(site.live_path(MAIN))
    wait_live(page)
    wait_rows(page, *book(sim, site.keys[MAIN]))
    # Every default column on screen, no sideways scroll.
    assert page.locator("#orders-table .tabulator-tableholder").evaluate("el => el.scrollWidth <= el.clientWidth")
    assert _fits(page)
    prices = page.evaluate(
        """() => {
            const field = window.qfexLive.views.orders.specById.get('price').field;
            return [...document.querySelectorAll(`#orders-table .tabulator-row[data-id]`)].map(r => [
                r.querySelector("[tabulator-field='symbol']").textContent,
                r.querySelector(`[tabulator-field='${field}']`).textContent,
                r.querySelector(`[tabulator-field='${field}'] .num-f`).getBoundingClientRect().left,
            ]);
        }"""
    )
    assert len(prices) >= 10
    decimals: dict[str, set[int]] = {}
    for symbol, text, _ in prices:
        decimals.setdefault(symbol, set()).add(len(text.partition(".")[2]))
    assert all(len(counts) == 1 for counts in decimals.values()), decimals
    points = [left for _, _, left in prices]
    assert max(points) - min(points) < 0.5
    notional = page.evaluate(
        """() => {
            const field = window.qfexLive.views.orders.specById.get('notional').field;
            return [...document.querySelectorAll(`#orders-table [tabulator-field='${field}']`)]
                .filter(c => c.closest('.tabulator-row')).map(c => c.textContent);
        }"""
    )
    assert all(t.count(".") == 1 and len(t.partition(".")[2]) == 2 for t in notional), notional[:5]
    pcts = page.locator("#twaps-table .twap-progress-pct")
    expect(pcts.first).to_be_visible()
    assert pcts.evaluate_all(
        "els => els.every(e => /^\\d+\\.\\d%$/.test(e.textContent) && e.scrollWidth <= e.clientWidth)"
    )


def test_column_choices_follow_the_person_to_another_browser(browsing: Browsing, site: Site) -> None:
    path = site.live_path("Teammate personal")
    first = browsing.page(signed_in=False)
    sign_in(first, site, "teammate")
    first.goto(site.page_url(path))
    wait_live(first)
    first.locator(".live-columns summary").first.click()
    first.locator("#orders-columns").get_by_label("Type", exact=True).uncheck()
    first.locator("#orders-columns").get_by_label("Order ID", exact=True).check()
    first.wait_for_function("() => window.qfexLive.prefs.saves >= 1", timeout=PATIENCE_MS)

    # Another browser profile (another machine), no address parameters: the same columns.
    other = browsing.page(signed_in=False)
    sign_in(other, site, "teammate")
    other.goto(site.page_url(path))
    wait_live(other)
    expect(other.locator("#orders-table .tabulator-col[data-column='type']")).to_be_hidden()
    expect(other.locator("#orders-table .tabulator-col[data-column='order_id']")).to_be_visible()
    # Someone else's columns are their own.
    demo = browsing.page(site.live_path("Desk main"))
    wait_live(demo)
    expect(demo.locator("#orders-table .tabulator-col[data-column='type']")).to_be_visible()

    other.locator(".live-columns summary").first.click()
    other.locator("#orders-columns").get_by_label("Type", exact=True).check()
    other.locator("#orders-columns").get_by_label("Order ID", exact=True).uncheck()
    other.wait_for_function("() => window.qfexLive.prefs.saves >= 1", timeout=PATIENCE_MS)


def test_audit_trail_filters_in_the_browser(browsing: Browsing, site: Site) -> None:
    page = browsing.page("/audit/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    page.get_by_label("What").select_option(label="Account added")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=account_added"))
    actions = page.locator("table.data tbody td[data-label='What']").all_text_contents()
    assert actions
    assert set(actions) == {"Account added"}
    # Details are words, never a Python dict.
    details = " ".join(page.locator("table.data tbody td[data-label='Details']").all_text_contents())
    assert "Exchange: Custom URL" in details
    assert "{" not in details
    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(site.page_url("/audit/"))


def test_the_last_admin_is_kept_in_the_admin_and_the_site_has_a_favicon(browsing: Browsing, site: Site) -> None:
    page = browsing.page("/admin/orders/team/")
    page.get_by_role("link", name="Demo desk", exact=True).click()
    expect(page.locator("#id_memberships-0-user")).to_have_value(re.compile(r"\d+"))
    assert (page.locator("#memberships-0").text_content() or "").count("demo") >= 1
    page.locator("#id_memberships-0-role").select_option("viewer")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist.nonform")).to_contain_text("must keep at least one admin who can sign in")
    # The favicon is a real file.
    icon = page.evaluate("() => document.querySelector(\"link[rel='icon']\").href")
    response = page.request.get(icon)
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg")
