"""Signing in and out, the accounts list, and an axe-core audit of every page, on the real stack."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from bench.harness.demo import PASSWORD, PATIENCE_MS, SUPERUSER, Site, sign_in
from orders.simulator import Simulator
from tests.web.e2e.stack import Browsing, book, serious_axe_violations, wait_live, wait_rows

pytestmark = pytest.mark.browser

VISIBLE_TO_DEMO = ["Demo personal", "Desk hedges", "Desk main"]  # the teammate's personal account is not


def account_row(page: Page, label: str) -> Locator:
    return page.locator("table.data tbody tr").filter(has=page.get_by_role("rowheader", name=label, exact=True))


def test_sign_in_through_the_form_then_the_accounts_list(browsing: Browsing, site: Site, sim: Simulator) -> None:
    page = browsing.page("/", signed_in=False)
    expect(page).to_have_url(f"{site.url}/signin/?next=/")

    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".form-errors")).to_be_visible()
    expect(page).to_have_url(f"{site.url}/signin/")

    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{site.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
    expect(page.locator(".user-box")).to_contain_text("demo")
    labels = page.locator("table.data tbody th[scope=row]").all_text_contents()
    assert sorted(label.strip() for label in labels) == VISIBLE_TO_DEMO

    # Each account shows its state in words; one being watched shows as live.
    live = page.context.new_page()
    live.goto(site.page_url(site.live_path("Desk hedges")))
    wait_live(live)
    wait_rows(live, *book(sim, site.keys["Desk hedges"]))
    page.reload()
    expect(account_row(page, "Desk hedges").locator(".state-live")).to_have_text("Live")
    for label in VISIBLE_TO_DEMO:
        states = account_row(page, label).locator(".state").all_text_contents()
        assert states, f"no state shown for {label}"
        assert all(s.strip() for s in states)

    # The account's link opens its live page.
    account_row(page, "Desk main").get_by_role("link", name="Desk main", exact=True).click()
    expect(page).to_have_url(site.page_url(site.live_path("Desk main")))
    wait_live(page)


def test_signing_out_in_one_tab_ends_the_other_tabs_stream(browsing: Browsing, site: Site) -> None:
    # A session of its own: signing out deletes it on the server.
    context = browsing.context(signed_in=False)
    watcher = context.new_page()
    sign_in(watcher, site)
    watcher.goto(site.page_url(site.live_path("Demo personal")))
    wait_live(watcher)

    other = context.new_page()
    other.goto(site.page_url("/"))
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("Sign in")

    watcher.wait_for_function(
        "() => document.body.dataset.socket === 'closed' && document.body.dataset.state === 'error'",
        timeout=PATIENCE_MS,
    )
    expect(watcher.locator("#live-status-reason")).to_contain_text("signed out")
    assert watcher.evaluate("() => window.qfexLive.socket.nextRetryAt") is None  # no reconnect loop


# --- accessibility ---------------------------------------------------------------------------------


def assert_accessible(page: Page, what: str) -> None:
    violations = serious_axe_violations(page)
    assert violations == [], f"{what}: serious or critical accessibility violations:\n" + "\n".join(violations)


def test_axe_audit_reports_a_serious_problem(browsing: Browsing) -> None:
    """The audit is not vacuous: a form field without a label, put on a clean page, is reported."""
    page = browsing.page("/signin/", signed_in=False)
    page.evaluate("() => document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')")
    violations = serious_axe_violations(page)
    assert any(v.startswith("label (critical)") for v in violations), violations


def test_axe_login_and_signed_out_pages(browsing: Browsing, site: Site) -> None:
    page = browsing.page("/signin/", signed_in=False)
    assert_accessible(page, "sign-in page")

    page.get_by_label("Username").fill("demo")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".form-errors")).to_be_visible()
    assert_accessible(page, "sign-in page with errors")

    sign_in(page, site)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert_accessible(page, "page after signing out")


def test_axe_account_pages(browsing: Browsing, site: Site) -> None:
    page = browsing.page("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
    assert_accessible(page, "accounts list")

    page.goto(site.page_url("/my/accounts/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My accounts")
    assert_accessible(page, "My accounts")

    page.goto(site.page_url("/my/accounts/add/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Add an account")
    assert_accessible(page, "add-account form")
    page.get_by_role("button", name="Add account").click()
    expect(page.locator(".form-errors")).to_be_visible()
    expect(page.locator(".field-invalid").first).to_be_visible()
    assert_accessible(page, "add-account form with errors")

    personal = site.accounts["Demo personal"]
    page.goto(site.page_url(f"/my/accounts/{personal}/edit/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit")
    assert_accessible(page, "edit-account form")

    page.goto(site.page_url(f"/my/accounts/{personal}/delete/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Remove")
    assert_accessible(page, "remove-account confirmation")

    page.goto(site.page_url("/audit/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    expect(page.locator("table.data tbody tr").first).to_be_visible()
    assert_accessible(page, "audit trail")


def test_axe_forbidden_page(browsing: Browsing, site: Site) -> None:
    """A viewer of the team may see its account but not edit it: the plain 403 page."""
    page = browsing.page(signed_in=False)
    sign_in(page, site, "teammate")
    response = page.goto(site.page_url(f"/my/accounts/{site.accounts['Desk main']}/edit/"))
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    assert_accessible(page, "403 page")


def test_axe_live_pages_filled_and_stale(browsing: Browsing, site: Site, sim: Simulator) -> None:
    page = browsing.page(site.live_path("Desk main"))
    wait_live(page)
    wait_rows(page, *book(sim, site.keys["Desk main"]))
    page.locator("#orders-table .tabulator-col[data-column='price']").click()
    assert_accessible(page, "an account's live page")
    page.locator(".live-columns summary").first.click()  # the open column chooser too
    assert_accessible(page, "an account's live page with the column chooser open")

    page.goto(site.page_url("/accounts/all/"))
    page.wait_for_function(
        "n => document.body.dataset.state === 'live' && Object.keys(window.qfexLive.seqs).length === n",
        arg=3,
        timeout=PATIENCE_MS,
    )
    assert_accessible(page, "all-accounts live page")

    # The stale state (with its reason and retry time) is audited too.
    sim.faults.silent = True
    try:
        page.wait_for_function("() => document.body.dataset.state === 'stale'", timeout=PATIENCE_MS)
        assert_accessible(page, "all-accounts live page, stale")
    finally:
        sim.faults.silent = False
    page.wait_for_function("() => document.body.dataset.state === 'live'", timeout=PATIENCE_MS)


def test_axe_admin(browsing: Browsing, site: Site) -> None:
    page = browsing.page(signed_in=False)
    page.goto(site.page_url("/admin/"))
    assert_accessible(page, "admin sign-in")
    sign_in(page, site, SUPERUSER)
    page.goto(site.page_url("/admin/"))
    expect(page.locator("#site-name")).to_be_visible()
    assert_accessible(page, "admin index")
