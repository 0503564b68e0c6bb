"""P2: upstream frame → browser socket has the update, for one viewer of a 1000-order account.

The first full book of a cold feed (from the last page QFEX sent to the diff or snapshot part that
completes the book on the page), a one-order change as a diff, a joining page's snapshot from the
feed's cache; and, in this process, what the feed does after the last page (rows, diff, encoding).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bench.live.viewers import SPACING, Changer, close_viewers, one_update, open_viewers, showing, until
from bench.live.world import Site, live_site, sim_account
from bench.stats import goal_p95_ms, summary_ms
from orders.simulator import SimAccount, Simulator


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def p2(samples: int, cold_starts: int | None = None) -> list[str]:
    """Reply → browser latency for the first full book of a cold feed, and for one-order diffs."""
    main = sim_account("p2", 1000)
    colds = [sim_account(f"p2_cold_{n:02d}", 1000) for n in range(cold_starts or min(samples, 30))]
    with live_site([main, *colds]) as site:
        diffs, change_to_diff, books, carriers, resyncs = asyncio.run(_p2(site, main.public_key, colds, samples))
        costs = _server_side_costs(site.sim, main.public_key, samples)
    return [
        "P2 upstream frame (a page, or the push carrying the change) → browser socket has the update "
        "(1000 orders, 1 viewer, real Daphne)",
        f"   first full book of a cold feed ({carriers}): {summary_ms(books)} — {goal_p95_ms(books, 0.015)}",
        f"   diff, one order changed:                    {summary_ms(diffs)} — {goal_p95_ms(diffs, 0.005)}",
        f"   for context, change at the exchange → diff in the browser (the push, applied at once): "
        f"{summary_ms(change_to_diff)}",
        f"   for context, a page joins → its whole snapshot received (from the feed's cache): {summary_ms(resyncs)}",
        f"   in-process, what the feed does after the last page (1000 orders): rows {_ms(costs['rows'])} "
        f"(from scratch) or {_ms(costs['rows_reused'])} (one order changed since the last fetch), "
        f"diff {_ms(costs['diff'])}, encode a 1-row diff {_ms(costs['encode_diff'])}",
        f"   encoding a 1000-row snapshot in-process: orjson {_ms(costs['orjson'])}, stdlib json {_ms(costs['json'])}"
        f" ({costs['json'] / costs['orjson']:.1f}×)",
    ]


async def _p2(
    site: Site, key: str, colds: Sequence[SimAccount], samples: int
) -> tuple[list[float], list[float], list[float], str, list[float]]:
    diffs: list[float] = []
    change_to_diff: list[float] = []
    viewers = await open_viewers(site, key, 1)
    try:
        await until(viewers, showing(site, key), "the first full book")
        change = Changer(site.sim, key)
        for n in range(samples + 3):  # three warm-up changes
            await asyncio.sleep(SPACING)
            update = await one_update(site, key, viewers, change)
            if n >= 3:
                diffs.append(update.reply_to_last)
                change_to_diff.append(update.change_to_last)
    finally:
        await close_viewers(viewers)

    books: list[float] = []
    resyncs: list[float] = []
    carriers: Counter[str] = Counter()
    for account in colds:
        cold_key = account.public_key
        viewers = await open_viewers(site, cold_key, 1)
        viewer = viewers[0]
        try:
            # Nobody watched this account before: the feed connects, fetches, and the rows follow.
            viewer.target = site.book_size(cold_key)
            await until(viewers, lambda v: v.full_at is not None, "a cold feed's first book")
            full_at = viewer.full_at
            assert full_at is not None
            books.append((full_at - site.sim.last_reply_before(cold_key, full_at)) / 1e9)
            carrying = [f for f in viewer.frames if f.rows and f.t_ns <= full_at]
            rows = "+".join(str(f.rows) for f in carrying)
            carriers[f"{len(carrying)} {carrying[-1].kind} messages of {rows} rows"] += 1
            await until(viewers, showing(site, cold_key), "the live state")
            # A second page joins: its whole snapshot comes from the feed's cache (a resync of a page that
            # already has everything is not answered any more).
            asked = time.monotonic_ns()
            joiners = await open_viewers(site, cold_key, 1)
            viewers = [*viewers, *joiners]
            await until(joiners, lambda v: v.snapshots >= 1, "the joining page's snapshot")
            resyncs.append((joiners[0].snapshot_at - asked) / 1e9)
        finally:
            await close_viewers(viewers)
    return diffs, change_to_diff, books, "; ".join(f"as {k} ×{n}" for k, n in carriers.items()), resyncs


def _server_side_costs(sim: Simulator, key: str, samples: int) -> dict[str, float]:
    """Median in-process cost (seconds) of what the feed does after a fetch's last page, for 1000 orders:
    build the rows from the parsed records, diff them against the previous rows, encode one diff; and the
    cost of encoding a whole 1000-row snapshot with orjson (what the feed uses) and with stdlib json.
    Rows are built both from scratch (a cold feed) and reusing the last fetch's rows (one order changed)."""
    from orders.live import protocol as lp
    from orders.live.rows import build_order_rows, build_twap_rows, diff_rows, order_rows, twap_rows
    from orders.qfex.records import parse_order, parse_twap

    records = [parse_order(o) for o in sim.open_orders(key)]
    twap_records = [parse_twap(t) for t in sim.active_twaps(key)]
    previous = order_rows(records, 1, "Bench")
    # The same book after one order changed, parsed afresh as a new fetch's records would be.
    changed = [dict(o) for o in sim.open_orders(key)]
    changed[0]["quantity_remaining"] = "0.5"
    new_records = [parse_order(o) for o in changed]
    new_twap_records = [parse_twap(t) for t in sim.active_twaps(key)]
    last_orders = build_order_rows(records, 1, "Bench")
    last_twaps = build_twap_rows(twap_records, 1, "Bench")
    orders = order_rows(records, 1, "Bench")
    twaps = twap_rows(twap_records, 1, "Bench")
    upserts = [next(iter(orders.values()))]
    snapshot = lp.snapshot_message(1, 1, time.time(), lp.Status(lp.LIVE), orders.values(), twaps.values())

    def timed(fn: Callable[[], Any]) -> float:
        times = []
        for _ in range(max(samples, 5)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    return {
        "rows": timed(lambda: (order_rows(records, 1, "Bench"), twap_rows(twap_records, 1, "Bench"))),
        "rows_reused": timed(
            lambda: (
                build_order_rows(new_records, 1, "Bench", last_orders),
                build_twap_rows(new_twap_records, 1, "Bench", last_twaps),
            )
        ),
        "diff": timed(lambda: diff_rows(previous, orders)),
        "encode_diff": timed(lambda: lp.encode(lp.diff_message(1, 2, 1.0, upsert_orders=upserts))),
        "orjson": timed(lambda: lp.encode(snapshot)),
        "json": timed(lambda: json.dumps(snapshot, default=lp.decimal_text, ensure_ascii=False)),
    }
