"""Soak smoke: every upstream fault F1-F12 for a few seconds against the whole stack, pass bar checked.

The same run as ``python -m bench.soak`` (a real Daphne process with its own database, the simulator,
3 accounts x 5 browser sockets), with each fault held for 2 s instead of 10 minutes. Timing criteria
(stale within 2 intervals, converged within one interval + grace) are reported but not asserted here;
every condition itself (stale shown, tables equal to the books, nothing unhandled, memory and threads
bounded, upstream requests within budget, the fault-specific bounds) must hold within generous deadlines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import ALL_FAULTS, SoakConfig, format_report, run


@pytest.mark.timeout(300)
def test_every_fault_meets_the_pass_bar(tmp_path: Path) -> None:
    report = run(SoakConfig(seconds_per_fault=2.0, strict_timing=False, deadline=60.0, workdir=tmp_path))
    text = "\n".join(format_report(report))
    assert [result.fault for result in report.results] == list(ALL_FAULTS), text
    assert report.ok, text
    for result in report.results:
        names = {check.name for check in result.checks}
        # Every fault had its convergence, log, socket, budget and memory checks.
        assert {"tables equal the books", "no unhandled exception", "upstream within budget"} <= names, text
        assert {"browser sockets undisturbed", "memory and threads bounded"} <= names, text
