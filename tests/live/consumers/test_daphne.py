"""The real thing: Daphne in a subprocess, a browser-like websocket-client, the simulator (F10, S2, end to end).

Daphne runs against its own SQLite file, prepared and served by the shared harness (:mod:`bench.harness`):
``migrate`` and a user, a session and an account pointing at the simulator, in subprocesses with the
server's own environment, so no database is shared with the test process. Daphne serves a listening
socket the test owns (``--fd``): a restart keeps the address, and a browser reconnecting during the
restart simply waits in the listen queue until the new process accepts it.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websocket

from bench.harness.daphne import Daphne, DaphneExited
from bench.harness.env import server_env
from bench.harness.site import Account, Person, SiteSpec, prepare
from orders.simulator import SimAccount, Simulator

PUBLIC_KEY = "qfex_pub_daphne_test"
SECRET = "qfex_secret_daphne_test_0123456789"
LABEL = "Live over Daphne"
USERNAME = "daphne_user"
PATIENCE = 30.0


@dataclass
class Site:
    daphne: Daphne
    account: int
    session: str


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[Simulator]:
    orders = getattr(request, "param", 60)  # a test may ask for a bigger book (indirect parametrization)
    with Simulator(accounts=[SimAccount(public_key=PUBLIC_KEY, secret=SECRET, orders=orders, twaps=2)], seed=3) as s:
        yield s


@pytest.fixture
def site_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra environment for the site (indirect parametrization)."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def site(tmp_path: Path, sim: Simulator, site_settings: dict[str, str]) -> Iterator[Site]:
    env = server_env(tmp_path, QFEXDASH_RECONCILE_SECONDS="1", QFEX_TIMEOUT_SECONDS="3", **site_settings)
    prepared = prepare(env, SiteSpec(sim.url, (Person(USERNAME, (Account(LABEL, PUBLIC_KEY, SECRET),)),)))
    with Daphne(env, tmp_path / "daphne.log", backlog=128, patience=PATIENCE) as daphne:
        daphne.start()
        yield Site(daphne, prepared.accounts[LABEL], prepared.sessions[USERNAME])


def _open(site: Site, origin: str | None = None) -> websocket.WebSocket:
    return websocket.create_connection(
        site.daphne.ws_url(f"/ws/accounts/{site.account}/"),
        origin=origin or site.daphne.origin,
        cookie=f"sessionid={site.session}",
        timeout=PATIENCE,
    )


class Page:
    """What the page script does with the messages of one account."""

    def __init__(self) -> None:
        self.seq: int | None = None
        self.orders: dict[str, Any] = {}
        self.state = ""
        self.snapshots = 0
        self.pending: list[dict[str, Any]] = []  # the parts of the snapshot being collected
        self.last_parts = 0  # how many parts the last complete snapshot had

    def apply(self, message: dict[str, Any], ws: websocket.WebSocket) -> None:
        if message["type"] == "snapshot":
            first = self.pending[0] if self.pending else message
            expected = (first["seq"], len(self.pending) + 1, first["parts"])
            if (message["seq"], message["part"], message["parts"]) != expected:
                raise AssertionError(f"snapshot part out of order: {message['part']}/{message['parts']}")
            self.pending.append(message)
            if message["part"] < message["parts"]:
                return
            parts, self.pending = self.pending, []
            self.snapshots += 1
            self.last_parts = len(parts)
            self.seq = message["seq"]
            self.orders = {row["id"]: row for part in parts for row in part["orders"]}
            self.state = message["status"]["state"]
        elif self.pending:
            raise AssertionError("a message arrived between the parts of a snapshot")
        elif message["type"] == "diff" and self.seq is not None:
            if message["seq"] != self.seq + 1:
                self.seq = None
                ws.send(json.dumps({"type": "resync"}))
                return
            self.seq = message["seq"]
            for row in message["upsert"]["orders"]:
                self.orders[row["id"]] = row
            for row_id in message["remove"]["orders"]:
                self.orders.pop(row_id, None)
        elif message["type"] == "status":
            self.state = message["state"]

    def follow_until_truth(self, ws: websocket.WebSocket, sim: Simulator) -> None:
        deadline = time.monotonic() + PATIENCE
        while not (self.state == "live" and set(self.orders) == _truth(sim)):
            assert time.monotonic() < deadline, "the page never showed the exchange's orders"
            self.apply(json.loads(ws.recv()), ws)


def _read_until_closed(ws: websocket.WebSocket) -> None:
    """Read (and drop) frames until the server's side of the socket is gone."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            if not ws.recv():  # a close frame
                return
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return
    raise AssertionError("the socket stayed open after the server stopped")


def _truth(sim: Simulator) -> set[str]:
    return {order["order_id"] for order in sim.open_orders(PUBLIC_KEY)}


