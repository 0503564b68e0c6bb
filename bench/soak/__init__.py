"""Soak under faults: the whole stack through each upstream fault F1-F12 of design.md §5, with the pass bar.

``python -m bench.soak [--seconds-per-fault 600] [--faults F1,F2,...] [--accounts 3] [--sockets-per-account 5]``

The stack: the simulator in this process (pace > 0, so books keep moving while a fault is on), a real
Daphne process with its own SQLite database (3 team accounts pointing at the simulator, one viewer per
account), and ``accounts x sockets-per-account`` browser sockets (session cookie + Origin) that keep the
page's tables: snapshot parts reassembled, diffs in seq order, ``resync`` on a gap, reconnect with jitter.

For each fault in turn: switch it on (pace on) for ``--seconds-per-fault`` — and, for faults that make
upstream fail, until every page has shown the failure — then heal it and freeze the books (pace 0), and
check the pass bar:

- **no unhandled exception**: no ``Traceback``/``ERROR``/``CRITICAL`` line in Daphne's log, no ERROR log
  record or unhandled task exception in this process, no error frame sent to a page, no browser socket
  closed (except by the F10 restart);
- **stale shown**: for faults that make upstream fail, every page shows ``stale`` (``error`` for F6, a
  rejected key) within 2 reconcile intervals of the fault starting;
- **converged**: after healing, every socket's tables equal the simulator's books (by id and every field,
  through the feed's own row conversion) within one interval plus a stated grace (the upstream timeout and
  backoff cap that may be running when the fault ends, plus 1 s to measure), per fault;
- **bounded**: Daphne's RSS and thread count (``/proc/<pid>/status``) stay within a margin of the
  warmed-up process, with no growth from fault to fault;
- **upstream budget**: ``get_user_orders`` requests per account within the feed's rate budget
  (``QFEXDASH_RATE_BUDGET_SHARE`` of QFEX's 12 000 weight / 60 s, 5 per page, plus the burst), and the
  fault's own bound (F1 reconnect storm, F6 auth attempts, F7 requests refused by the exchange).

Timing criteria (stale within 2 intervals, converged within the limit) can be made informational with
``--lenient-timing`` (the CI smoke does): the condition must still be met, within a generous deadline.
Exit status 1 when any fault fails.

The parts: :mod:`~bench.soak.config` (settings and margins), :mod:`~bench.soak.stack` (the stack and what
a fault is), :mod:`~bench.soak.upstream_faults` and :mod:`~bench.soak.stack_faults` (F1-F12),
:mod:`~bench.soak.checks` (the pass bar), :mod:`~bench.soak.runner` (one run), :mod:`~bench.soak.report`.
"""

from __future__ import annotations

import asyncio

from bench.soak.config import ALL_FAULTS, SoakConfig
from bench.soak.report import format_report
from bench.soak.results import SoakReport
from bench.soak.runner import FAULTS, Soak

__all__ = ["ALL_FAULTS", "FAULTS", "SoakConfig", "SoakReport", "format_report", "run"]


def run(config: SoakConfig) -> SoakReport:
    """Run the soak (blocking) and return its report."""
    return asyncio.run(Soak(config).run())
