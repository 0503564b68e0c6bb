"""The browser protocol fuzzed over real sockets against Daphne in a subprocess (S15, end to end).

Over a real server the WebSocket layer has its own rules the in-process tests cannot see: invalid
UTF-8 and frames over Daphne's 1 MiB never reach the app, and close codes go through autobahn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from orders.live import protocol as lp
from orders.simulator import Simulator
from tests.security.daphne_site import ACCOUNTS, Site, daphne_site, fuzz_site, server_log_problems, sim_accounts

SEED = 7


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(accounts=sim_accounts(), seed=SEED) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, sim: Simulator) -> Iterator[Site]:
    with daphne_site(tmp_path_factory.mktemp("daphne"), sim, rate=1_000_000) as running:
        yield running


def test_fuzzing_a_real_daphne(site: Site, sim: Simulator) -> None:
    report = asyncio.run(fuzz_site(site, sim, frames=400, seed=SEED, rate=1_000_000, check_every=100, oversize=True))
    print(report.summary())
    assert report.ok, report.summary()
    assert report.answers["close 1006"] + report.answers["close 1007"] > 0  # invalid UTF-8 was sent and refused
    log = site.log.read_text()
    assert server_log_problems(log) == []
    assert not [label for label, (_, secret) in ACCOUNTS.items() if secret in log]  # S12 for the server's own log


def test_an_oversized_frame_over_daphne_gets_the_documented_close(site: Site) -> None:
    async def send_oversized() -> tuple[dict, int | None]:
        async with connect(
            f"{site.base_url}/ws/accounts/{site.user_a.accounts[0]}/",
            origin=site.origin,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"sessionid={site.user_a.session}"},
        ) as ws:
            await ws.recv()  # the snapshot
            await ws.send('{"type": "refresh", "pad": "' + "x" * 5000 + '"}')
            error = None
            try:
                while True:
                    message = await asyncio.wait_for(ws.recv(), 15)
                    if '"error"' in message:
                        error = message
            except ConnectionClosed as closed:
                return {"error": error}, closed.rcvd.code if closed.rcvd else None

    before = server_log_problems(site.log.read_text())
    answer, code = asyncio.run(send_oversized())
    assert answer["error"] is not None
    assert code == lp.CLOSE_TOO_LARGE
    assert server_log_problems(site.log.read_text()) == before
