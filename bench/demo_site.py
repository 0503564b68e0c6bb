"""The demo site on a real Daphne, for end-to-end tests and the docs' screenshots.

- :class:`Site` — qfexdash served by a real Daphne subprocess on a socket the caller owns (``--fd``),
  with its own SQLite file prepared by :mod:`bench.world` (the demo's users and accounts, pointing at a
  simulator the caller runs);
- :func:`sign_in` through the real form.

``tests/web/e2e`` builds its fixtures on this; ``bench.screenshots`` uses it as it is.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.site import ROOT, base_env, sqlite_url, start_daphne, stop_daphne
from bench.world import public_keys
from orders.simulator import Simulator

PASSWORD = "e2e-Passw0rd-not-secret"  # noqa: S105  (the demo users' password in a throwaway database)
# A throwaway key for the site's own database (it encrypts only the simulator's made-up secrets).
SITE_ENCRYPTION_KEY = "ZTJlLXNpdGUtdGhyb3dhd2F5LWtleS0wMTIzNDU2Nzg="
# Production and UAT at a loopback port nobody listens on: nothing can reach a real exchange.
CLOSED_LOOPBACK_URL = "ws://127.0.0.1:9"
# Generous limits for conditions: two cores, shared with other test runs. The things under test are fast.
PATIENCE_MS = 20_000
DESK = (1440, 900)  # a desk screen
PHONE = (390, 844)  # a phone held upright
STARTUP_SECONDS = 120.0


# --- the site --------------------------------------------------------------------------------------


@dataclass
class Site:
    """The running qfexdash: its address, the accounts' ids by label and the simulator keys behind them."""

    url: str
    accounts: dict[str, int]
    keys: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def page_url(self, path: str) -> str:
        return self.url + path

    def live_path(self, label: str) -> str:
        return f"/accounts/{self.accounts[label]}/"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def site_env(state: Path, sim: Simulator) -> dict[str, str]:
    """Settings for the server under test, all through its environment as in production."""
    env = base_env(
        os.environ,
        database_url=sqlite_url(state),
        state_dir=state / "state",
        encryption_keys=SITE_ENCRYPTION_KEY,
        secret_key="e2e-test-secret-key-0123456789-abcdefghijklmnopqrstuv",
        log_level="WARNING",
        QFEX_TRADE_URL=CLOSED_LOOPBACK_URL,
        QFEX_UAT_TRADE_URL=CLOSED_LOOPBACK_URL,
        # Short intervals so staleness, recovery and a sign-out show within seconds.
        QFEXDASH_RECONCILE_SECONDS="1",
        QFEXDASH_BACKOFF_BASE_SECONDS="0.2",
        QFEXDASH_BACKOFF_CAP_SECONDS="1",
        QFEX_TIMEOUT_SECONDS="2",
        QFEXDASH_ACCESS_RECHECK_SECONDS="0.5",
        E2E_SIM_URL=sim.url,
        E2E_PASSWORD=PASSWORD,
    )
    # One process with the in-memory channel layer; nothing from the developer's own setup leaks in.
    for name in ("REDIS_URL", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE"):
        env.pop(name, None)
    return env


def prepare_database(env: dict[str, str]) -> dict[str, int]:
    """Migrate and fill the site's database in a subprocess; the accounts' ids by label."""
    prepared = subprocess.run(
        [sys.executable, "-m", "bench.world"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert prepared.returncode == 0, f"preparing the site's database failed:\n{prepared.stderr[-4000:]}"
    line = next(line for line in prepared.stdout.splitlines() if line.startswith("WORLD "))
    return json.loads(line.removeprefix("WORLD "))


def start_site(env: dict[str, str], listener: socket.socket, log: Path) -> Site:
    """Start Daphne on ``listener`` and return once it answers HTTP."""
    port = listener.getsockname()[1]
    site = Site(f"http://127.0.0.1:{port}", prepare_database(env), public_keys(), log)
    site.process = start_daphne(env, listener, log)
    try:
        # The socket listens before Daphne runs: this request waits in its queue until Daphne answers.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=STARTUP_SECONDS)
        try:
            connection.request("GET", "/healthz")
            status = connection.getresponse().status
        finally:
            connection.close()
        assert status == 200, f"/healthz answered {status}"
    except (OSError, AssertionError) as exc:
        stop_site(site)
        raise AssertionError(f"Daphne did not start ({exc}); its log:\n{site.log_tail()}") from None
    return site


def stop_site(site: Site) -> None:
    stop_daphne(site.process, 30)


# --- the browser -----------------------------------------------------------------------------------


def sign_in(page: Any, site: Site, username: str = "demo", password: str = PASSWORD) -> None:
    """Sign in through the real form (the login page, its CSRF token, the session cookie)."""
    page.goto(site.page_url("/signin/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/signin/" not in page.url, f"signing in as {username} failed"
