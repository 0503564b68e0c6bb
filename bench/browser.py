"""P7: the live page in headless Chromium with 10 000 orders — first render, click-to-sorted, 100-row diffs.

The page is the real ``templates/orders/live.html`` with the real ``static/`` files, served the way the
browser tests serve it (``bench/livepage.py``: a small HTTP server, and a WebSocket server that
sends nothing, so the page's socket opens and stays quiet). Messages are handed to the page through its
hook ``window.qfexLive.applyMessage``; every measurement runs inside the page with ``performance.now()``:

- **script**: from receiving the message text to the end of the synchronous work it causes
  (``JSON.parse`` plus ``applyMessage``; for a click, the click handler and Tabulator's sort);
- **to the next frame**: until a ``requestAnimationFrame`` callback and a following task have run,
  i.e. the rows have been laid out and painted. This includes waiting for the frame (up to one
  frame interval, about 16.7 ms at 60 Hz).

``applyMessage`` keeps (and annotates) the row objects it is given, so each sample parses a fresh copy
of its message from text, as the socket would.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.chromium import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from bench.stats import p95, summary_ms, verdict

ROWS_PER_MESSAGE = 500  # the server's default QFEXDASH_WS_ROWS_PER_MESSAGE: snapshots come in parts this big
DIFF_ROWS = 100

# Resolves once a frame has been produced after the caller's work: rAF runs before paint, the task after it.
NEXT_FRAME = "() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))"

APPLY_TEXTS = f"""async (texts) => {{
  const nextFrame = {NEXT_FRAME};
  const t0 = performance.now();
  for (const text of texts) {{
    window.qfexLive.applyMessage(JSON.parse(text));
  }}
  const script = performance.now() - t0;
  await nextFrame();
  return {{
    script: script,
    frame: performance.now() - t0,
    seq: document.body.dataset.renderedSeq,
    count: window.qfexLive.orders.getDataCount(),
  }};
}}"""

CLICK_HEADER = f"""async (column) => {{
  const nextFrame = {NEXT_FRAME};
  const header = document.querySelector("#orders-table .tabulator-col[data-column='" + column + "']");
  const t0 = performance.now();
  header.click();
  const script = performance.now() - t0;
  await nextFrame();
  return {{ script: script, frame: performance.now() - t0, sort: header.getAttribute("aria-sort") }};
}}"""

SORTED_BY = """([field, dir]) => {
  const values = window.qfexLive.orders.getData("active").map((d) => Number(d[field]));
  for (let i = 1; i < values.length; i++) {
    if (dir === "ascending" ? values[i - 1] > values[i] : values[i - 1] < values[i]) {
      return false;
    }
  }
  return true;
}"""


def p7(samples: int, rows: int = 10_000) -> list[str]:
    """Browser figures for the live page with ``rows`` orders; 'skipped' lines when Chromium is missing."""
    missing = chromium_missing()
    if missing:
        return [f"P7 skipped: {missing}"]
    from playwright.sync_api import sync_playwright

    loads = max(3, samples // 4)
    repeats = max(3, samples // 2)
    with _page_servers() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.set_default_timeout(60_000)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            result = _measure(page, url, rows, loads, repeats)
            context.close()
        finally:
            browser.close()
    if errors:
        raise RuntimeError(f"the page reported errors: {errors[:3]}")
    return _lines(rows, result)


@contextmanager
def _page_servers() -> Iterator[str]:
    """The live page (real template and static files) and a quiet socket for it; the page's URL."""
    from bench.livepage import FakeLiveServer, PageServer, render_live_page

    ws = FakeLiveServer()
    try:
        http = PageServer({"/": render_live_page(ws.url("/ws/accounts/7/"), "account")})
        try:
            yield http.url("/")
        finally:
            http.stop()
    finally:
        ws.stop()


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => window.qfexLive !== undefined && document.body.dataset.socket === 'open'")
    page.evaluate("() => window.qfexLive.ready.then(() => true)")


