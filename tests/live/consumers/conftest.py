"""Fixtures for consumer tests: the real ASGI app, a simulator, logged-in sockets and a fresh feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from orders.live.feed import shutdown_feed
from orders.live.rows import order_rows, twap_rows, without_placement
from orders.models import ExchangeAccount
from orders.qfex.records import parse_order, parse_twap
from orders.simulator import SimAccount, Simulator
from tests.personas import *  # noqa: F403  (the persona fixtures)
from tests.personas import KEYS, point_at

HOST = "testserver"
ORIGIN = f"http://{HOST}"
PATIENCE = 15.0


@pytest.fixture(autouse=True)
def fast_live_settings(settings: Any, persona_encryption_key: str) -> None:
    """Quick feed and re-check timings, and a fresh in-memory channel layer, for every test."""
    settings.QFEXDASH_RECONCILE_SECONDS = 1.0
    settings.QFEX_TIMEOUT_SECONDS = 2.0
    settings.QFEXDASH_BACKOFF_BASE_SECONDS = 0.05
    settings.QFEXDASH_BACKOFF_CAP_SECONDS = 0.3
    settings.QFEXDASH_REFRESH_COALESCE_SECONDS = 0.2
    settings.QFEXDASH_ACCESS_RECHECK_SECONDS = 0.3
    settings.QFEXDASH_FEED_THREADS = 4
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "qfexdash.channel_layers.SweepingInMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
async def fresh_feed() -> AsyncIterator[None]:
    yield
    await shutdown_feed()


@pytest.fixture
def application(fast_live_settings: None) -> Any:
    # Imported here, once the test key is in the settings: importing it validates the keys.
    from qfexdash.asgi import application

    return application


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    accounts = [SimAccount(public_key=pk, secret=sk, orders=30, twaps=2) for pk, sk in KEYS.values()]
    with Simulator(accounts=accounts, seed=5) as simulator:
        yield simulator
        await shutdown_feed()  # before the simulator goes away, so the feed does not see it vanish


@pytest.fixture
def connected(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every consumer instance that connects during the test, in order (to look inside one)."""
    from orders.live.consumers import AccountStreamConsumer

    instances: list[Any] = []
    original = AccountStreamConsumer.connect

    async def connect(self: AccountStreamConsumer) -> None:
        instances.append(self)
        await original(self)

    monkeypatch.setattr(AccountStreamConsumer, "connect", connect)
    return instances


@pytest.fixture
def live_team_account(team_account: ExchangeAccount, sim: Simulator) -> ExchangeAccount:
    return point_at(team_account, sim.url)


