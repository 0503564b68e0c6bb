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


def verdict(met: bool) -> str:
    """How a goal line ends: 'met' or 'NOT met' (capitals, so a miss stands out in the output)."""
    return "met" if met else "NOT met"


def goal_p95_ms(samples: Sequence[float], goal_seconds: float) -> str:
    """'goal p95 ≤ 15 ms → met' for samples in seconds."""
    return f"goal p95 ≤ {goal_seconds * 1000:g} ms → {verdict(p95(samples) <= goal_seconds)}"
