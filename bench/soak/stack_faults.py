"""The soak's faults of the stack itself: a browser that stops reading (F9) and a server restart (F10).

F9 pauses the first page of each account in cycles while the books move fast and a burst of thousands of
orders comes and goes (a small channel capacity makes the slow pages lose group messages); F10 stops
Daphne and starts it again on the same socket, on a schedule, and times every page's way back.
"""

from __future__ import annotations

import asyncio
import time

from bench.harness.pages import PageSocket
from bench.soak.results import Check, seconds_text
from bench.soak.stack import FaultSpec, Stack

F9_STALL_SECONDS = 8.0  # below Daphne's 20 s ping interval + 30 s ping timeout: the socket stays up
F9_READ_SECONDS = 2.0
F9_PACE_FACTOR = 5.0
# A burst bigger than channel capacity x rows per message: the change goes out as more consecutive diffs
# than a page's channel holds, and the snapshot of the big book goes out in several parts.
F9_BURST_ORDERS = 5600


async def _f9_apply(stack: Stack) -> None:
    slow = [socks[0] for socks in stack.sockets_by_account().values()]
    stack.phase["slow"] = slow
    stack.phase["slow_gaps"] = {s: _gaps(s) for s in slow}
    stack.phase["slow_resyncs"] = {s: s.resyncs_sent for s in slow}
    stack.phase["gaps_before"] = sum(_gaps(s) for s in stack.sockets)
    stack.phase["stalls"] = 0
    stack.phase["diffs_at_start"] = _diffs_seen(stack)
    stack.phase["burst_done"] = False
    stack.sim.pace = stack.config.pace * F9_PACE_FACTOR
    stack.background_task(_stall_cycles(stack, slow))
    stack.background_task(_burst(stack))


async def _burst(stack: Stack) -> None:
    """Add F9_BURST_ORDERS orders to the first account; once a page shows them, remove them again."""
    account = stack.site.accounts[0]
    added = await asyncio.to_thread(stack.sim.add_orders, account.public_key, F9_BURST_ORDERS)
    watcher = stack.sockets_by_account()[account.pk][-1]

    def shown() -> bool:
        view = watcher.tables.accounts.get(account.pk)
        return view is not None and all(order["order_id"] in view.orders for order in added[-10:])

    stack.phase["burst_shown"] = await stack.wait_for(shown, stack.config.deadline)

    def remove_all() -> None:
        for order in added:
            stack.sim.remove_order(account.public_key, order["order_id"])

    await asyncio.to_thread(remove_all)
    stack.phase["burst_done"] = True


async def _stall_cycles(stack: Stack, slow: list[PageSocket]) -> None:
    try:
        while True:
            for sock in slow:
                sock.pause_reading()
            await asyncio.sleep(F9_STALL_SECONDS)
            for sock in slow:
                sock.resume_reading()
            stack.phase["stalls"] += 1
            await asyncio.sleep(F9_READ_SECONDS)
    finally:
        for sock in slow:
            sock.resume_reading()


async def _f9_heal(stack: Stack) -> None:
    for sock in stack.phase["slow"]:
        sock.resume_reading()


def _f9_effect(stack: Stack) -> bool:
    # At least one whole stall, while every account published diffs.
    start = stack.phase["diffs_at_start"]
    now = _diffs_seen(stack)
    stalled = stack.phase["stalls"] >= 1 and all(now[pk] - start.get(pk, 0) >= 3 for pk in now)
    return stalled and stack.phase["burst_done"]


def _f9_checks(stack: Stack) -> list[Check]:
    slow = stack.phase["slow"]
    gaps = sum(_gaps(s) - stack.phase["slow_gaps"][s] for s in slow)
    resyncs = sum(s.resyncs_sent - stack.phase["slow_resyncs"][s] for s in slow)
    every = [s for socks in stack.sockets_by_account().values() for s in socks]
    all_gaps = sum(_gaps(s) for s in every) - stack.phase["gaps_before"]
    stack.phase["f9"] = (
        f"{stack.phase['stalls']} stalls of the slow pages ({gaps} gaps, {resyncs} resyncs);"
        f" burst of {F9_BURST_ORDERS} orders shown after {seconds_text(stack.phase.get('burst_shown'))};"
        f" gaps seen by all pages: {all_gaps}"
    )
    # Convergence of the slow pages is part of "tables equal the books"; this records what they went through.
    return [Check("slow pages recovered", True, stack.phase["f9"])]


