"""Daphne in a subprocess: the one way the tests and benchmarks start qfexdash's server.

:class:`Daphne` serves a TCP socket listening on 127.0.0.1 that this process owns (``daphne --fd``), so the
address outlives the server process: a restart keeps it, and a browser connecting meanwhile simply waits
in the listen queue until the new process accepts it. The server's output goes to one log file, appended
across restarts. :meth:`Daphne.start` returns once the server answers ``GET /healthz`` (or raises with
the end of the log when it exits or does not answer in time); :meth:`Daphne.stop` sends SIGTERM, then
SIGKILL after a grace period.

Nothing here imports Django: the server's settings travel only in its environment
(:func:`bench.harness.env.server_env`).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from bench.harness import ROOT
from bench.harness.proc import ProcSample, proc_sample

DAPHNE = Path(sys.executable).with_name("daphne")
APPLICATION = "qfexdash.asgi:application"
READY_PATH = "/healthz"
# A log line that shows an unhandled exception or an ERROR/CRITICAL record (LOG_LEVEL's format).
_PROBLEM_LINE = re.compile(r"Traceback \(most recent call last\)|\s(ERROR|CRITICAL)\s")
# How often a start-up wait looks whether the server exited while its request waits for an answer.
_EXIT_CHECK_SECONDS = 0.2


class DaphneExited(RuntimeError):
    """The server ended before it answered: its exit code and the end of its log."""

    def __init__(self, returncode: int, log: str) -> None:
        super().__init__(f"Daphne exited with {returncode} before it answered; its log ends with:\n{log}")
        self.returncode = returncode
        self.log = log


def loopback_listener(backlog: int) -> socket.socket:
    """A TCP socket listening on 127.0.0.1 (a free port), inheritable so Daphne can serve it (``--fd``)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(backlog)
        listener.set_inheritable(True)
    except BaseException:
        listener.close()
        raise
    return listener


class Daphne:
    """qfexdash served by ``daphne --fd`` on a loopback listener owned here; start, stop and restart keep
    the address. ``env`` is the server's whole environment; ``patience`` bounds every wait (seconds)."""

    def __init__(
        self,
        env: Mapping[str, str],
        log: Path,
        *,
        backlog: int = 1024,
        application: str = APPLICATION,
        patience: float = 60.0,
    ) -> None:
        self.env = dict(env)
        self.log = log
        self.application = application
        self.patience = patience
        self.listener = loopback_listener(backlog)
        self.port: int = self.listener.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # --- where it is ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        """The page's Origin (and the site's base URL)."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # --- life cycle -----------------------------------------------------------------------------

    def start(self, settings: Mapping[str, str] | None = None) -> Daphne:
        """Start the server with its environment plus ``settings`` (for this start only); return once it
        answers ``GET /healthz``. Raises :class:`DaphneExited` when it ends first."""
        if self.running:
            raise RuntimeError("Daphne is already running")
        fd = self.listener.fileno()
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [str(DAPHNE), "--fd", str(fd), "-v", "0", self.application],
                env={**self.env, **(settings or {})},
                cwd=ROOT,
                pass_fds=(fd,),
                stdout=out,
                stderr=out,
            )
        self.starts += 1
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        """One ``GET /healthz``: it waits in the listen queue until the server accepts it, then for the
        answer; meanwhile the process is watched, so an exit ends the wait at once."""
        deadline = time.monotonic() + self.patience
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.patience) as connection:
            connection.sendall(f"GET {READY_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            connection.settimeout(_EXIT_CHECK_SECONDS)
            answer = b""
            while b"\r\n" not in answer:
                self._check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Daphne did not answer within {self.patience:g} s:\n{self.log_tail()}")
                try:
                    chunk = connection.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    self._check_alive()
                    raise RuntimeError(f"Daphne closed {READY_PATH} without an answer:\n{self.log_tail()}")
                answer += chunk
        status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
        if status.split()[1:2] != ["200"]:
            raise RuntimeError(f"Daphne answered {READY_PATH} with {status!r}:\n{self.log_tail()}")

    def _check_alive(self) -> None:
        assert self.process is not None
        returncode = self.process.poll()
        if returncode is not None:
            raise DaphneExited(returncode, self.log_tail())

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL when it has not exited after ``timeout`` (default: the patience). The
        listening socket stays open. Nothing happens when the server is not running."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        grace = self.patience if timeout is None else timeout
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a process that dies, e.g. an owner that never releases its lease)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=self.patience)

    def restart(self, settings: Mapping[str, str] | None = None) -> None:
        self.stop()
        self.start(settings)

    def close(self) -> None:
        """Stop the server and close the listening socket."""
        try:
            self.stop()
        finally:
            self.listener.close()

    def __enter__(self) -> Daphne:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what it wrote and what it uses -----------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty log)"

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def problems_since(self, offset: int) -> list[str]:
        """Lines from byte ``offset`` on that show an unhandled exception or an ERROR/CRITICAL log record."""
        try:
            with open(self.log, "rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return []
        return [line.strip() for line in text.splitlines() if _PROBLEM_LINE.search(line)]

    def sample(self) -> ProcSample | None:
        """The server's memory and threads now; None when it is not running."""
        pid = self.pid
        return None if pid is None else proc_sample(pid)

    def rss_kib(self) -> int:
        """The server's resident set size (VmRSS), KiB."""
        sample = self.sample()
        if sample is None:
            raise RuntimeError("Daphne is not running")
        return sample.rss_kib
