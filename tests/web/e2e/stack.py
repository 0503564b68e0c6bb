"""The pieces of the end-to-end stack the fixtures assemble, and the page conditions the tests wait on.

- the site itself (:class:`bench.harness.demo.Site`: the demo on a real Daphne) comes from
  :mod:`bench.harness.demo`;
- :class:`Browsing` — one test's Chromium contexts and pages, keeping every page's console for the report;
- waits on the live page's test hooks (``document.body.dataset``
  ``socket`` / ``state`` / ``renderedSeq`` and ``window.qfexLive``) — never sleeps.
"""

from __future__ import annotations

from typing import Literal

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, StorageState

from bench.harness import ROOT
from bench.harness.demo import DESK, PATIENCE_MS, PHONE, Site
from orders.simulator import Simulator

AXE = ROOT / "static" / "vendor" / "axe-core-4.14.1" / "axe.min.js"


# --- the browser -----------------------------------------------------------------------------------


class Browsing:
    """One test's browser contexts and pages, with every page's console kept for the failure report."""

    def __init__(self, browser: Browser, site: Site, demo_state: StorageState) -> None:
        self.browser = browser
        self.site = site
        self.demo_state = demo_state
        self.contexts: list[BrowserContext] = []
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self._pages = 0

    def context(
        self,
        *,
        signed_in: bool = True,
        viewport: tuple[int, int] = DESK,
        color_scheme: Literal["light", "dark"] = "light",
        timezone_id: str | None = None,
    ) -> BrowserContext:
        """A new browser profile; signed in as ``demo`` (one shared session) unless told otherwise; a desk
        screen (or ``PHONE``) preferring the light (or dark) colour scheme; in the machine's time zone unless
        ``timezone_id`` says another."""
        context = self.browser.new_context(
            timezone_id=timezone_id,
            viewport={"width": viewport[0], "height": viewport[1]},
            accept_downloads=True,
            storage_state=self.demo_state if signed_in else None,
            color_scheme=color_scheme,
            is_mobile=viewport == PHONE,
            has_touch=viewport == PHONE,
        )
        context.set_default_timeout(PATIENCE_MS)
        context.on("page", self._watch)
        self.contexts.append(context)
        return context

    def page(
        self,
        path: str | None = None,
        *,
        signed_in: bool = True,
        viewport: tuple[int, int] = DESK,
        color_scheme: Literal["light", "dark"] = "light",
    ) -> Page:
        """A page in a new context, opened at ``path`` if given."""
        page = self.context(signed_in=signed_in, viewport=viewport, color_scheme=color_scheme).new_page()
        if path is not None:
            page.goto(self.site.page_url(path))
        return page

    def _watch(self, page: Page) -> None:
        self._pages += 1
        name = f"page {self._pages}"

        def on_console(message: ConsoleMessage) -> None:
            self.console.append(f"[{name} {message.type}] {message.text}")

        def on_error(error: Error) -> None:
            self.page_errors.append(str(error))
            self.console.append(f"[{name} pageerror] {error}")

        page.on("console", on_console)
        page.on("pageerror", on_error)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


# --- page conditions ---------------------------------------------------------------------------------

# The order rows a person sees (filtered, in table order), without removed rows lingering struck through.
SHOWN_ORDERS = "window.qfexLive.orders.getData('active').filter(d => !d._gone)"


def wait_live(page: Page) -> None:
    """The page's socket is open and its data rendered and fresh."""
    page.wait_for_function(
        "() => document.body.dataset.socket === 'open' && document.body.dataset.state === 'live'"
        " && document.body.dataset.renderedSeq !== undefined",
        timeout=PATIENCE_MS,
    )


def wait_rows(page: Page, order_ids: list[str], twap_ids: list[str] | None = None) -> None:
    """Until the page holds exactly these order ids (and TWAP ids, when given), filter aside."""
    page.wait_for_function(
        """([orders, twaps]) => {
            const same = (table, ids) => {
                const have = new Set(table.getData().filter(d => !d._gone).map(d => d.id));
                return have.size === ids.length && ids.every(id => have.has(id));
            };
            const live = window.qfexLive;
            return live !== undefined && same(live.orders, orders) && (twaps === null || same(live.twaps, twaps));
        }""",
        arg=[order_ids, twap_ids],
        timeout=PATIENCE_MS,
    )


def wait_book(page: Page, sim: Simulator, key: str) -> None:
    """Until every order on the page (status, remaining quantity) and every TWAP equals the simulator's."""
    orders = {o["order_id"]: [o["status"], o["quantity_remaining"]] for o in sim.open_orders(key)}
    twaps = [t["twap_id"] for t in sim.active_twaps(key)]
    page.wait_for_function(
        """([orders, twaps]) => {
            if (window.qfexLive === undefined) return false;
            const rows = window.qfexLive.orders.getData().filter(d => !d._gone);
            const twapRows = window.qfexLive.twaps.getData().filter(d => !d._gone);
            const ids = new Set(twapRows.map(d => d.id));
            return rows.length === Object.keys(orders).length
                && rows.every(d => orders[d.id] !== undefined
                    && d.status === orders[d.id][0] && Number(d.quantity_remaining) === orders[d.id][1])
                && ids.size === twaps.length && twaps.every(id => ids.has(id));
        }""",
        arg=[orders, twaps],
        timeout=PATIENCE_MS,
    )


def book(sim: Simulator, key: str) -> tuple[list[str], list[str]]:
    """The simulator's truth for one account: its open order ids and active TWAP ids."""
    return [o["order_id"] for o in sim.open_orders(key)], [t["twap_id"] for t in sim.active_twaps(key)]


def serious_axe_violations(page: Page) -> list[str]:
    """Run axe-core on the page as it is now; its serious and critical findings, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern:
        # an added <script> tag is an inline script, refused by script-src 'self' (S28).
        page.evaluate(AXE.read_text() + "\n;undefined")
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
