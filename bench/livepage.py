"""The live page served without Django's site, for the browser tests (``tests/web/browser``) and P7
(``bench/browser.py``).

- ``FakeLiveServer``: a WebSocket server (the ``websockets`` library, threads) that plays the server side of
  the browser protocol: the test decides what it sends and reads what the page sends back.
- ``PageServer``: a small HTTP server that serves the real ``templates/orders/live.html`` rendered by Django's
  template engine (with a stand-in ``base.html``) at ``/`` (one account) and ``/all`` (all accounts), and the
  real ``static/`` folder under ``/static/``.

Both bind 127.0.0.1 on a free port and stop cleanly (no leaked threads or sockets).
"""

from __future__ import annotations

import http.server
import json
import mimetypes
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.template import Context, Engine
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

ROOT = Path(__file__).resolve().parents[1]
STATIC_DIR = ROOT / "static"
TEMPLATE_DIRS = [Path(__file__).resolve().parent / "templates", ROOT / "templates"]

ACCOUNT = 7
ACCOUNT_LABEL = "Desk A main"

Message = dict[str, Any]


class FakeLiveServer:
    """The server side of the live protocol, driven by the test.

    ``on_connect(index)`` returns the messages sent to each new connection at once (the real consumer sends a
    snapshot on join); ``{"__close__": code}`` among them closes the connection with that code instead.
    Frames the page sends are kept in order with the index of their connection.
    """

    def __init__(self, on_connect: Callable[[int], list[Message]] | None = None) -> None:
        self.on_connect = on_connect
        self._connections: list[ServerConnection] = []
        self._frames: list[tuple[int, Message]] = []
        self._changed = threading.Condition()
        self._server = serve(self._handle, "127.0.0.1", 0, max_size=2**20)
        self.port: int = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-live-ws", daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _handle(self, connection: ServerConnection) -> None:
        with self._changed:
            index = len(self._connections)
            self._connections.append(connection)
            self._changed.notify_all()
        try:
            for message in self.on_connect(index) if self.on_connect else []:
                if "__close__" in message:  # the test asks for this connection to be closed with a code
                    connection.close(message["__close__"])
                    return
                connection.send(json.dumps(message))
            for raw in connection:
                with self._changed:
                    self._frames.append((index, json.loads(raw)))
                    self._changed.notify_all()
        except ConnectionClosed:
            pass

    def send(self, message: Message, connection: int = -1) -> None:
        self._connections[connection].send(json.dumps(message))

    def close(self, connection: int = -1, code: int = 1011, reason: str = "") -> None:
        self._connections[connection].close(code, reason)

    @property
    def connection_count(self) -> int:
        with self._changed:
            return len(self._connections)

    def frames(self) -> list[tuple[int, Message]]:
        with self._changed:
            return list(self._frames)

    def wait_connections(self, count: int, timeout: float = 10.0) -> None:
        self._wait(lambda: len(self._connections) >= count, timeout, f"{count} connection(s)")

    def wait_frame(self, predicate: Callable[[Message], bool], timeout: float = 10.0) -> tuple[int, Message]:
        """The first frame from the page (any connection) that satisfies ``predicate``."""
        found: list[tuple[int, Message]] = []

        def match() -> bool:
            found[:] = [item for item in self._frames if predicate(item[1])][:1]
            return bool(found)

        self._wait(match, timeout, "a matching frame from the page")
        return found[0]

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}; frames so far: {self._frames!r}")
                self._changed.wait(remaining)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


