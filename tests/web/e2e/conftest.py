"""The whole stack, end to end: the QFEX simulator, qfexdash on a real Daphne, and Debian's Chromium.

- ``sim``: the simulator runs in the test process with pace 0, so books change only when a test calls
  ``sim.step()``, ``sim.add_orders()`` or ``sim.remove_order()``: a test always knows the truth it compares with.
- ``site``: the demo's world on a real Daphne with its own SQLite file, short reconcile and backoff
  intervals and the real QFEX URLs at a closed port (:func:`bench.harness.demo.demo_site`).
- ``browsing``: fresh Chromium contexts for each test; the console of every page and the end of Daphne's
  log are printed when the test fails, and an uncaught error in a page fails it.

Servers and the browser are package-scoped to keep the run short — not session-scoped: Playwright's sync API
keeps an event loop running in this thread while it is open, which would break the asyncio tests after it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, StorageState, expect, sync_playwright

from bench.harness.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.harness.demo import PATIENCE_MS, Site, demo_site, sign_in, simulator_accounts
from orders.simulator import Simulator
from tests.chromium import require_chromium
from tests.web.e2e.stack import Browsing


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    # Checked first (tests ask for it before the servers) so a machine without Chromium skips in no time.
    require_chromium("the end-to-end tests")
    # expect() has its own 5 s default, short for a machine shared with other test runs.
    expect.set_options(timeout=PATIENCE_MS)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        expect.set_options(timeout=None)  # back to Playwright's own default for other test folders


@pytest.fixture(scope="package")
def sim() -> Iterator[Simulator]:
    with Simulator(accounts=simulator_accounts(), seed=11, pace=0.0) as simulator:
        yield simulator


@pytest.fixture(scope="package")
def site(sim: Simulator) -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="qfexdash-e2e-") as tmp, demo_site(Path(tmp), sim) as running:
        yield running


@pytest.fixture(scope="package")
def demo_state(chromium: Browser, site: Site) -> StorageState:
    """Cookies of one signed-in ``demo`` session, shared by the tests that do not sign out.

    Signing out deletes the session on the server, so a test that signs out signs in on its own.
    """
    context = chromium.new_context()
    try:
        sign_in(context.new_page(), site)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def browsing(
    chromium: Browser, site: Site, demo_state: StorageState, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    session = Browsing(chromium, site, demo_state)
    yield session
    session.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("\n--- browser console ---\n" + ("\n".join(session.console) or "(empty)"))
        print("\n--- end of the Daphne log ---\n" + (site.log_tail() or "(empty)"))
    assert not session.page_errors, f"uncaught errors in the page: {session.page_errors}"
