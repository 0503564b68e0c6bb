"""Small statistics helpers: medians, p95 and ratios over samples taken in the same run."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    index = max(0, round(0.95 * len(ordered)) - 1)
    return ordered[index]


def summary_ms(samples: Sequence[float]) -> str:
    """'median 4.1 ms, p95 5.0 ms (n=40)' for samples in seconds."""
    return f"median {statistics.median(samples) * 1000:.2f} ms, p95 {p95(samples) * 1000:.2f} ms (n={len(samples)})"


def ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    return statistics.median(numerator) / statistics.median(denominator)
