"""Load smoke: ``python -m bench.load`` end to end with a few sockets, so the command cannot rot.

Not a measurement: nothing here looks at a time or at memory per socket (the real run holds 1 000
sockets; see docs/reliability.md). Every socket must connect, get its snapshot, follow the diffs and
end with the simulator's book, with nothing unhandled on either side.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import LoadConfig, format_report, run


@pytest.mark.timeout(300)
def test_a_few_sockets_follow_a_changing_book_to_the_last_order(tmp_path: Path) -> None:
    config = LoadConfig(sockets=24, users=3, orders=30, paces=(1.0,), updates=2, concurrency=8, deadline=90.0)
    config.workdir = tmp_path
    report = run(config)
    text = "\n".join(format_report(report))
    assert report.connected == report.snapshots == 24, text
    assert [phase.converged for phase in report.phases] == [24], text
    assert len(report.phases[0].reach_all) == 2, text
    assert report.errors == [], text
    assert report.gaps == 0, text
    assert report.layer_fanout, text
    assert report.stock_layer_fanout, text
    assert text.splitlines()[-1].startswith("RESULT: ")