def session_cookie(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def headers(session_key: str | None = None, origin: str | None = ORIGIN, host: str = HOST) -> list[tuple[bytes, bytes]]:
    result = [(b"host", host.encode())]
    if origin is not None:
        result.append((b"origin", origin.encode()))
    if session_key is not None:
        result.append((b"cookie", f"sessionid={session_key}".encode()))
    return result


class Browser:
    """A WebsocketCommunicator that decodes frames and keeps a page's view of each account."""

    def __init__(self, application: Any, path: str, session_key: str | None, **header_options: Any) -> None:
        self.communicator = WebsocketCommunicator(application, path, headers=headers(session_key, **header_options))
        self.seq: dict[int, int] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.twaps: dict[int, dict[str, Any]] = {}
        self.states: dict[int, str] = {}
        self.gaps = 0
        self.last_type = ""
        # Snapshot parts being collected: account → the first part, with every part's rows so far.
        self.pending: dict[int, dict[str, Any]] = {}
        self.snapshots = 0  # complete snapshots applied
        self.broken_parts = 0  # parts that did not follow the pending set (the page resyncs)
        self.interleaved = 0  # other messages of an account while its snapshot parts were coming
        self.parts_seen: list[tuple[int, int, int, int]] = []  # (account, seq, part, parts) as received
        self.diff_sizes: list[int] = []  # rows (upserts + removes) of each diff received

    async def connect(self) -> tuple[bool, Any]:
        return await self.communicator.connect(timeout=PATIENCE)

    async def receive(self, timeout: float = PATIENCE) -> dict[str, Any]:
        return orjson.loads(await self.communicator.receive_from(timeout=timeout))

    async def send(self, message: Any) -> None:
        await self.communicator.send_to(text_data=orjson.dumps(message).decode())

    async def close_code(self, timeout: float = PATIENCE) -> int:
        """Wait for the server to close the socket, skipping data frames; the close code."""
        async with asyncio.timeout(timeout):
            while True:
                output = await self.communicator.receive_output(timeout)
                if output["type"] == "websocket.close":
                    return output.get("code", 1000)

    async def apply(self, message: dict[str, Any]) -> None:
        """What the page does with a message, including asking for a snapshot after a seq gap."""
        account: Any = message.get("account")  # None for frames that name no account
        self.last_type = message["type"]
        if message["type"] != "snapshot" and account in self.pending:
            self.interleaved += 1
        if message["type"] == "snapshot":
            whole = await self._assemble(message)
            if whole is None:
                return
            message = whole
            self.snapshots += 1
            self.seq[account] = message["seq"]
            self.orders[account] = {row["id"]: row for row in message["orders"]}
            self.twaps[account] = {row["id"]: row for row in message["twaps"]}
            self.states[account] = message["status"]["state"]
        elif message["type"] == "diff":
            self.diff_sizes.append(
                sum(len(message[k][kind]) for k in ("upsert", "remove") for kind in ("orders", "twaps"))
            )
            if account not in self.seq:
                return
            if message["seq"] != self.seq[account] + 1:
                self.gaps += 1
                del self.seq[account]  # ignore diffs until the snapshot
                await self.send({"type": "resync", "account": account})
                return
            self.seq[account] = message["seq"]
            for kind, rows in (("orders", self.orders[account]), ("twaps", self.twaps[account])):
                for row in message["upsert"][kind]:
                    rows[row["id"]] = row
                for row_id in message["remove"][kind]:
                    rows.pop(row_id, None)
        elif message["type"] == "status":
            self.states[account] = message["state"]
            if account in self.seq and message["seq"] > self.seq[account]:
                self.gaps += 1  # a heartbeat shows a diff went missing
                del self.seq[account]
                await self.send({"type": "resync", "account": account})

    async def _assemble(self, part: dict[str, Any]) -> dict[str, Any] | None:
        """The whole snapshot once its last part is in (the page's rules), else None."""
        account = part["account"]
        self.parts_seen.append((account, part["seq"], part["part"], part["parts"]))
        if part["part"] == 1:
            self.pending[account] = {**part, "orders": list(part["orders"]), "twaps": list(part["twaps"])}
        else:
            pending = self.pending.get(account)
            expected = None if pending is None else (pending["seq"], pending["parts"], pending["part"] + 1)
            if expected != (part["seq"], part["parts"], part["part"]):
                self.broken_parts += 1
                self.pending.pop(account, None)
                await self.send({"type": "resync", "account": account})
                return None
            assert pending is not None  # a part after the first follows its pending first part
            pending["orders"] += part["orders"]
            pending["twaps"] += part["twaps"]
            pending["part"] = part["part"]
        if part["part"] < part["parts"]:
            return None
        return self.pending.pop(account)

    async def until(self, condition: Callable[[], bool], timeout: float = PATIENCE) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await self.apply(await self.receive(timeout))

    async def disconnect(self) -> None:
        await self.communicator.disconnect(timeout=PATIENCE)


def truth(sim: Simulator, account: ExchangeAccount) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rows a page should show: the simulator's books through the client's parser, as JSON."""
    orders = order_rows([parse_order(o) for o in sim.open_orders(account.public_key)], account.pk, account.label)
    twaps = twap_rows([parse_twap(t) for t in sim.active_twaps(account.public_key)], account.pk, account.label)
    return orjson.loads(orjson.dumps(orders)), orjson.loads(orjson.dumps(twaps))


def shows_truth(browser: Browser, sim: Simulator, account: ExchangeAccount) -> Callable[[], bool]:
    def condition() -> bool:
        orders, twaps = truth(sim, account)
        return (
            browser.states.get(account.pk) == "live"
            and account.pk in browser.seq
            and without_placement(browser.orders.get(account.pk) or {}) == without_placement(orders)
            and browser.twaps.get(account.pk) == twaps
        )

    return condition


async_session_cookie = sync_to_async(session_cookie)
