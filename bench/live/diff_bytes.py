"""P5: the bytes of a diff for changes of at most 1 % of a 1000-order book, against the snapshot's."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable

from bench.live.viewers import SPACING, Viewer, close_viewers, open_viewers, showing, until
from bench.live.world import Site, live_site, sim_account
from bench.stats import verdict


def p5(samples: int) -> list[str]:
    """Diff bytes for changes of ≤ 1 % of 1000 orders, against the snapshot's bytes."""
    account = sim_account("p5", 1000)
    with live_site([account]) as site:
        snapshot_bytes, parts, kinds = asyncio.run(_p5(site, account.public_key, max(1, samples // 8)))
    lines = [
        f"P5 bytes per update, 1000 orders: the snapshot is {snapshot_bytes:,} bytes ({parts} part"
        f"{'s' if parts != 1 else ''}); diff payload bytes per change:",
    ]
    worst = 0
    for name, (sizes, rows) in kinds.items():
        worst = max(worst, max(sizes))
        lines.append(
            f"   {name:<47} median {statistics.median(sizes):>6,.0f} B, max {max(sizes):>6,} B"
            f" ({max(sizes) / snapshot_bytes:.2%} of the snapshot; rows per diff {min(rows)}–{max(rows)})"
        )
    lines.append(
        f"   largest ≤ 1 % diff: {worst / snapshot_bytes:.2%} of the snapshot — goal ≤ 2 % →"
        f" {verdict(worst <= 0.02 * snapshot_bytes)} (WebSocket framing adds 2–4 bytes per message; no compression)"
    )
    return lines


async def _p5(site: Site, key: str, reps: int) -> tuple[int, int, dict[str, tuple[list[int], list[int]]]]:
    sim = site.sim
    viewers = await open_viewers(site, key, 1)
    viewer = viewers[0]
    added: list[str] = []

    def events(n: int) -> Callable[[], None]:
        def run() -> None:
            while not sim.step(n):  # a TWAP event pushes nothing; make sure an order changed
                pass

        return run

    def new_orders() -> None:
        added.extend(order["order_id"] for order in sim.add_orders(key, 10))

    def cancels() -> None:
        for _ in range(10):
            sim.remove_order(key, added.pop() if added else sim.open_orders(key)[0]["order_id"])

    kinds: dict[str, Callable[[], None]] = {
        "1 exchange event (fill, modify, new or cancel)": events(1),
        "10 exchange events (1 % of the orders)": events(10),
        "10 new orders (every row whole: the worst 1 %)": new_orders,
        "10 cancels": cancels,
    }
    results: dict[str, tuple[list[int], list[int]]] = {}
    try:
        await until(viewers, showing(site, key), "the book")
        # The whole book's snapshot, as a page joining now gets it.
        joiners = await open_viewers(site, key, 1)
        viewers = [*viewers, *joiners]
        await until(joiners, lambda v: v.snapshots >= 1, "a joining page's snapshot")
        parts = [f for f in joiners[0].frames if f.kind == "snapshot"]
        snapshot_bytes = sum(f.nbytes for f in parts)
        for name, change in kinds.items():
            sizes: list[int] = []
            rows: list[int] = []
            for _ in range(reps):
                await asyncio.sleep(SPACING)
                mark = len(viewer.frames)
                change()

                def diffed(v: Viewer, m: int = mark) -> bool:  # this round's mark
                    return v.first_diff_after(m) is not None

                await until([viewer], diffed, "a diff")
                # A change bigger than a message's row limit would come as several diffs: count them all.
                await asyncio.sleep(SPACING)
                diffs = [f for f in viewer.frames[mark:] if f.kind == "diff"]
                sizes.append(sum(f.nbytes for f in diffs))
                rows.append(sum(f.rows for f in diffs))
            results[name] = (sizes, rows)
        return snapshot_bytes, len(parts), results
    finally:
        await close_viewers(viewers)
