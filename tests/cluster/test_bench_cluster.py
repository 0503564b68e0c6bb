"""The two-process benchmarks (``P3-redis``, ``P4-redis``) run end to end with tiny parameters.

Not measurements: nothing here looks at a time. Each run builds its own cluster (PostgreSQL database,
Redis prefix, two Daphne processes) and must tear it all down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from bench.live import cluster

pytestmark = pytest.mark.services


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


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
