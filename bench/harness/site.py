"""A site's database prepared for a server under test, by ``manage.py`` subprocesses.

Each step runs with the environment the server gets (:func:`bench.harness.env.server_env`), so the calling
process shares no database connection or setting with the site:

- :func:`prepare` — ``migrate``, then the people, teams and exchange accounts a :class:`SiteSpec` describes
  (accounts point at a simulator), with a signed-in session for each person who needs one;
- :func:`prepare_demo` — ``migrate``, then the ``demo`` command's world;
- :func:`team_site` — the layout the soak and the load run use: a team owning the accounts, an admin, and
  viewers who are members;
- :func:`reenter_keys` — an admin re-enters accounts' keys (soak F6).

The work inside the site's process is :mod:`bench.harness.populate`'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import ROOT
from bench.harness.env import server_env
from orders.simulator import SimAccount

STEP_SECONDS = 300.0  # longest one manage.py step may take (two cores, shared with other runs)
PREFIX = "HARNESS "  # how populate's answer line starts


# --- manage.py --------------------------------------------------------------------------------------


def manage(env: Mapping[str, str], *args: str, timeout: float = STEP_SECONDS) -> str:
    """Run ``manage.py *args`` with ``env``; its standard output. A failure raises with the end of its stderr."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=dict(env),
        cwd=ROOT,
        check=False,
        timeout=timeout,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        # stderr may hold a traceback; it never holds a secret (they travel only in the environment).
        raise RuntimeError(f"manage.py {args[0]} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result.stdout


def migrate(env: Mapping[str, str]) -> None:
    """Create or bring up to date the database of ``env``."""
    manage(env, "migrate", "--noinput", "-v", "0")


def populate(env: Mapping[str, str], action: str, payload: Mapping[str, Any]) -> Any:
    """Run :mod:`bench.harness.populate`'s ``action`` on ``payload`` inside ``manage.py shell``; its answer."""
    script = f"from bench.harness.populate import main; main({action!r})"
    out = manage({**env, "HARNESS_INPUT": json.dumps(payload)}, "shell", "-c", script)
    line = next((line for line in out.splitlines() if line.startswith(PREFIX)), None)
    if line is None:
        raise RuntimeError(f"manage.py shell printed no answer for {action!r}:\n{out[-2000:]}")
    return json.loads(line.removeprefix(PREFIX))


# --- what a site holds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """An exchange account as a person enters it: its label and the simulator's key pair."""

    label: str
    public_key: str
    secret: str = field(repr=False)

    @classmethod
    def of(cls, label: str, sim_account: SimAccount) -> Account:
        return cls(label, sim_account.public_key, sim_account.secret)


@dataclass(frozen=True)
class Person:
    """A user (no usable password: they are signed in by a session made for them); the accounts they own."""

    username: str
    accounts: tuple[Account, ...] = ()
    superuser: bool = False
    signed_in: bool = True


@dataclass(frozen=True)
class Team:
    """A team created by ``admin`` (a person of the spec), owning ``accounts``; ``viewers`` are members."""

    name: str
    admin: str
    accounts: tuple[Account, ...] = ()
    viewers: tuple[str, ...] = ()


@dataclass(frozen=True)
class SiteSpec:
    simulator_url: str
    people: tuple[Person, ...]
    teams: tuple[Team, ...] = ()


@dataclass(frozen=True)
class Prepared:
    accounts: dict[str, int]  # label → account id
    sessions: dict[str, str]  # username → session key (the ``sessionid`` cookie)


def prepare(env: Mapping[str, str], spec: SiteSpec) -> Prepared:
    """Migrate the database of ``env`` and fill it as ``spec`` says."""
    migrate(env)
    answer = populate(env, "build", asdict(spec))
    return Prepared(accounts=answer["accounts"], sessions=answer["sessions"])


def prepare_demo(env: Mapping[str, str], *, simulator_url: str, password: str, superuser: str) -> dict[str, int]:
    """Migrate the database of ``env`` and build the demo's world; the accounts' ids by label."""
    migrate(env)
    answer = populate(env, "demo", {"simulator_url": simulator_url, "password": password, "superuser": superuser})
    return dict(answer["accounts"])


# --- the team layout of the soak and the load run -----------------------------------------------------

TEAM_ADMIN = "bench_admin"


@dataclass(frozen=True)
class SiteAccount:
    pk: int
    label: str
    public_key: str


@dataclass
class TeamSite:
    """A prepared database plus the environment every process of the site runs with."""

    folder: Path
    env: dict[str, str]
    accounts: list[SiteAccount]
    sessions: list[str]  # one per viewer
    secrets: dict[str, str] = field(repr=False)  # public key → simulator-only secret


def team_site(
    folder: Path,
    simulator_url: str,
    accounts: Sequence[SimAccount],
    *,
    viewers: int = 1,
    settings: Mapping[str, str] | None = None,
) -> TeamSite:
    """A new SQLite database in ``folder`` with a team owning ``accounts`` ("Bench 1", "Bench 2", …) and
    ``viewers`` members, each signed in; ``settings`` go into the server's environment."""
    folder.mkdir(parents=True, exist_ok=True)
    env = server_env(folder, **(settings or {}))
    entered = tuple(Account.of(f"Bench {n}", a) for n, a in enumerate(accounts, 1))
    names = tuple(f"bench_viewer_{n}" for n in range(1, viewers + 1))
    spec = SiteSpec(
        simulator_url,
        people=(Person(TEAM_ADMIN, superuser=True, signed_in=False), *(Person(name) for name in names)),
        teams=(Team("Bench team", TEAM_ADMIN, entered, names),),
    )
    prepared = prepare(env, spec)
    return TeamSite(
        folder=folder,
        env=env,
        accounts=[SiteAccount(prepared.accounts[a.label], a.label, a.public_key) for a in entered],
        sessions=[prepared.sessions[name] for name in names],
        secrets={a.public_key: a.secret for a in accounts},
    )


def reenter_keys(site: TeamSite, accounts: Sequence[SiteAccount]) -> None:
    """Have the team's admin re-enter each account's key (the same secret, newly encrypted)."""
    secrets = {str(a.pk): site.secrets[a.public_key] for a in accounts}
    populate(site.env, "reenter_keys", {"admin": TEAM_ADMIN, "secrets": secrets})