def test_end_to_end_snapshot_and_a_restart(site: Site, sim: Simulator) -> None:
    ws = _open(site)
    page = Page()
    first = json.loads(ws.recv())
    assert first["type"] == "snapshot"
    assert first["account"] == site.account
    page.apply(first, ws)
    page.follow_until_truth(ws, sim)
    row = next(iter(page.orders.values()))
    assert row["account_label"] == "Live over Daphne"
    assert isinstance(row["price"], str)

    # F10: the server restarts; the book changes meanwhile; the page reconnects and gets a full snapshot.
    site.daphne.stop()
    _read_until_closed(ws)
    ws.close()
    sim.step(20)
    site.daphne.start()
    ws = _open(site)
    page = Page()
    again = json.loads(ws.recv())
    assert again["type"] == "snapshot"
    assert again["seq"] > first["seq"]
    page.apply(again, ws)
    page.follow_until_truth(ws, sim)
    assert page.snapshots == 1
    ws.close()
    assert sim.forbidden_received == []


@pytest.mark.parametrize("sim", [4000], indirect=True)
def test_a_4000_order_account_reaches_the_page_in_bounded_messages(site: Site, sim: Simulator) -> None:
    """Daphne refuses to send a message over 1 MiB; a 4000-order book (~1.7 MB as one message) must
    arrive as bounded diffs and snapshot parts, and the socket must stay open."""
    ws = _open(site)
    page = Page()
    page.follow_until_truth(ws, sim)  # the join's snapshot, then the first fetch's diffs
    assert len(page.orders) == 4000
    # A snapshot of the full book, as a page joining now gets it: every part arrives, in order, and
    # together they are the book.
    joiner, joined = _open(site), Page()
    deadline = time.monotonic() + PATIENCE
    while joined.snapshots == 0:
        assert time.monotonic() < deadline, "the snapshot's parts never all arrived"
        joined.apply(json.loads(joiner.recv()), joiner)
    joiner.close()
    assert joined.last_parts >= 8
    assert set(joined.orders) == _truth(sim)
    # Still open and live: a refresh is answered (a heartbeat, or a diff if the book moved).
    ws.send(json.dumps({"type": "refresh"}))
    assert json.loads(ws.recv())["type"] in ("status", "diff")
    ws.close()
    site.daphne.stop()
    assert "PayloadExceeded" not in site.daphne.log_text()


@pytest.mark.parametrize("sim", [20000], indirect=True)
@pytest.mark.parametrize("site_settings", [{"QFEXDASH_WS_MAX_BACKLOG_BYTES": "65536"}], indirect=True)
def test_a_browser_that_stops_reading_is_closed_not_buffered(site: Site, sim: Simulator) -> None:
    """S29: a socket whose browser reads nothing is closed (4013) once its unread output passes the bound,
    instead of growing the server without limit. A 20 000-order snapshot (~9 MB) overflows the kernel's
    socket buffers; the updates that follow find the rest still waiting in Daphne."""
    ws = websocket.create_connection(
        site.daphne.ws_url(f"/ws/accounts/{site.account}/"),
        origin=site.daphne.origin,
        cookie=f"sessionid={site.session}",
        timeout=PATIENCE,
        sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),),
    )
    sim.pace = 5.0  # updates keep coming while the browser reads nothing
    deadline = time.monotonic() + 2 * PATIENCE
    while "stopped reading" not in site.daphne.log_text():
        assert time.monotonic() < deadline, "the server kept buffering for a browser that reads nothing"
        time.sleep(0.1)  # polling the log file for the server's word; nothing is timed
    sim.pace = 0.0
    while True:  # now read what was sent: it ends with the close (or a reset, once the close handshake timed out)
        try:
            opcode, frame = ws.recv_data_frame(control_frame=True)
        except (websocket.WebSocketConnectionClosedException, ConnectionResetError):
            break
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            assert int.from_bytes(frame.data[:2], "big") == 4013
            break
    ws.close()


def test_real_server_refuses_a_foreign_origin(site: Site) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        _open(site, origin="http://evil.example")
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException):
        _open(site, origin=f"http://127.0.0.1:{site.daphne.port + 1}")


@pytest.mark.parametrize("keys", ["", "not-a-key"])
def test_daphne_refuses_to_start_without_valid_encryption_keys(tmp_path: Path, keys: str) -> None:
    """S8: missing or malformed keys stop the server at start, with a message naming the setting."""
    # A fresh state folder holds no local key file either.
    env = server_env(tmp_path, encryption_keys=keys)
    with Daphne(env, tmp_path / "daphne.log", patience=120) as daphne, pytest.raises(DaphneExited) as exited:
        daphne.start()
    assert exited.value.returncode != 0
    assert "QFEXDASH_ENCRYPTION_KEYS" in exited.value.log
