"""Where Debian's Chromium is and how tests launch it; shared by tests/browser and tests/e2e."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("QFEXDASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def require_chromium(what: str) -> None:
    """Skip when Chromium is missing — but fail under CI, which must run ``what``, not skip it."""
    if Path(CHROMIUM).exists():
        return
    reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set QFEXDASH_CHROMIUM)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run {what}, not skip them")
    pytest.skip(reason)
