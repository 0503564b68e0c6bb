"""The fuzzer's checks are real: against deliberately broken consumers it reports each broken promise."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from channels.routing import URLRouter
from channels.sessions import SessionMiddlewareStack
from django.urls import path

from orders.live import protocol as lp
from orders.live.consumers import AccountStreamConsumer
from orders.live.routing import ExactOriginMiddleware, SessionUserMiddleware
from orders.models import ExchangeAccount
from orders.simulator import Simulator
from tests.live.consumers.conftest import session_cookie
from tests.personas import point_at
from tests.security.fuzz_browser import Target, run_fuzz
from tests.security.fuzz_transport import communicator_connector

pytestmark = pytest.mark.django_db(transaction=True)


class _LeaksAnotherAccount(AccountStreamConsumer):
    """Sends a status of an account the user may not see after every snapshot."""

    foreign = 0

    async def _send_snapshot(self, account: int, *, only_if_newer: bool = False) -> None:
        await super()._send_snapshot(account, only_if_newer=only_if_newer)
        status = lp.status_message(self.foreign, 1, lp.Status(lp.LIVE))
        await self.send(text_data=lp.encode(status))


class _EchoesAnotherLabel(AccountStreamConsumer):
    """Names another account's label in its error messages."""

    label = ""

    async def _error(self, code: str, message: str, account: int | None = None) -> None:
        await super()._error(code, f"{message} (unlike {self.label})", account)


class _RepeatsTheSnapshotSeqInADiff(AccountStreamConsumer):
    """Follows each snapshot with a diff at the snapshot's own seq (the page would apply it twice)."""

    async def _send_snapshot(self, account: int, *, only_if_newer: bool = False) -> None:
        await super()._send_snapshot(account, only_if_newer=only_if_newer)
        await self.send(text_data=lp.encode(lp.diff_message(account, self.sent[account], None)))


class _IgnoresBinaryFrames(AccountStreamConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await super().receive(text_data=text_data)


class _CrashesOnUnknownTypes(AccountStreamConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data and text_data.startswith("{") and '"type"' in text_data:
            try:
                kind = orjson.loads(text_data).get("type")
            except (orjson.JSONDecodeError, AttributeError):
                kind = None
            if isinstance(kind, str) and kind not in lp.CLIENT_TYPES:
                raise RuntimeError("boom")
        await super().receive(text_data=text_data, bytes_data=bytes_data)


class _WrongErrorCode(AccountStreamConsumer):
    async def _error(self, code: str, message: str, account: int | None = None) -> None:
        await super()._error(lp.BAD_MESSAGE, message, account)


def _app(consumer: type[AccountStreamConsumer]) -> Any:
    routes = [
        path("ws/accounts/all/", consumer.as_asgi()),
        path("ws/accounts/<int:account_id>/", consumer.as_asgi()),
    ]
    return ExactOriginMiddleware(SessionMiddlewareStack(SessionUserMiddleware(URLRouter(routes))))


@pytest.fixture
def watched(owner: Any, owner_account: ExchangeAccount, sim: Simulator) -> tuple[ExchangeAccount, str]:
    """The owner's account served by the simulator, and the owner's session key."""
    return point_at(owner_account, sim.url), session_cookie(owner)


@pytest.mark.parametrize(
    ("consumer", "symptom"),
    [
        (_LeaksAnotherAccount, "which this socket must not show"),
        (_EchoesAnotherLabel, "data of an account this user may not see"),
        (_RepeatsTheSnapshotSeqInADiff, "at or below the snapshot's seq"),
        (_IgnoresBinaryFrames, "no error within"),
        (_CrashesOnUnknownTypes, "the server failed: RuntimeError: boom"),
        (_WrongErrorCode, "expected 'unknown_type'"),
    ],
)
async def test_a_broken_server_is_reported(
    consumer: type[AccountStreamConsumer],
    symptom: str,
    watched: tuple[ExchangeAccount, str],
    other_team_account: ExchangeAccount,
    settings: Any,
) -> None:
    settings.QFEXDASH_WS_RATE = 1_000_000
    mine, session_key = watched
    _LeaksAnotherAccount.foreign = other_team_account.pk
    _EchoesAnotherLabel.label = other_team_account.label
    target = Target(
        connect=communicator_connector(_app(consumer), session_key),
        paths={f"/ws/accounts/{mine.pk}/": mine.pk, "/ws/accounts/all/": None},
        visible=frozenset({mine.pk}),
        foreign=[other_team_account.pk],
        forbidden=lambda: [other_team_account.label],
    )
    # A short patience: a frame the server ignores is noticed after half a second.
    report = await run_fuzz(target, frames=100, seed=5, patience=0.5)
    assert not report.ok
    assert any(symptom in failure for failure in report.failures), report.summary()
