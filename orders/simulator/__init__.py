"""A QFEX-compatible trade WebSocket server for the demo, the tests and the benchmarks.

It speaks the read-only part of the protocol described in `docs/qfex-protocol.md` (HMAC auth,
`get_user_orders`, `subscribe`/`unsubscribe` with `order_responses` pushes), keeps live, deterministic
order books per account, refuses and records every trading or unknown message, and can inject the faults
F1-F12 of the design at run time. It imports nothing from Django.
"""

from .accounts import DEMO_ACCOUNTS, SimAccount, accounts_from_json
from .events import OrderEvent
from .faults import Faults
from .server import ALLOWED_TYPES, Simulator

__all__ = ["ALLOWED_TYPES", "DEMO_ACCOUNTS", "Faults", "OrderEvent", "SimAccount", "Simulator", "accounts_from_json"]
