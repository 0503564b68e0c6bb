"""The two-process benchmarks (``P3-redis``, ``P4-redis``) run end to end with tiny parameters.

Not measurements: nothing here looks at a time. Each run builds its own cluster (PostgreSQL database,
Redis prefix, two Daphne processes) and must tear it all down.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.live import cluster
from tests.threads import no_leaked_threads  # noqa: F401  (the fixture, used by name)

pytestmark = [pytest.mark.services, pytest.mark.usefixtures("no_leaked_threads")]


FIGURES: dict[str, tuple[Callable[[], list[str]], str]] = {
    "P3-redis": (lambda: cluster.p3(2, viewer_counts=(1, 4)), "Pages independent of N:"),
    "P4-redis": (lambda: cluster.p4(1, sockets=4, settle=0.0), "goal ≤ 64 KiB →"),
}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", FIGURES)
def test_cluster_figure_runs(name: str, services: dict[str, str]) -> None:
    run, expected = FIGURES[name]
    lines = run()
    assert lines[0].startswith(name)
    assert len(lines) >= 3
    assert any(expected in line for line in lines), lines
