"""S28 in real Chromium: every page under the strict Content-Security-Policy, with zero violations.

Each page is loaded on the real stack (Daphne, the simulator); a listener installed before any page
script records every ``securitypolicyviolation`` event, and the console is checked for CSP errors. The
live pages must also really work: socket open, data live, the simulator's rows in the tables (so the
WebSocket origin in ``connect-src`` is right and Tabulator runs without inline styles or scripts).
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

from bench.harness.demo import SUPERUSER, Site, sign_in
from orders.simulator import Simulator
from tests.web.e2e.stack import Browsing, book, wait_live, wait_rows

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watched(context: BrowserContext) -> list[str]:
    """Console errors and failed loads of the context's pages (a missing favicon is not the page's fault)."""
    console: list[str] = []
    context.add_init_script(RECORD_VIOLATIONS)

    def on_console(message: Any) -> None:
        if not message.text.startswith("Failed to load resource"):  # reported by URL below instead
            console.append(f"[{message.type}] {message.text}")

    def on_response(response: Any) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            console.append(f"[error] HTTP {response.status} for {response.url}")

    context.on("console", on_console)
    context.on("response", on_response)
    return console


def _violations(page: Page) -> list[Any]:
    return page.evaluate("() => window.__cspViolations || []")


def _check(page: Page, console: list[str], what: str) -> None:
    assert page.evaluate("() => document.readyState") == "complete", what
    assert _violations(page) == [], what
    errors = [line for line in console if line.startswith("[error]") or "Content Security Policy" in line]
    assert errors == [], (what, errors)


def test_every_page_under_the_policy(browsing: Browsing, site: Site, sim: Simulator) -> None:
    signed_out = browsing.context(signed_in=False)
    console = _watched(signed_out)
    page = signed_out.new_page()
    page.goto(site.page_url("/signin/"))
    _check(page, console, "sign-in page")
    page.goto(site.page_url("/admin/login/"))
    _check(page, console, "admin sign-in page")

    context = browsing.context()
    console = _watched(context)
    page = context.new_page()
    response = page.goto(site.page_url("/"))
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    pk = site.accounts["Demo personal"]
    for path in ("/", "/my/accounts/", "/my/accounts/add/", f"/my/accounts/{pk}/edit/", "/audit/", "/signin/sessions/"):
        page.goto(site.page_url(path))
        _check(page, console, path)
    # Enrolment's QR code (S35) is an SVG data: image: img-src allows it, and it really renders.
    page.goto(site.page_url("/signin/two-step/setup/"))
    qr = page.locator(".qr-code img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=qr.element_handle())
    _check(page, console, "two-step setup page")

    for label in ("Desk hedges",):
        page.goto(site.page_url(site.live_path(label)))
        wait_live(page)
        wait_rows(page, *book(sim, site.keys[label]))
        _check(page, console, f"live page of {label}")
    page.goto(site.page_url("/accounts/all/"))
    page.wait_for_function(  # every visible account's stream is live (as in test_pages.py)
        "n => document.body.dataset.state === 'live' && Object.keys(window.qfexLive.seqs).length === n", arg=3
    )
    _check(page, console, "all accounts live page")


def test_admin_pages_under_the_policy(browsing: Browsing, site: Site) -> None:
    context = browsing.context(signed_in=False)
    console = _watched(context)
    page = context.new_page()
    sign_in(page, site, SUPERUSER)
    pk = site.accounts["Desk hedges"]
    for path in ("/admin/", "/admin/orders/exchangeaccount/", f"/admin/orders/exchangeaccount/{pk}/change/",
                 "/admin/orders/team/", "/admin/orders/auditevent/"):  # fmt: skip
        page.goto(site.page_url(path))
        _check(page, console, path)
