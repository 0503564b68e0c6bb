"""What a soak run found: each check of the pass bar, each fault's result, and the whole report."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.soak.config import SoakConfig


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    timing: bool = False  # a wall-clock criterion (informational when timing is lenient)
    fault_specific: bool = False  # printed under the table whatever its outcome


@dataclass
class FaultResult:
    fault: str
    title: str
    applied_seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    strict_timing: bool = True

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if self.strict_timing or not c.timing)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and (self.strict_timing or not c.timing)]


@dataclass
class SoakReport:
    config: SoakConfig
    results: list[FaultResult]
    overall: list[Check]
    started: float
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results) and all(c.ok for c in self.overall)


def seconds_text(seconds: float | None) -> str:
    """'1.23 s', or '—' for a condition never met."""
    return "—" if seconds is None else f"{seconds:.2f} s"
