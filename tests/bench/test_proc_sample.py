"""The soak's memory sampler reads live, exiting and vanished processes without failing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.harness.proc import proc_sample


def _state(pid: int) -> str:
    # /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces, so split after the last ')'.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_running_process_has_memory_and_threads() -> None:
    sample = proc_sample(os.getpid())
    assert sample is not None
    assert sample.rss_kib > 1024
    assert sample.threads >= 1


def test_an_exited_unreaped_process_gives_none() -> None:
    """Daphne between SIGTERM and ``wait``: a zombie's status file has no VmRSS (this crashed a soak)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # until it exits, without reaping it
        assert _state(child.pid) == "Z"
        assert "VmRSS" not in Path(f"/proc/{child.pid}/status").read_text()
        assert proc_sample(child.pid) is None
    finally:
        child.wait()
    assert proc_sample(child.pid) is None  # reaped: no /proc entry at all
