"""The browser protocol fuzzed against the real ASGI app in process (issue 5/5 item 2; S15).

The fuzzed user (``owner``) sees two accounts: their own and Desk A's. The bystander (``outsider``)
watches Desk B's account, whose label, keys, order ids and TWAP ids must never reach the fuzzed user.
See :mod:`tests.security.fuzz_browser` for what is sent and checked; ``--frames``/seed for longer runs are
in ``docs/reliability.md``.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from orders.accounts import teams
from orders.live.protocol import CLOSE_POLICY, CLOSE_TOO_LARGE
from orders.models import ExchangeAccount, Membership
from orders.simulator import Simulator
from tests.live.consumers.conftest import session_cookie
from tests.personas import KEYS, point_at
from tests.security.fuzz_browser import Bystander, FuzzReport, Target, run_fuzz
from tests.security.fuzz_transport import communicator_connector

pytestmark = pytest.mark.django_db(transaction=True)

# Longer runs by hand: QFEXDASH_FUZZ_FRAMES=20000 QFEXDASH_FUZZ_SEED=… pytest tests/security/test_fuzz_browser.py -s
SEED = int(os.environ.get("QFEXDASH_FUZZ_SEED", "20251125"))
FRAMES = int(os.environ.get("QFEXDASH_FUZZ_FRAMES", "2000"))


@pytest.fixture
def world(
    owner: Any,
    owner_account: ExchangeAccount,
    team: Any,
    team_account: ExchangeAccount,
    outsider: Any,
    other_team_account: ExchangeAccount,
    sim: Simulator,
) -> SimpleNamespace:
    teams.membership_add(actor=None, team=team, user=owner, role=Membership.Role.VIEWER)
    accounts = [point_at(account, sim.url) for account in (owner_account, team_account, other_team_account)]
    return SimpleNamespace(
        user=owner,
        mine=accounts[:2],
        other=accounts[2],
        bystander=outsider,
        user_key=session_cookie(owner),
        bystander_key=session_cookie(outsider),
    )


def _target(application: Any, world: SimpleNamespace, sim: Simulator) -> Target:
    other = world.other

    def forbidden() -> list[str]:
        return [
            other.label,
            other.public_key,
            KEYS[other.label][1],
            *(order["order_id"] for order in sim.open_orders(other.public_key)),
            *(twap["twap_id"] for twap in sim.active_twaps(other.public_key)),
        ]

    keys = {account.pk: account.public_key for account in world.mine}

    async def truth(account: int) -> tuple[set[str], set[str]]:
        orders = {order["order_id"] for order in sim.open_orders(keys[account])}
        return orders, {twap["twap_id"] for twap in sim.active_twaps(keys[account])}

    paths: dict[str, int | None] = {f"/ws/accounts/{account.pk}/": account.pk for account in world.mine}
    paths["/ws/accounts/all/"] = None
    return Target(
        connect=communicator_connector(application, world.user_key),
        paths=paths,
        visible=frozenset(keys),
        foreign=[other.pk],
        forbidden=forbidden,
        truth=truth,
    )


def _bystander(application: Any, world: SimpleNamespace, sim: Simulator) -> Bystander:
    other = world.other

    async def change() -> str:
        return (await sync_to_async(sim.add_orders)(other.public_key, 1))[0]["order_id"]

    connect = communicator_connector(application, world.bystander_key)
    return Bystander(connect, f"/ws/accounts/{other.pk}/", other.pk, change, forbidden=[world.mine[0].label])


def _no_server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


async def test_fuzzing_the_browser_protocol(
    application: Any, world: SimpleNamespace, sim: Simulator, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Far above what one socket sends here, so every frame reaches the parser (the limiter is fuzzed below).
    settings.QFEXDASH_WS_RATE = 1_000_000
    report: FuzzReport = await run_fuzz(
        _target(application, world, sim),
        frames=FRAMES,
        seed=SEED,
        bystander=_bystander(application, world, sim),
        check_every=250,
    )
    print(report.summary())  # shown with -s; the figures in docs/reliability.md come from here
    assert report.ok, report.summary()
    assert report.frames >= FRAMES
    # The run really covered the answers the protocol documents.
    for answer in (
        "error bad_message",
        "error unknown_type",
        "error too_large",
        f"close {CLOSE_TOO_LARGE}",
        "snapshot",
    ):
        assert report.answers[answer] > 0, answer
    assert report.modes["in bursts"] > 0
    assert report.bystander_checks >= FRAMES // 250
    assert sim.forbidden_received == []  # nothing a browser sent turned into a trading message upstream
    assert _no_server_errors(caplog) == []


async def test_fuzzing_within_and_past_the_rate_limit(
    application: Any, world: SimpleNamespace, sim: Simulator, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.QFEXDASH_WS_RATE = 20  # the production default
    report = await run_fuzz(
        _target(application, world, sim),
        frames=400,
        seed=SEED + 1,
        bystander=_bystander(application, world, sim),
        rate_limit=20,
        check_every=100,
    )
    print(report.summary())
    assert report.ok, report.summary()
    assert report.answers[f"close {CLOSE_POLICY}"] > 0
    assert report.answers["error rate_limited"] > 0
    assert _no_server_errors(caplog) == []
