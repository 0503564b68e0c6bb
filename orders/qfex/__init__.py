"""QFEX trade WebSocket client for a read-only dashboard. Imports nothing from Django.

See ``docs/qfex-protocol.md`` for the protocol and the module docstrings for the
decisions: ``session`` (reply matching, stale replies), ``transport`` (deadlines, size cap, no
redirects), ``paging`` (offset paging while the book changes), ``messages`` (the allow-list).
"""

from .errors import (
    AccountActionRequired,
    AuthenticationRejected,
    ConnectionFailed,
    ConnectionLost,
    ExchangeError,
    ForbiddenMessage,
    InvalidParameter,
    InvalidURL,
    PagingIncomplete,
    ProtocolError,
    QfexError,
    QfexTimeout,
    RateLimited,
)
from .messages import ALLOWED_MESSAGE_TYPES
from .paging import fetch_open_orders
from .policy import EndpointNotAllowed, EndpointPolicy
from .records import Order, OrdersSnapshot, Page, Twap, decimal_default, dumps, parse_all_orders_reply
from .session import DEFAULT_USER_AGENT, QfexSession
from .signing import Credentials, auth_message, new_nonce, sign

__all__ = [
    "ALLOWED_MESSAGE_TYPES",
    "DEFAULT_USER_AGENT",
    "AccountActionRequired",
    "AuthenticationRejected",
    "ConnectionFailed",
    "ConnectionLost",
    "Credentials",
    "EndpointNotAllowed",
    "EndpointPolicy",
    "ExchangeError",
    "ForbiddenMessage",
    "InvalidParameter",
    "InvalidURL",
    "Order",
    "OrdersSnapshot",
    "Page",
    "PagingIncomplete",
    "ProtocolError",
    "QfexError",
    "QfexSession",
    "QfexTimeout",
    "RateLimited",
    "Twap",
    "auth_message",
    "decimal_default",
    "dumps",
    "fetch_open_orders",
    "new_nonce",
    "parse_all_orders_reply",
    "sign",
]
