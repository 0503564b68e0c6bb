"""A QFEX-compatible trade WebSocket server for the demo, the tests and the benchmarks.

It speaks the read-only part of the protocol described in `docs/qfex-protocol.md` (HMAC auth,
`get_user_orders`, `subscribe`/`unsubscribe` with `order_responses` pushes), keeps live, deterministic
order books per account, refuses and records every trading or unknown message, and can inject the faults
F1-F12 of the design at run time. It imports nothing from Django.

Where things live (start with `control.py`):
- `control.py` — `Simulator`, the public class: builds the parts; start/stop, knobs, keys, what was received
- `book_control.py` — its base `BookControls`: step the market, add/fill/modify/remove orders, TWAPs
- `state.py` — `ExchangeState`: accounts, revoked keys, the market, nonces, rate budgets, knobs, one lock
- `traffic.py` — `Traffic`: request counts, forbidden messages, the received log, handshakes
- `server.py` — `SimServer`: the server loop (websockets listener, thread, handshake faults, connections)
- `connection.py` — `Session` of one connection and its writer (frames in order, close, F2 partial frame)
- `subscriptions.py` — sessions per (book, channel) and publishing pushes to them
- `pacer.py` — `Pacer`: background market activity at `pace` events per second
- `dispatch.py` — `Dispatcher`: decode, record, refuse, rate-limit and route every message
- `handlers.py` — `ReadHandlers`: one `@handles(...)` method per read-only message (subscribe, get_user_orders)
- `login.py` — the `auth` message; `auth.py` the HMAC check it uses
- `market.py` — `Market`: every account's books, their seeded activity and the changes tests make
- `maker.py` — `OrderMaker`: what a new order or TWAP looks like (symbols, prices, sizes, ids)
- `book.py` — `Book`: one account's orders and TWAPs as `get_user_orders` pages through them
- `accounts.py`, `faults.py`, `frames.py`, `events.py`, `ratelimit.py` — key pairs, fault switches, the
  frames sent besides pages, the push log with timestamps, the per-user token bucket
"""

from .accounts import DEMO_ACCOUNTS, SimAccount, accounts_from_json
from .control import Simulator
from .dispatch import ALLOWED_TYPES
from .events import OrderEvent
from .faults import Faults

__all__ = ["ALLOWED_TYPES", "DEMO_ACCOUNTS", "Faults", "OrderEvent", "SimAccount", "Simulator", "accounts_from_json"]
