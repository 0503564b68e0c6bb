"""The harness tests and benchmarks share: qfexdash's real server and the services around it.

- :mod:`bench.harness.daphne` — :class:`~bench.harness.daphne.Daphne`, the one way anything here starts
  and stops Daphne (a loopback listener this process owns, a log file, a readiness check);
- :mod:`bench.harness.env` — the environment every server under test runs with (its own database,
  state folder and keys, loopback only);
- :mod:`bench.harness.site` — a site's database prepared by ``manage.py`` subprocesses: migrated, then
  filled by :mod:`bench.harness.populate` from a :class:`~bench.harness.site.SiteSpec`;
- :mod:`bench.harness.proc` — what ``/proc`` says about a process (memory, threads, CPU) and the
  open-files limit;
- :mod:`bench.harness.chromium` — where Debian's Chromium is and how it is launched;
- :mod:`bench.harness.cluster` — a throwaway PostgreSQL database, a Redis key prefix and several Daphne
  processes of one site;
- :mod:`bench.harness.demo` — the demo's world on a real Daphne, for the end-to-end tests and screenshots.

Tests import these; nothing under ``bench/`` imports ``tests`` (``tests/test_layout.py`` checks). The
process that imports the harness never imports Django's settings for the server: every server and every
``manage.py`` step gets its settings through its own environment.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
