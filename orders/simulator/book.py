"""One account's order book as `get_user_orders` pages through it, and the shapes of its pages.

Orders and TWAPs are kept as the plain dicts sent on the wire (the current shape). The activity that changes
books is `market.Market`'s; what a new order looks like is `maker.OrderMaker`'s.

Page order: `get_user_orders` pages through a book in insertion order by default (a modified order keeps
its place). QFEX does not document its order; with `page_order="updated"` pages list the latest update
first, so an order that fills or is modified while a client pages jumps to offset 0 (docs/qfex-protocol.md
§3.7).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

PAGE_CAP = 1000
PAGE_ORDERS = ("insertion", "updated")

ORDER_FIELDS = (
    "order_id", "symbol", "status", "quantity", "price", "take_profit", "stop_loss", "side", "type",
    "time_in_force", "user_id", "client_order_id", "quantity_remaining", "update_time", "trade_id",
)  # fmt: skip
# The September 2025 shape (`user_orders` + `count`) had no take_profit, stop_loss, update_time or trade_id.
LEGACY_ORDER_FIELDS = tuple(f for f in ORDER_FIELDS if f not in {"take_profit", "stop_loss", "update_time", "trade_id"})
TWAP_FIELDS = (
    "twap_id", "client_twap_id", "user_id", "status", "symbol", "total_quantity", "filled_quantity",
    "average_fill_price", "total_num_orders", "order_interval_secs", "reduce_only", "side", "created_at",
    "updated_at",
)  # fmt: skip

_MAX_CACHED_PAGES = 32


@dataclass
class Push:
    """An order change to send to the book's `order_responses` subscribers."""

    book_id: str
    order: dict[str, Any]


class Book:
    def __init__(self, book_id: str, target_orders: int, target_twaps: int) -> None:
        self.book_id = book_id
        self.target_orders = target_orders
        self.target_twaps = target_twaps
        self.orders: list[dict[str, Any]] = []
        self.twaps: list[dict[str, Any]] = []
        self.twap_slices_done: dict[str, int] = {}
        self.recently_removed: deque[dict[str, Any]] = deque(maxlen=20)
        self.version = 0
        self._pages: dict[tuple[str, int, int, str | None, str], bytes] = {}  # (shape, limit, offset, symbol, order)
        self._by_update: list[dict[str, Any]] | None = None

    def changed(self) -> None:
        self.version += 1
        self._pages.clear()
        self._by_update = None

    def ordered(self, page_order: str = "insertion") -> list[dict[str, Any]]:
        """The open orders in the order pages list them (see the module docstring); not a copy."""
        if page_order == "insertion":
            return self.orders
        if page_order != "updated":
            raise ValueError(f"page_order must be one of {', '.join(PAGE_ORDERS)}")
        if self._by_update is None:
            # Newest update first; among equal times the later-added order first. Cached until the next change.
            ranked = sorted(enumerate(self.orders), key=lambda item: (_sort_time(item[1]), item[0]), reverse=True)
            self._by_update = [order for _, order in ranked]
        return self._by_update

    def index_of(self, order_id: str) -> int | None:
        for index, order in enumerate(self.orders):
            if order.get("order_id") == order_id:
                return index
        return None

    def select(
        self, limit: int, offset: int, symbol: str | None, page_order: str = "insertion"
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        listed = self.ordered(page_order)
        orders = listed if symbol is None else [o for o in listed if o.get("symbol") == symbol]
        twaps = self.twaps if symbol is None else [t for t in self.twaps if t.get("symbol") == symbol]
        return orders[offset : offset + limit], twaps

    def page_bytes(
        self, shape: str, limit: int, offset: int, symbol: str | None, page_order: str = "insertion"
    ) -> bytes:
        """The serialised get_user_orders reply, cached until the book next changes."""
        key = (shape, limit, offset, symbol, page_order)
        cached = self._pages.get(key)
        if cached is None:
            if len(self._pages) >= _MAX_CACHED_PAGES:
                self._pages.clear()
            selected = self.select(limit, offset, symbol, page_order)
            cached = self._pages[key] = orjson.dumps(page_reply(shape, *selected))
        return cached


def _sort_time(order: Mapping[str, object]) -> float:
    value = order.get("update_time")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("-inf")  # a test may inject odd values: such orders list last
    return float(value)


def page_reply(shape: str, orders: Sequence[dict[str, Any]], twaps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A get_user_orders reply in one of the shapes QFEX has used (docs/qfex-protocol.md §3.2)."""
    if shape == "legacy":
        legacy = [{k: o[k] for k in LEGACY_ORDER_FIELDS if k in o} for o in orders]
        return {"user_orders": legacy, "count": len(legacy)}
    if shape == "mid":
        return {"all_orders_response": {"orders": list(orders), "stop_orders": []}}
    return {"all_orders_response": {"orders": list(orders), "twaps": list(twaps)}}