def _measure(page: Any, url: str, rows: int, loads: int, repeats: int) -> dict[str, Any]:
    from bench.livepage import ACCOUNT, AS_OF, live_status, order_row

    base = [order_row(i, price=f"{(i * 7919) % 10007}.5") for i in range(rows)]
    # As the server sends a snapshot: in parts (when the page knows parts), each a full message.
    _open(page, url)
    parts_known = bool(page.evaluate("() => !!(window.qfexLive && window.qfexLive.ready)"))
    size = ROWS_PER_MESSAGE if parts_known else rows
    chunks = [base[i : i + size] for i in range(0, rows, size)]
    snapshot = [
        json.dumps(
            {
                "type": "snapshot",
                "account": ACCOUNT,
                "seq": 1,
                "as_of": AS_OF,
                "part": n,
                "parts": len(chunks),
                "status": live_status(),
                "orders": chunk,
                "twaps": [],
            }
        )
        for n, chunk in enumerate(chunks, 1)
    ]

    first: list[dict[str, Any]] = []
    for n in range(loads):
        if n:
            _open(page, url)
        sample = page.evaluate(APPLY_TEXTS, snapshot)
        if sample["count"] != rows or sample["seq"] != "1":
            raise RuntimeError(f"the snapshot did not render: {sample}")
        first.append(sample)

    clicks: list[dict[str, Any]] = []
    columns = ["price", "notional"]
    for n in range(repeats):
        column = columns[n % 2]  # a different column each time: every click is a whole new sort
        sample = page.evaluate(CLICK_HEADER, column)
        field = page.evaluate("(c) => window.qfexLive.views.orders.specById.get(c).field", column)
        if not page.evaluate(SORTED_BY, [field, sample["sort"]]):
            raise RuntimeError(f"rows not sorted by {column} after the click")
        clicks.append(sample)
    if page.evaluate(CLICK_HEADER, "price")["sort"] != "ascending":
        page.evaluate(CLICK_HEADER, "price")  # end sorted by price, ascending, for the diffs

    seq = 1
    diffs: dict[str, list[dict[str, Any]]] = {"cells": [], "moves": [], "warm-up": []}
    picked = range(0, rows, max(1, rows // DIFF_ROWS))
    # The first diff after a bulk load also builds the table's row index (once): measured apart.
    current = list(base)  # what the page holds: each diff starts from it, so "cells" never moves a row back
    for n in range(-1, repeats):
        for kind in ("cells", "moves"):
            seq += 1
            if kind == "cells":  # fills: quantities change, the sort column (price) does not
                changed = [dict(current[i], quantity_remaining=str(n % 4), filled=str(10 - n % 4)) for i in picked]
            else:  # new prices: every changed row moves to another place in the sorted table
                changed = [dict(current[i], price=f"{(i * 31 + n * 977) % 10007}.25") for i in picked]
            for i, row in zip(picked, changed, strict=True):
                current[i] = row
            message = {
                "type": "diff",
                "account": ACCOUNT,
                "seq": seq,
                "as_of": AS_OF + seq,
                "upsert": {"orders": changed[:DIFF_ROWS], "twaps": []},
                "remove": {"orders": [], "twaps": []},
            }
            sample = page.evaluate(APPLY_TEXTS, [json.dumps(message)])
            if sample["seq"] != str(seq):
                raise RuntimeError(f"diff {seq} was not applied: {sample}")
            diffs[kind if n >= 0 else "warm-up"].append(sample)
    price_field = page.evaluate("() => window.qfexLive.views.orders.specById.get('price').field")
    if not page.evaluate(SORTED_BY, [price_field, "ascending"]):
        raise RuntimeError("rows not in price order after the diffs")
    return {"parts": len(chunks), "first": first, "clicks": clicks, **diffs}


def _seconds(samples: list[dict[str, Any]], key: str) -> list[float]:
    return [sample[key] / 1000 for sample in samples]


def _lines(rows: int, result: dict[str, Any]) -> list[str]:
    first_frame = _seconds(result["first"], "frame")
    click_frame = _seconds(result["clicks"], "frame")
    cells = _seconds(result["cells"], "script")
    moves = _seconds(result["moves"], "script")
    parts = result["parts"]
    return [
        f"P7 live page in headless Chromium, {rows:,} orders (Tabulator virtual DOM; viewport 1400×900)",
        f"   first render ({parts} snapshot part{'s' if parts != 1 else ''}: parse + apply → next frame):"
        f" {summary_ms(first_frame)} — goal ≤ 100 ms → {verdict(p95(first_frame) <= 0.100)} (p95);"
        f" script alone median {statistics.median(_seconds(result['first'], 'script')) * 1000:.1f} ms",
        f"   click on a column header → sorted rows on screen (next frame): {summary_ms(click_frame)} — goal ≤ 100 ms"
        f" → {verdict(p95(click_frame) <= 0.100)} (p95); script alone median"
        f" {statistics.median(_seconds(result['clicks'], 'script')) * 1000:.1f} ms",
        f"   {DIFF_ROWS}-row diff, cell updates only — script: {summary_ms(cells)} — goal ≤ 10 ms →"
        f" {verdict(p95(cells) <= 0.010)} (p95); to the next frame median"
        f" {statistics.median(_seconds(result['cells'], 'frame')) * 1000:.1f} ms",
        f"   {DIFF_ROWS}-row diff, rows moved (sort column changed) — script: {summary_ms(moves)} — goal ≤ 10 ms →"
        f" {verdict(p95(moves) <= 0.010)} (p95); to the next frame median"
        f" {statistics.median(_seconds(result['moves'], 'frame')) * 1000:.1f} ms",
        f"   (the first diff after a snapshot also builds the table's row index, once: script"
        f" {result['warm-up'][0]['script']:.1f} ms; not in the samples above)",
    ]
