"""Fixtures for the live page's browser tests: Debian's Chromium driven by Playwright (sync API).

Each test gets a fresh browser context and page, a fake live WebSocket server it drives, and an HTTP server
for the rendered page and the static files. The browser console and page errors are printed when a test
fails; an uncaught page error fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from bench.harness.chromium import CHROMIUM, CHROMIUM_ARGS
from bench.livepage import FakeLiveServer, Message, PageServer, render_live_page
from tests.chromium import require_chromium

DESK = (1440, 900)  # a desk screen
PHONE = (390, 844)  # a phone held upright


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread while
# it is open, which would stop the asyncio tests that run after the browser tests.
@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    require_chromium("the browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class LiveSite:
    """One test's world: the fake socket server, the page server and one browser page."""

    def __init__(self, ws: FakeLiveServer, http: PageServer, page: Page) -> None:
        self.ws = ws
        self.http = http
        self.page = page

    def open(self, path: str = "/", query: str = "") -> Page:
        self.page.goto(self.http.url(path) + (f"?{query}" if query else ""))
        return self.page

    def wait(self, expression: str, arg: object = None, timeout: float = 10_000) -> None:
        """Wait until a JavaScript expression (or `arg => ...` function) is truthy in the page."""
        self.page.wait_for_function(expression, arg=arg, timeout=timeout)

    def wait_seq(self, seq: int) -> None:
        self.wait("s => document.body.dataset.renderedSeq === String(s)", seq)

    def js(self, expression: str, arg: object = None) -> object:
        return self.page.evaluate(expression, arg)


@pytest.fixture
def live_site(chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., LiveSite]]:
    """Factory: ``live_site(on_connect)`` starts the servers and a page; everything stops after the test."""
    started: list[tuple[FakeLiveServer, PageServer]] = []
    contexts = []
    console: list[str] = []
    page_errors: list[str] = []

    def start(
        on_connect: Callable[[int], list[Message]] | None = None,
        *,
        viewport: tuple[int, int] = DESK,
        color_scheme: Literal["light", "dark"] = "light",
        config: dict[str, Any] | None = None,
        theme: str = "",
    ) -> LiveSite:
        """``viewport`` (width, height): DESK or PHONE; ``color_scheme``: what the system prefers;
        ``config`` adds to the page's configuration; ``theme`` is the person's chosen theme ("" = system)."""
        ws = FakeLiveServer(on_connect)
        try:
            http = PageServer(
                {
                    "/": render_live_page(ws.url("/ws/accounts/7/"), "account", config, theme),
                    "/all": render_live_page(ws.url("/ws/accounts/all/"), "all", config, theme),
                }
            )
        except BaseException:
            ws.stop()
            raise
        started.append((ws, http))
        context = chromium.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            accept_downloads=True,
            color_scheme=color_scheme,
            is_mobile=viewport == PHONE,
            has_touch=viewport == PHONE,
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)

        def on_console(message: ConsoleMessage) -> None:
            console.append(f"[{message.type}] {message.text}")

        def on_error(error: Error) -> None:
            page_errors.append(str(error))
            console.append(f"[pageerror] {error}")

        page.on("console", on_console)
        page.on("pageerror", on_error)
        return LiveSite(ws, http, page)

    yield start

    for context in contexts:
        context.close()
    for ws, http in started:
        http.stop()
        ws.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and console:
        print("\n--- browser console ---\n" + "\n".join(console))
    assert not page_errors, f"uncaught errors in the page: {page_errors}"
