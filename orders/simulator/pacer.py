"""Background activity: `pace` market events per second, run on the simulator's event loop."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from .book import Push
from .state import ExchangeState


class Pacer:
    """Steps the market at the state's `pace` and publishes what changed; `wake()` after a pace change."""

    def __init__(self, state: ExchangeState, publish: Callable[[list[Push]], None]) -> None:
        self._state = state
        self._publish = publish
        self._changed: asyncio.Event | None = None

    def wake(self) -> None:
        """Start a new schedule at the current pace (call on the loop thread)."""
        if self._changed is not None:
            self._changed.set()

    async def run(self) -> None:
        """`pace` events per second on a fixed schedule: time spent serving clients (or a busy machine)
        delays an event but does not lower the rate. Events that fell due meanwhile run together, up to a
        second's worth; a longer stall is dropped rather than replayed as a burst."""
        changed = self._changed = asyncio.Event()
        loop = asyncio.get_running_loop()
        due_at: float | None = None
        try:
            while True:
                changed.clear()
                pace = self._state.pace
                if pace <= 0:
                    due_at = None
                    await changed.wait()
                    continue
                interval = 1.0 / pace
                if due_at is None:
                    due_at = loop.time() + interval
                try:
                    async with asyncio.timeout(max(0.0, due_at - loop.time())):
                        await changed.wait()
                except TimeoutError:
                    pass
                else:
                    due_at = None  # the pace changed: start a new schedule at the new rate
                    continue
                late = loop.time() - due_at
                count = min(1 + int(late / interval), max(1, math.ceil(pace)))
                with self._state.lock:
                    pushes = self._state.market.step(count)
                self._publish(pushes)
                due_at += count * interval
                if loop.time() - due_at > 1.0:
                    due_at = loop.time() + interval
        finally:
            self._changed = None
