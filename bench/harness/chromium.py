"""Where Debian's Chromium is and how it is launched; shared by P7 (``bench/browser.py``), the screenshots
and the browser and end-to-end tests (``tests/web/browser``, ``tests/web/e2e``). Set ``QFEXDASH_CHROMIUM``
for another binary."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = os.environ.get("QFEXDASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def chromium_missing() -> str | None:
    """None when :data:`CHROMIUM` exists; otherwise why it cannot run, and how to fix that."""
    if Path(CHROMIUM).exists():
        return None
    return f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set QFEXDASH_CHROMIUM)"
