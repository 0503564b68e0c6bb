"""Prepare the demo site's own database (end-to-end tests, screenshots): run in a subprocess, in the
environment Daphne will get.

``python -m bench.world`` migrates the SQLite file named by ``DATABASE_URL``, builds the demo world
(users ``demo`` and ``teammate``, the team, the four demo accounts, all pointing at ``E2E_SIM_URL``) with
the code the ``demo`` command uses, adds a superuser for the admin pages, and prints one line
``WORLD {"label": account id, ...}`` for the process that started it, which never shares a database
with the server.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import django

from orders.simulator import SimAccount

SUPERUSER = "e2e_root"


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


def main() -> None:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from orders.management.demo_world import build_demo_world
    from orders.models import ExchangeAccount

    call_command("migrate", interactive=False, verbosity=0)
    password = os.environ["E2E_PASSWORD"]
    build_demo_world(simulator_url=os.environ["E2E_SIM_URL"], password=password)
    get_user_model().objects.create_superuser(SUPERUSER, email="root@example.test", password=password)
    accounts = {a.label: a.pk for a in ExchangeAccount.objects.all()}
    print("WORLD " + json.dumps(accounts), flush=True)


if __name__ == "__main__":
    main()
