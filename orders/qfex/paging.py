"""``fetch_open_orders``: every open order and active TWAP of an account, paged with ``limit``/``offset``.

QFEX has no snapshot cursor (docs/qfex-protocol.md §3.7), and the book may change between pages. Two
problems follow, and this is how they are handled:

1. **Knowing where the list ends.** A page shorter than asked is the end of the list only if the
   server is known to send longer pages (this session has seen a longer one). Otherwise the short
   page may be the server quietly capping the page size, so the next offset is probed once: if more
   orders come back and the probe is exactly as long as the short page, that length is learned as
   the server's cap (kept on the session) and paging goes on; if nothing lies beyond, the list ended.
2. **Orders shifting between pages.** If orders before our position are removed between two
   requests, the rest shift left and plain offset paging would skip some that existed all along.
   So consecutive pages overlap (start a few positions before the end of the previous page), and a
   page must contain at least one order already received — proof that it reaches back to what we
   have. If it does not, the overlap is doubled and the page asked again. This assumes the server
   keeps a stable order (e.g. by creation); duplicates from the overlap are removed by ``order_id``.
3. **Pages that do not advance.** A full page holding only orders already received brought nothing new:
   a late duplicate of an earlier page may have answered this request (replies carry no request id), so
   nothing of it is taken and the same offset is asked again — the genuine answer, if it was behind the
   duplicate, is used up by that. If the page again brings nothing new, orders were inserted before
   this position (the list moved under us): paging moves past it, still taking none of its copies.

A read that returns is complete in the merge rule's sense as far as paging goes: every page overlapped
the one before and advanced, and no request timed out (a timeout raises and closes the session).

Orders are de-duplicated by ``order_id`` (the latest copy wins, the first position is kept); TWAPs,
which the server may repeat on every page, by ``twap_id``. Objects without an id are de-duplicated
by their whole content.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from .errors import PagingIncomplete
from .messages import MAX_PAGE_LIMIT
from .records import Order, OrdersSnapshot, Page, Twap, decimal_default

if TYPE_CHECKING:
    from .session import QfexSession

logger = logging.getLogger(__name__)

INITIAL_OVERLAP = 16
DEFAULT_MAX_REQUESTS = 500


def fetch_open_orders(
    session: QfexSession,
    *,
    symbol: str | None = None,
    page_size: int = MAX_PAGE_LIMIT,
    max_requests: int = DEFAULT_MAX_REQUESTS,
) -> OrdersSnapshot:
    """Page through ``get_user_orders`` and return one de-duplicated snapshot.

    Raises the session's errors unchanged, and :class:`PagingIncomplete` if the book changed so fast
    that ``max_requests`` pages could not cover it.
    """
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_LIMIT:
        raise ValueError(f"page_size must be an int between 1 and {MAX_PAGE_LIMIT}")
    learned = session.page_limits
    fetched_at = float(session.clock())
    orders: dict[Any, Order] = {}
    twaps: dict[Any, Twap] = {}
    frontier = 0  # list position just past the last order received, as of the latest page
    overlap = INITIAL_OVERLAP
    stepping_back = False
    probing: int | None = None  # length of a short page whose end we are checking
    stalled = False  # the previous page was full and brought no new order
    requests = 0

    while True:
        if requests >= max_requests:
            raise PagingIncomplete(f"gave up after {requests} get_user_orders pages: the book kept shifting")
        back = min(overlap, frontier)
        if not stepping_back:
            # At most half of what a page really returns, so that every page also brings new positions.
            back = min(back, (page_size if learned.cap is None else min(page_size, learned.cap)) // 2)
        if probing is not None:
            back = min(back, probing - 1)  # the probe must be able to return more than the overlap
        offset = frontier - back
        largest_before = learned.largest
        page = session.get_user_orders_page(limit=page_size, offset=offset, symbol=symbol)
        requests += 1
        if back and not any(order.order_id in orders for order in page.orders):
            # Orders before this page were removed since the last one: some may have slid past us. The
            # page is dropped (its orders must not vouch for the next attempt) and asked again further back.
            overlap *= 2
            stepping_back = True
            probing = None  # the next page is judged afresh
            logger.debug("page at offset %d does not overlap earlier pages; stepping back %d", offset, overlap)
            continue
        received = page.received
        full = received >= (page_size if learned.cap is None else min(page_size, learned.cap))
        if back and full and not stepping_back and all(order.order_id in orders for order in page.orders):
            # Nothing new in a full page: a late duplicate of an earlier page, or the list moved under us.
            if not stalled:
                stalled = True
                logger.debug("page at offset %d brought no new order; asking it again", offset)
                continue
            stalled = False
            frontier = offset + received
            logger.debug("page at offset %d again brought no new order; moving past it", offset)
            continue
        stalled = False
        _merge(orders, twaps, page)
        stepping_back = False
        end = offset + received
        if probing is not None:
            if end <= frontier:
                break  # nothing beyond the short page: it was the end of the list
            if received == probing < page_size:
                learned.cap = probing  # a short page, then more orders in a page of the same length: a cap
                logger.info("QFEX caps get_user_orders pages at %d orders", probing)
            probing = None
        frontier = end
        effective = page_size if learned.cap is None else min(page_size, learned.cap)
        if learned.cap is not None and received > learned.cap:
            learned.cap = None  # the server sent more than the supposed cap: forget it
            effective = page_size
        if received == 0:
            break
        if received >= effective:
            continue
        if received < largest_before:
            break  # the server has sent longer pages before, so this one is short because the list ended
        probing = received

    return OrdersSnapshot(
        orders=tuple(orders.values()), twaps=tuple(twaps.values()), fetched_at=fetched_at, pages=requests
    )


def _merge(orders: dict[Any, Order], twaps: dict[Any, Twap], page: Page) -> None:
    for order in page.orders:
        orders[order.order_id if order.order_id is not None else _content_key(order.raw)] = order
    for twap in page.twaps:
        twaps[twap.twap_id if twap.twap_id is not None else _content_key(twap.raw)] = twap


def _content_key(raw: dict[str, Any]) -> tuple[str, bytes]:
    return ("content", orjson.dumps(raw, default=decimal_default, option=orjson.OPT_SORT_KEYS))
