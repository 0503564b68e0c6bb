"""The soak's report: one line per fault while it runs, then a table and the checks worth reading."""

from __future__ import annotations

from typing import Any

from bench.soak.config import MIB
from bench.soak.results import FaultResult, SoakReport, seconds_text


def result_line(result: FaultResult) -> str:
    verdict = "PASS" if result.ok else "FAIL"
    failures = "; ".join(f"{c.name}: {c.detail}" for c in result.failures())
    return f"{result.fault}: {verdict}" + (f" — {failures}" if failures else "")


def table_figures(phase: dict[str, Any], shows: bool, stale_seen: int) -> dict[str, str]:
    """A fault's row of the report's table, from what its checks noted in ``phase``."""
    return {
        "stale": seconds_text(phase.get("stale_after")) if shows else f"n/a ({stale_seen} pages did)",
        "converged": f"{seconds_text(phase.get('converged_after'))} (≤ {phase.get('converge_limit', 0):g} s)",
        "requests": f"{phase.get('requests', 0)} (≤ {phase.get('requests_bound', 0):.0f})",
        "rss": f"{phase.get('rss_end', 0) / MIB:.0f} MiB ({phase.get('rss_peak', 0) / MIB:.0f})",
        "drift": "—" if "drift" not in phase else f"{phase['drift']:+.1f} MiB",
        "threads": str(phase.get("threads", "—")),
    }


def format_report(report: SoakReport) -> list[str]:
    cfg = report.config
    lines = [
        f"# Soak under faults — {len(report.results)} faults × {cfg.seconds_per_fault:g} s,"
        f" {cfg.accounts} accounts × {cfg.sockets_per_account} sockets, pace {cfg.pace:g}/s,"
        f" interval {cfg.interval:g} s, timeout {cfg.timeout:g} s, backoff {cfg.backoff_base:g}–{cfg.backoff_cap:g} s,"
        f" channel capacity {cfg.channel_capacity}; {report.seconds / 60:.1f} min in all"
        + ("" if cfg.strict_timing else " (timing criteria informational)"),
        "",
        "| fault | what | on for | stale/error shown after | converged after | get_user_orders/account"
        " | Daphne RSS end (peak) | RSS drift while on | threads | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        figures = r.figures
        lines.append(
            f"| {r.fault} | {r.title} | {r.applied_seconds:.0f} s | {figures['stale']} | {figures['converged']}"
            f" | {figures['requests']} | {figures['rss']} | {figures['drift']} | {figures['threads']}"
            f" | {'PASS' if r.ok else 'FAIL'} |"
        )
    lines.append("")
    for r in report.results:
        for check in r.checks:
            if check.fault_specific or not check.ok:
                mark = "ok" if check.ok else ("FAIL" if (cfg.strict_timing or not check.timing) else "late (info)")
                lines.append(f"- {r.fault} {check.name}: {mark} — {check.detail}")
    for check in report.overall:
        lines.append(f"- overall {check.name}: {'ok' if check.ok else 'FAIL'} — {check.detail}")
    lines.append("")
    lines.append("RESULT: " + ("PASS" if report.ok else "FAIL"))
    return lines
