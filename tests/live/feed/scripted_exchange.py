"""A QFEX stand-in whose pushes a test writes by hand, for the awkward pushes the simulator cannot send yet.

It speaks just enough of the trade WebSocket over a real loopback socket (tests/qfex/scripted_server.py):
``auth``, ``subscribe`` and ``get_user_orders`` paged by offset from :attr:`ScriptedExchange.book`, and
every ``order_response`` a test queues with :meth:`ScriptedExchange.push`, sent in order. The real feed
connects to it like to QFEX.
"""

from __future__ import annotations

import contextlib
import queue
import select
import threading
from typing import Any

from tests.qfex.scripted_server import ClientGone, Conn, ScriptedServer

_POLL_SECONDS = 0.01


class ScriptedExchange:
    def __init__(self, book: list[dict[str, Any]]) -> None:
        self.book = [dict(order) for order in book]  # what get_user_orders lists, in this order
        self.lock = threading.Lock()
        self.reads = 0  # get_user_orders requests answered
        self._pushes: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self.server = ScriptedServer(self._serve)

    def __enter__(self) -> ScriptedExchange:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # the connection the feed still holds ends here
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    def push(self, order: dict[str, Any], **fields: Any) -> None:
        """Queue one ``order_response`` (sent at once, in order); a field set to None is left out."""
        merged = {**order, **fields}
        self._pushes.put({name: value for name, value in merged.items() if value is not None})

    def set_book(self, book: list[dict[str, Any]]) -> None:
        with self.lock:
            self.book = [dict(order) for order in book]

    def _serve(self, conn: Conn) -> None:
        conn.expect_auth()
        with contextlib.suppress(ClientGone, OSError):
            while not self._stopping.is_set():
                self._send_pushes(conn)
                if not select.select([conn.sock], [], [], _POLL_SECONDS)[0]:
                    continue  # nothing from the client: look for pushes to send
                message = conn.recv_json()
                if message.get("type") == "subscribe":
                    for channel in message["params"]["channels"]:
                        conn.send_json({"subscribed": channel})
                elif message.get("type") == "get_user_orders":
                    params = message["params"]
                    with self.lock:
                        orders = self.book[params["offset"] : params["offset"] + params["limit"]]
                        self.reads += 1
                    conn.send_json({"all_orders_response": {"orders": orders, "twaps": []}})
        conn.sock.close()

    def _send_pushes(self, conn: Conn) -> None:
        while True:
            try:
                order = self._pushes.get_nowait()
            except queue.Empty:
                return
            conn.send_json({"order_response": order})


def order(order_id: str, **fields: Any) -> dict[str, Any]:
    """An open GTC limit order as QFEX lists it (no update_time: QFEX's push examples carry none)."""
    return {
        "order_id": order_id,
        "symbol": "AAPL-USD",
        "side": "BUY",
        "type": "LIMIT",
        "time_in_force": "GTC",
        "price": 187.25,
        "quantity": 10,
        "quantity_remaining": 10,
        "status": "ACK",
        "client_order_id": "",
        **fields,
    }