def _gaps(sock: PageSocket) -> int:
    return sum(view.gaps for view in sock.tables.accounts.values())


def _diffs_seen(stack: Stack) -> dict[int, int]:
    """Diffs applied by the last (never slowed) page of each account."""
    return {pk: _view_diffs(socks[-1], pk) for pk, socks in stack.sockets_by_account().items()}


def _view_diffs(sock: PageSocket, pk: int) -> int:
    view = sock.tables.accounts.get(pk)
    return 0 if view is None else view.diffs


F10_DOWN_SECONDS = 2.0


async def _f10_apply(stack: Stack) -> None:
    stack.phase["restarts"] = []
    stack.background_task(_restart_cycles(stack))


async def _restart_cycles(stack: Stack) -> None:
    cfg = stack.config
    cycles = max(1, int(cfg.seconds_per_fault // cfg.restart_every))
    for cycle in range(cycles):
        started = time.monotonic()
        before = {sock: (sock.connections, _snapshots(stack, sock), _seq(stack, sock)) for sock in stack.sockets}
        await asyncio.to_thread(stack.server.stop)
        await asyncio.sleep(F10_DOWN_SECONDS)  # the server is down this long
        await asyncio.to_thread(stack.server.start)

        def reconnected(before: dict[PageSocket, tuple[int, int, int]] = before) -> bool:
            return all(
                sock.connections > b[0] and _snapshots(stack, sock) > b[1] and _seq(stack, sock) > b[2]
                for sock, b in before.items()
            )

        # Seconds from Daphne answering again to every page holding a snapshot of the new process.
        stack.phase["restarts"].append(await stack.wait_for(reconnected, cfg.deadline))
        if cycle + 1 < cycles:
            await asyncio.sleep(max(0.0, cfg.restart_every - (time.monotonic() - started)))
    stack.phase["restarts_done"] = True


def _snapshots(stack: Stack, sock: PageSocket) -> int:
    view = sock.tables.accounts.get(stack.socket_account[sock])
    return 0 if view is None else view.snapshots


def _seq(stack: Stack, sock: PageSocket) -> int:
    view = sock.tables.accounts.get(stack.socket_account[sock])
    return -1 if view is None or view.seq is None else view.seq


async def _f10_heal(stack: Stack) -> None:
    # The restart cycles finish before healing (the effect waits for them); if they could not, make sure
    # the server is up again.
    process = stack.server.process
    if process is None or process.poll() is not None:
        await asyncio.to_thread(stack.server.start)


def _f10_effect(stack: Stack) -> bool:
    return bool(stack.phase.get("restarts_done"))


def _f10_checks(stack: Stack) -> list[Check]:
    times = stack.phase["restarts"]
    failed = sum(1 for t in times if t is None)
    ok = [t for t in times if t is not None]
    slowest = seconds_text(max(ok) if ok else None)
    stack.phase["f10"] = f"{len(times)} restarts; all pages back with a full snapshot within {slowest} of each"
    return [
        Check(
            "pages reconnect and get a snapshot",
            bool(times) and failed == 0,
            stack.phase["f10"] + (f"; {failed} restarts not recovered" if failed else ""),
        )
    ]


STACK_FAULTS = (
    FaultSpec(
        "F9",
        "slow browser (stops reading; channel capacity 10)",
        _f9_apply,
        _f9_heal,
        effect=_f9_effect,
        effect_text="a stall of the slow pages while every account published ≥ 3 diffs; the burst came and went",
        checks=_f9_checks,
    ),
    FaultSpec(
        "F10",
        "server restart (Daphne, same socket)",
        _f10_apply,
        _f10_heal,
        effect=_f10_effect,
        effect_text="the restart cycles ran",
        checks=_f10_checks,
    ),
)
