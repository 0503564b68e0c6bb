"""Demo data: users, a team, and exchange accounts pointing at the built-in simulator.

Kept apart from the ``demo`` command so tests can build the same world without starting servers.
The secrets below are the simulator's own made-up keys; they open nothing on the real QFEX.

The demo creates a staff user with a password it prints, so it runs only where that cannot hurt (S36):
with DEBUG on, on a database that is empty or carries the :class:`~orders.models.DemoMarker` it wrote when
it filled it (:func:`demo_refusal` says why not, in words). It never changes a user that exists: a second run
leaves the people as they are (passwords, deactivations) and only points the demo's accounts at the new
simulator.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from orders.accounts import exchange_accounts, teams
from orders.accounts.people import User
from orders.models import DemoMarker, ExchangeAccount, Membership, Team
from orders.simulator import SimAccount

DEMO_USERNAME = "demo"
TEAMMATE_USERNAME = "teammate"
DEMO_TEAM = "Demo desk"


@dataclass(frozen=True)
class DemoAccount:
    label: str
    owner: str  # "demo", "teammate" or "team"
    public_key: str
    secret: str
    user_id: str
    orders: int
    twaps: int


# Fixed ids keep the demo's simulator books identical from run to run for the same seed.
DEMO_ACCOUNTS = (
    DemoAccount(
        "Demo personal",
        "demo",
        "qfex_pub_demo_personal",
        "qfex_secret_demo_personal_sim_only",
        str(uuid.UUID(int=1, version=4)),
        orders=120,
        twaps=2,
    ),
    DemoAccount(
        "Desk main",
        "team",
        "qfex_pub_demo_desk_main",
        "qfex_secret_demo_desk_main_sim_only",
        str(uuid.UUID(int=2, version=4)),
        orders=4000,
        twaps=6,
    ),
    DemoAccount(
        "Desk hedges",
        "team",
        "qfex_pub_demo_desk_hedges",
        "qfex_secret_demo_desk_hedges_sim_only",
        str(uuid.UUID(int=3, version=4)),
        orders=60,
        twaps=3,
    ),
    DemoAccount(
        "Teammate personal",
        "teammate",
        "qfex_pub_demo_teammate",
        "qfex_secret_demo_teammate_sim_only",
        str(uuid.UUID(int=4, version=4)),
        orders=40,
        twaps=1,
    ),
)


def simulator_accounts() -> list[SimAccount]:
    return [
        SimAccount(public_key=a.public_key, secret=a.secret, user_id=a.user_id, orders=a.orders, twaps=a.twaps)
        for a in DEMO_ACCOUNTS
    ]


NOT_DEBUG = (
    "manage.py demo runs only with DEBUG on: it creates a staff user with a password it prints. "
    "Set DEBUG=true for a local demo (make demo does), never on a real site."
)
NOT_EMPTY = (
    "This database already has users or accounts, and manage.py demo did not create it: the demo only fills "
    "an empty database or one it made. Leave DATABASE_URL unset (a local SQLite file) or point it at a new, "
    "empty database."
)


def _tables() -> set[str]:
    return set(connection.introspection.table_names())


def demo_refusal() -> str | None:
    """Why the demo must not run here, in words; None when it may (DEBUG on, and an empty or demo database)."""
    if not settings.DEBUG:
        return NOT_DEBUG
    tables = _tables()
    if DemoMarker._meta.db_table in tables and DemoMarker.objects.exists():
        return None
    models = (get_user_model(), Team, ExchangeAccount)
    if any(model._meta.db_table in tables and model.objects.exists() for model in models):
        return NOT_EMPTY
    return None


def demo_users_exist() -> bool:
    return get_user_model().objects.filter(username__in=(DEMO_USERNAME, TEAMMATE_USERNAME)).exists()


def _user(username: str, password: str, **extra: Any) -> User:
    """The demo's user: created with ``password`` if missing; an existing one is left exactly as it is."""
    users = get_user_model().objects
    user = users.filter(username=username).first()
    if user is None:
        user = users.create_user(username=username, password=password, **extra)
    return user


@transaction.atomic
def build_demo_world(*, simulator_url: str, password: str) -> dict[str, User]:
    """Create the demo users, team and accounts, or point the accounts at a new simulator; idempotent."""
    if not DemoMarker.objects.exists():
        DemoMarker.objects.create()
    demo = _user(DEMO_USERNAME, password, first_name="Demo", is_staff=True)
    teammate = _user(TEAMMATE_USERNAME, password, first_name="Teammate")
    team = Team.objects.filter(name=DEMO_TEAM).first() or teams.team_create(actor=None, name=DEMO_TEAM)
    for user, role in ((demo, Membership.Role.ADMIN), (teammate, Membership.Role.VIEWER)):
        # _user's users are get_user_model()'s, the model a membership points to.
        membership = Membership.objects.filter(team=team, user=user).first()  # type: ignore[misc]
        if membership is None:
            teams.membership_add(actor=None, team=team, user=user, role=role)
    owners: dict[str, dict[str, Any]] = {
        "demo": {"owner_user": demo},
        "teammate": {"owner_user": teammate},
        "team": {"owner_team": team},
    }
    for spec in DEMO_ACCOUNTS:
        owner = owners[spec.owner]
        account = ExchangeAccount.objects.filter(label=spec.label, **owner).first()
        if account is None:
            exchange_accounts.account_create(
                actor=None,
                label=spec.label,
                public_key=spec.public_key,
                secret=spec.secret,
                endpoint=ExchangeAccount.Endpoint.CUSTOM,
                custom_url=simulator_url,
                **owner,
            )
        else:
            # The simulator may listen on another port this time: a new destination, so the secret is given
            # again (S21) and stored bound to it.
            exchange_accounts.account_update(
                actor=None,
                account=account,
                custom_url=simulator_url,
                enabled=True,
                endpoint=ExchangeAccount.Endpoint.CUSTOM,
                public_key=spec.public_key,
                secret=spec.secret,
            )
    return {"demo": demo, "teammate": teammate}
