"""The benchmark code runs end to end with tiny parameters, so it cannot rot unnoticed.

These are not measurements: nothing here looks at a time. Each figure builds its own world (simulator,
Daphne subprocess, sockets, or Chromium) and must tear it all down.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench import browser
from bench.live import diff_bytes, event_latency, idle_sockets, many_viewers, rate_budget, reply_latency
from tests.threads import no_leaked_threads  # noqa: F401  (the fixture, used by name)

pytestmark = pytest.mark.usefixtures("no_leaked_threads")

# Each figure with tiny parameters, and words its output must contain (its goal's verdict).
FIGURES: dict[str, tuple[Callable[[], list[str]], str]] = {
    "P2": (lambda: reply_latency.p2(2, cold_starts=1), "goal p95 ≤ 5 ms →"),
    "P3": (lambda: many_viewers.p3(2, viewer_counts=(1, 3)), "Pages independent of N:"),
    "P4": (lambda: idle_sockets.p4(1, sockets=4, settle=0.0), "goal ≤ 64 KiB →"),
    "P5": (lambda: diff_bytes.p5(1), "goal ≤ 2 % →"),
    "P8": (lambda: rate_budget.p8(1, window=1.5, viewers=2, first_minute=1.5), "default ≤ 10 %:"),
    "P9": (lambda: event_latency.p9(4, sizes=(20, 60), pace=10.0), "of QFEX's 12 000 / 60 s — goal ≤ 5 % →"),
    "P10": (lambda: event_latency.p10(3, accounts=3, rate=3.0, orders=20), "goal p95 ≤ 250 ms →"),
}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", FIGURES)
def test_live_figure_runs(name: str) -> None:
    run, verdict = FIGURES[name]
    lines = run()
    assert lines[0].startswith(name)
    assert len(lines) >= 3
    assert all(isinstance(line, str) and line for line in lines)
    assert any(verdict in line for line in lines), lines


@pytest.mark.browser
@pytest.mark.timeout(240)
def test_browser_figure_runs() -> None:
    lines = browser.p7(2, rows=300)
    assert lines[0].startswith("P7")
    if "skipped" not in lines[0]:
        assert len(lines) == 6
        assert "300 orders" in lines[0]
