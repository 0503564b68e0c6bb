"""A real site to fuzz: the simulator, a fresh SQLite database with two users, and Daphne in a subprocess.

User A (``fuzz_alice``) owns two accounts; user B (``fuzz_bob``) owns one. Daphne serves a listening
socket this process owns (``--fd``) on 127.0.0.1, logs to a file, and is stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.site import base_env, loopback_listener, migrate, run_setup, sqlite_url, start_daphne, stop_daphne
from orders.simulator import SimAccount, Simulator
from tests.early_env import TEST_ENCRYPTION_KEY
from tests.security.fuzz_browser import Bystander, FuzzReport, Target, run_fuzz
from tests.security.fuzz_transport import websocket_connector

ACCOUNTS = {
    "Fuzz A one": ("qfex_pub_fuzz_a_one", "qfex_secret_fuzz_a_one_5d1c7e0b9a"),
    "Fuzz A two": ("qfex_pub_fuzz_a_two", "qfex_secret_fuzz_a_two_8e2f4a6c1d"),
    "Fuzz B": ("qfex_pub_fuzz_b", "qfex_secret_fuzz_b_3b9d0f7a2e"),
}

SETUP_SCRIPT = """
import json, os
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from orders.accounts import exchange_accounts
spec = json.loads(os.environ["FUZZ_SPEC"])
result = {}
for username, labels in (("fuzz_alice", ["Fuzz A one", "Fuzz A two"]), ("fuzz_bob", ["Fuzz B"])):
    user = get_user_model().objects.create_user(username, password="not-used-Passw0rd-fuzz")
    ids = []
    for label in labels:
        public_key, secret = spec["accounts"][label]
        account = exchange_accounts.account_create(
            actor=user, label=label, public_key=public_key, secret=secret, owner_user=user,
            endpoint="custom", custom_url=spec["sim_url"],
        )
        ids.append(account.pk)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    result[username] = {"accounts": ids, "session": session.session_key}
print("SETUP " + json.dumps(result))
"""


@dataclass
class Site:
    port: int
    user_a: dict[str, object]
    user_b: dict[str, object]
    log: Path

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def sim_accounts(orders: int = 40, twaps: int = 3) -> list[SimAccount]:
    return [SimAccount(public_key=pk, secret=sk, orders=orders, twaps=twaps) for pk, sk in ACCOUNTS.values()]


@contextmanager
def daphne_site(workdir: Path, sim: Simulator, *, rate: int) -> Iterator[Site]:
    """Migrate, create the users, start Daphne; stop it on exit. ``rate``: its ``QFEXDASH_WS_RATE``."""
    env = base_env(
        os.environ,
        database_url=sqlite_url(workdir),
        state_dir=workdir / "state",
        encryption_keys=TEST_ENCRYPTION_KEY,
        secret_key="fuzz-site-secret-key-0123456789-abcdefghijklmnopqrstuv",
        log_level="INFO",
        QFEXDASH_RECONCILE_SECONDS="1",
        QFEXDASH_REFRESH_COALESCE_SECONDS="0.2",
        QFEXDASH_ACCESS_RECHECK_SECONDS="1",
        QFEX_TIMEOUT_SECONDS="3",
        QFEXDASH_WS_RATE=str(rate),
        FUZZ_SPEC=json.dumps({"accounts": ACCOUNTS, "sim_url": sim.url}),
    )
    migrate(env, timeout=300)
    users = run_setup(env, SETUP_SCRIPT, timeout=120)
    log = workdir / "daphne.log"
    with loopback_listener(256) as listener:
        process = start_daphne(env, listener, log)
        try:
            yield Site(listener.getsockname()[1], users["fuzz_alice"], users["fuzz_bob"], log)
        finally:
            stop_daphne(process, 30)


def server_log_problems(text: str) -> list[str]:
    """The server log's error lines (unhandled exceptions included), each once with how often it came."""
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if " ERROR " in line or " CRITICAL " in line:
            message = line.split(" ", 2)[-1]  # without the timestamp
            counts[message] = counts.get(message, 0) + 1
    return [f"{count} × {message}" for message, count in counts.items()]


def fuzz_against_daphne(
    *, frames: int, seed: int, rate: int, check_every: int = 500, oversize: bool = True, workdir: Path | None = None
) -> tuple[FuzzReport, list[str]]:
    """Fuzz user A's sockets on a fresh site while user B's socket is watched; the report and the
    server log's error lines."""
    with tempfile.TemporaryDirectory(prefix="qfexdash-fuzz-") as temporary:
        folder = workdir or Path(temporary)
        with Simulator(accounts=sim_accounts(), seed=seed) as sim, daphne_site(folder, sim, rate=rate) as site:
            report = asyncio.run(
                fuzz_site(site, sim, frames=frames, seed=seed, rate=rate, check_every=check_every, oversize=oversize)
            )
        return report, server_log_problems(site.log.read_text())


async def fuzz_site(
    site: Site, sim: Simulator, *, frames: int, seed: int, rate: int, check_every: int, oversize: bool = True
) -> FuzzReport:
    """Fuzz user A's sockets on ``site`` while user B's socket is watched."""
    mine = [int(pk) for pk in site.user_a["accounts"]]  # type: ignore[attr-defined]
    other = int(site.user_b["accounts"][0])  # type: ignore[index]
    keys = dict(zip(mine, [ACCOUNTS["Fuzz A one"][0], ACCOUNTS["Fuzz A two"][0]], strict=True))
    other_key = ACCOUNTS["Fuzz B"][0]

    def forbidden() -> list[str]:
        orders = [order["order_id"] for order in sim.open_orders(other_key)]
        twaps = [twap["twap_id"] for twap in sim.active_twaps(other_key)]
        return ["Fuzz B", other_key, ACCOUNTS["Fuzz B"][1], *orders, *twaps]

    async def truth(account: int) -> tuple[set[str], set[str]]:
        orders = {order["order_id"] for order in sim.open_orders(keys[account])}
        return orders, {twap["twap_id"] for twap in sim.active_twaps(keys[account])}

    async def change() -> str:
        return (await asyncio.to_thread(sim.add_orders, other_key, 1))[0]["order_id"]

    paths: dict[str, int | None] = {f"/ws/accounts/{pk}/": pk for pk in mine}
    paths["/ws/accounts/all/"] = None
    target = Target(
        connect=websocket_connector(site.base_url, str(site.user_a["session"]), origin=site.origin),
        paths=paths,
        visible=frozenset(mine),
        foreign=[other],
        forbidden=forbidden,
        truth=truth,
    )
    bystander = Bystander(
        websocket_connector(site.base_url, str(site.user_b["session"]), origin=site.origin),
        f"/ws/accounts/{other}/",
        other,
        change,
        forbidden=["Fuzz A one", "Fuzz A two"],
    )
    limit = rate if rate < frames else None
    return await run_fuzz(
        target,
        frames=frames,
        seed=seed,
        bystander=bystander,
        rate_limit=limit,
        check_every=check_every,
        oversize=oversize,
    )
