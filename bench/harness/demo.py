"""The demo site on a real Daphne, for the end-to-end tests (``tests/web/e2e``) and the docs' screenshots.

- :func:`demo_site` — qfexdash served by :class:`~bench.harness.daphne.Daphne` with its own SQLite file
  holding the ``demo`` command's world (users ``demo`` and ``teammate``, their team, the four demo
  accounts, all pointing at a simulator the caller runs) and a superuser for the admin pages; short
  feed intervals so staleness, recovery and a sign-out show within seconds;
- :func:`simulator_accounts` — the demo accounts' key pairs with small books, for that simulator;
- :func:`sign_in` through the real form.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.daphne import Daphne
from bench.harness.env import server_env
from bench.harness.site import prepare_demo
from orders.simulator import SimAccount, Simulator

PASSWORD = "e2e-Passw0rd-not-secret"  # noqa: S105  (the demo users' password in a throwaway database)
SUPERUSER = "e2e_root"
# Generous limits for conditions: two cores, shared with other test runs. The things under test are fast.
PATIENCE_MS = 20_000
DESK = (1440, 900)  # a desk screen
PHONE = (390, 844)  # a phone held upright
STARTUP_SECONDS = 120.0


@dataclass(frozen=True)
class BookSize:
    orders: int
    twaps: int


# Small books keep the run fast; "Desk main" is the one most tests look at.
BOOK_SIZES = {
    "Demo personal": BookSize(orders=40, twaps=2),
    "Desk main": BookSize(orders=180, twaps=4),
    "Desk hedges": BookSize(orders=25, twaps=1),
    "Teammate personal": BookSize(orders=10, twaps=1),
}


def simulator_accounts() -> list[SimAccount]:
    """The demo accounts' key pairs with small books (the demo itself uses thousands of orders)."""
    from orders.management.demo_world import DEMO_ACCOUNTS

    return [
        SimAccount(
            public_key=a.public_key,
            secret=a.secret,
            user_id=a.user_id,
            orders=BOOK_SIZES[a.label].orders,
            twaps=BOOK_SIZES[a.label].twaps,
        )
        for a in DEMO_ACCOUNTS
    ]


def public_keys() -> dict[str, str]:
    """Account label → the public key the simulator knows it by."""
    from orders.management.demo_world import DEMO_ACCOUNTS

    return {a.label: a.public_key for a in DEMO_ACCOUNTS}


# --- the site --------------------------------------------------------------------------------------


@dataclass
class Site:
    """The running qfexdash: its server, the accounts' ids by label and the simulator keys behind them."""

    daphne: Daphne
    accounts: dict[str, int]
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return self.daphne.origin

    def page_url(self, path: str) -> str:
        return self.daphne.url(path)

    def live_path(self, label: str) -> str:
        return f"/accounts/{self.accounts[label]}/"

    def log_tail(self, lines: int = 40) -> str:
        return self.daphne.log_tail(lines)


def site_env(folder: Path) -> dict[str, str]:
    """Settings for the server under test, all through its environment as in production."""
    return server_env(
        folder,
        # Short intervals so staleness, recovery and a sign-out show within seconds.
        QFEXDASH_RECONCILE_SECONDS="1",
        QFEXDASH_BACKOFF_BASE_SECONDS="0.2",
        QFEXDASH_BACKOFF_CAP_SECONDS="1",
        QFEX_TIMEOUT_SECONDS="2",
        QFEXDASH_ACCESS_RECHECK_SECONDS="0.5",
    )


@contextmanager
def demo_site(folder: Path, sim: Simulator) -> Iterator[Site]:
    """The demo's world in a new database in ``folder``, served by Daphne until the block ends."""
    env = site_env(folder)
    accounts = prepare_demo(env, simulator_url=sim.url, password=PASSWORD, superuser=SUPERUSER)
    with Daphne(env, folder / "daphne.log", patience=STARTUP_SECONDS) as daphne:
        daphne.start()
        yield Site(daphne, accounts, public_keys())


# --- the browser -----------------------------------------------------------------------------------


def sign_in(page: Any, site: Site, username: str = "demo", password: str = PASSWORD) -> None:
    """Sign in through the real form (the login page, its CSRF token, the session cookie)."""
    page.goto(site.page_url("/signin/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/signin/" not in page.url, f"signing in as {username} failed"