def render_live_page(ws_url: str, mode: str, config: dict[str, Any] | None = None, theme: str = "") -> str:
    """The real live template, rendered as the view would, with its socket pointed at ``ws_url``.

    ``config`` adds to (or replaces parts of) the page's configuration, e.g. ``time_zone``; ``theme`` is the
    ``data-theme`` of the page ("light", "dark", or "" to follow the system).
    """
    engine = Engine(
        dirs=[str(d) for d in TEMPLATE_DIRS],
        libraries={"static": "django.templatetags.static"},
    )
    account_mode = mode == "account"
    page_config = {
        "ws_path": ws_url,
        "mode": mode,
        "account": ACCOUNT if account_mode else None,
        "account_label": ACCOUNT_LABEL if account_mode else "",
        "time_zone": "UTC",
        "zone_labels": {},
        "preferences": {},
        "preferences_url": None,
        "csrf_token": "",
        **(config or {}),
    }
    title = ACCOUNT_LABEL if account_mode else "All accounts"
    context = {"page_config": page_config, "title": title, "theme": theme}
    return engine.get_template("orders/live.html").render(Context(context))


class PageServer:
    """Serves the rendered live pages and the static folder over HTTP on loopback."""

    def __init__(self, pages: dict[str, str]) -> None:
        encoded = {path: html.encode() for path, html in pages.items()}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                if path in encoded:
                    self._reply(200, "text/html; charset=utf-8", encoded[path])
                elif path == "/favicon.ico":
                    self._reply(204, "image/x-icon", b"")
                elif path.startswith("/static/"):
                    self._static(path[len("/static/") :])
                else:
                    self._reply(404, "text/plain", b"not found")

            def _static(self, relative: str) -> None:
                target = (STATIC_DIR / urllib.parse.unquote(relative)).resolve()
                if not target.is_relative_to(STATIC_DIR) or not target.is_file():
                    self._reply(404, "text/plain", b"not found")
                    return
                kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind.endswith("javascript"):
                    kind += "; charset=utf-8"
                self._reply(200, kind, target.read_bytes())

            def _reply(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = False  # joined on close: no request thread outlives the test
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="live-page-http", daemon=True
        )
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def serious_axe_violations(page: Any) -> list[str]:
    """Run the vendored axe-core on the page as it is now; its serious and critical findings, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(next(STATIC_DIR.glob("vendor/axe-core-*/axe.min.js"))))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# --- protocol messages ---------------------------------------------------------------------------------

# Recent data, so relative times read naturally in screenshots; whole seconds keep CSV text exact.
AS_OF = float(int(time.time()))


def order_row(n: int, account: int = ACCOUNT, **fields: Any) -> Message:
    row: Message = {
        "id": f"ord-{n:05d}",
        "account": account,
        "account_label": ACCOUNT_LABEL if account == ACCOUNT else f"Desk {account}",
        "symbol": ["AAPL-USD", "NVDA-USD", "TSLA-USD"][n % 3],
        "side": "BUY" if n % 2 else "SELL",
        "type": "LIMIT",
        "time_in_force": "GTC",
        "price": f"{100 + n}.25",
        "quantity": "10",
        "quantity_remaining": "4",
        "filled": "6",
        "fill_pct": "60",
        "notional": f"{(100 + n) * 10}.50",
        "take_profit": "0",
        "stop_loss": "0",
        "status": "ACK",
        "client_order_id": f"desk-{n}",
        "order_id": f"ord-{n:05d}",
        "update_time": AS_OF - n,
    }
    row.update(fields)
    return row


def twap_row(n: int, account: int = ACCOUNT, **fields: Any) -> Message:
    row: Message = {
        "id": f"twap-{n:03d}",
        "account": account,
        "account_label": ACCOUNT_LABEL if account == ACCOUNT else f"Desk {account}",
        "symbol": "NVDA-USD",
        "side": "SELL",
        "total_quantity": "100",
        "filled_quantity": "25",
        "progress_pct": "25",
        "average_fill_price": "131.10",
        "total_num_orders": 8,
        "filled_num_orders": None,
        "order_interval_secs": 60,
        "estimated_end": AS_OF + 400,
        "reduce_only": False,
        "status": "RUNNING",
        "client_twap_id": f"rebalance-{n}",
        "twap_id": f"twap-{n:03d}",
        "created_at": AS_OF - 20,
        "updated_at": AS_OF,
    }
    row.update(fields)
    return row


def closed_row(n: int, account: int = ACCOUNT, **fields: Any) -> Message:
    """A CLOSED_ROW: an order that left the book (filled by default)."""
    row: Message = {
        "id": f"ord-{n:05d}",
        "account": account,
        "account_label": ACCOUNT_LABEL if account == ACCOUNT else f"Desk {account}",
        "symbol": ["AAPL-USD", "NVDA-USD", "TSLA-USD"][n % 3],
        "side": "BUY" if n % 2 else "SELL",
        "type": "LIMIT",
        "price": f"{100 + n}.25",
        "quantity": "10",
        "filled": "10",
        "status": "FILLED",
        "outcome": "filled",
        "reason": "Filled in full",
        "closed_at": AS_OF - n,
        "fill_price": f"{100 + n}.20",
        "client_order_id": f"desk-{n}",
    }
    row.update(fields)
    return row


def live_status(as_of: float | None = AS_OF, **fields: Any) -> Message:
    return {
        "state": "live",
        "reason": "",
        "action": "",
        "as_of": as_of,
        "since": None,
        "next_retry_at": None,
        "failures": 0,
        **fields,
    }


def snapshot(
    seq: int,
    orders: list[Message],
    twaps: list[Message] | None = None,
    account: int = ACCOUNT,
    as_of: float | None = AS_OF,
    closed: list[Message] | None = None,
    status: Message | None = None,
) -> Message:
    return {
        "type": "snapshot",
        "account": account,
        "seq": seq,
        "as_of": as_of,
        "part": 1,
        "parts": 1,
        "status": status or live_status(as_of),
        "totals": {"orders": len(orders), "twaps": len(twaps or []), "closed": len(closed or [])},
        "orders": orders,
        "twaps": twaps or [],
        "closed": closed or [],
    }


def snapshot_parts(
    seq: int,
    orders: list[Message],
    twaps: list[Message] | None = None,
    rows_per_message: int = 500,
    account: int = ACCOUNT,
    closed: list[Message] | None = None,
) -> list[Message]:
    """A snapshot split as the server splits it: TWAPs and the first orders in part 1, then the rest; every
    part carries the whole snapshot's ``totals``; closed rows go in the last part."""
    twaps = twaps or []
    first = max(0, rows_per_message - len(twaps))
    chunks = [orders[:first]] + [orders[i : i + rows_per_message] for i in range(first, len(orders), rows_per_message)]
    totals = {"orders": len(orders), "twaps": len(twaps), "closed": len(closed or [])}
    messages = []
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1
        message = snapshot(seq, chunk, twaps if index == 0 else [], account=account, closed=closed if last else None)
        message.update(part=index + 1, parts=len(chunks), totals=totals)
        messages.append(message)
    return messages


def diff(
    seq: int,
    orders: list[Message] | None = None,
    remove_orders: list[str] | None = None,
    twaps: list[Message] | None = None,
    remove_twaps: list[str] | None = None,
    account: int = ACCOUNT,
    as_of: float = AS_OF + 1,
    closed: list[Message] | None = None,
) -> Message:
    return {
        "type": "diff",
        "account": account,
        "seq": seq,
        "as_of": as_of,
        "upsert": {"orders": orders or [], "twaps": twaps or []},
        "remove": {"orders": remove_orders or [], "twaps": remove_twaps or []},
        "closed": closed or [],
    }


def status(
    seq: int,
    state: str,
    reason: str = "",
    as_of: float | None = AS_OF,
    next_retry_at: float | None = None,
    account: int = ACCOUNT,
    **fields: Any,
) -> Message:
    """A status message; ``fields`` may set ``since``, ``action`` and ``failures``."""
    return {
        "type": "status",
        "account": account,
        "seq": seq,
        "state": state,
        "reason": reason,
        "action": "",
        "as_of": as_of,
        "since": None,
        "next_retry_at": next_retry_at,
        "failures": 0,
        **fields,
    }
