"""Where Chromium is: :mod:`bench.harness.chromium`. This name stays only for P7 (``bench/browser.py``),
which imports it until the live page's front-end work lands; then its import moves and this module goes."""

from bench.harness.chromium import CHROMIUM, CHROMIUM_ARGS, chromium_missing

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "chromium_missing"]
