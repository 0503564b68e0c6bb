"""What ``/proc`` says about a process (resident memory, threads, CPU time), and this process's open-files
limit, which the servers it starts inherit."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcSample:
    rss_kib: int
    threads: int


def proc_sample(pid: int) -> ProcSample | None:
    """Resident memory and thread count of a process, from /proc; None when it is gone or exiting.

    A process that has exited but is not yet reaped (a zombie, e.g. Daphne between SIGTERM and ``wait``)
    still has a status file, without ``VmRSS``.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if "VmRSS" not in values or "Threads" not in values:
        return None
    return ProcSample(int(values["VmRSS"].split()[0]), int(values["Threads"]))


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (``/proc/<pid>/stat``); 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, so utime (14) and stime (15) are at offsets 11 and 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's open-file soft limit to ``wanted`` (capped by the hard limit); the new limit.
    Children started afterwards (Daphne) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def require_open_files(needed: int) -> None:
    """Raise the open-file limit to ``needed``; fail, saying so, when the hard limit does not allow it."""
    soft = raise_open_files_limit(needed)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise RuntimeError(f"need {needed} open files, the hard limit allows {soft}")
