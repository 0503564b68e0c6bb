"""Leak checks for every QFEX client test: no thread and no socket may outlive a test."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        pause.wait(0.01)
    return True


def open_sockets() -> int:
    """Sockets this process has open (Linux /proc), or -1 where that cannot be counted."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return -1
    count = 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


@pytest.fixture(autouse=True)
def no_leaked_threads_or_sockets():
    threads_before = threading.active_count()
    sockets_before = open_sockets()
    yield
    assert wait_until(lambda: threading.active_count() <= threads_before), (
        f"threads leaked: {[t.name for t in threading.enumerate()]}"
    )
    if sockets_before >= 0:
        assert wait_until(lambda: open_sockets() <= sockets_before), (
            f"sockets leaked: {open_sockets()} open, {sockets_before} before the test"
        )
