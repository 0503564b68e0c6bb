"""The tests' rule for a missing Chromium (where it is and how it starts: :mod:`bench.harness.chromium`)."""

from __future__ import annotations

import os

import pytest

from bench.harness.chromium import chromium_missing


def require_chromium(what: str) -> None:
    """Skip when Chromium is missing — but fail under CI, which must run ``what``, not skip them."""
    reason = chromium_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run {what}, not skip them")
    pytest.skip(reason)
