"""Demo data: users, a team, and exchange accounts pointing at the built-in simulator.

Kept apart from the ``demo`` command so tests can build the same world without starting servers.
The secrets below are the simulator's own made-up keys; they open nothing on the real QFEX.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from orders.accounts import exchange_accounts, teams
from orders.accounts.people import User
from orders.models import ExchangeAccount, Membership, Team
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


def _user(username: str, password: str, **extra: object) -> User:
    user, _ = get_user_model().objects.get_or_create(username=username, defaults=extra)
    user.set_password(password)
    user.is_active = True
    user.save()
    return user


@transaction.atomic
def build_demo_world(*, simulator_url: str, password: str) -> dict[str, User]:
    """Create (or refresh) the demo users, team and accounts; idempotent across runs."""
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
