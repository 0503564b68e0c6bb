"""How P9/P10 decide which diff carried an exchange event (bench/live/event_latency.py), on made-up data."""

from __future__ import annotations

from decimal import Decimal

from bench.live.event_latency import Shown, ended, match
from orders.simulator import OrderEvent

MS = 1_000_000


def event(serial: int, t_ms: int, order_id: str, status: str, remaining: float) -> OrderEvent:
    return OrderEvent(serial, t_ms * MS, 0.0, "book", order_id, status, remaining)


def test_open_and_ended_statuses():
    assert not ended(event(1, 0, "a", "ACK", 5.0))
    assert not ended(event(1, 0, "a", "MODIFIED", 5.0))
    assert not ended(event(1, 0, "a", "FILLED", 0.5))
    assert ended(event(1, 0, "a", "FILLED", 0.0))
    assert ended(event(1, 0, "a", "CANCELLED", 5.0))
    assert ended(event(1, 0, "a", "CANCELLED_STP", 5.0))
    assert ended(event(1, 0, "a", "REJECTED", 5.0))


def test_exact_superseded_and_never_shown():
    events = [
        event(1, 100, "a", "ACK", 5.0),  # shown by the diff at 180
        event(2, 200, "a", "FILLED", 3.0),  # folded into the next fill: superseded by the diff at 400
        event(3, 250, "a", "FILLED", 1.5),  # shown at 400 (an earlier diff at 220 showed the old state)
        event(4, 300, "b", "ACK", 2.0),  # b opened and closed between two reads: never shown
        event(5, 310, "b", "CANCELLED", 2.0),
        event(6, 500, "a", "FILLED", 0.0),  # a filled completely: removed at 650
        event(7, 600, "c", "CANCELLED", 1.0),  # c was removed at 590, before this event: not that diff
    ]
    shown = {
        "a": [
            Shown(180 * MS, False, "ACK", Decimal("5")),
            Shown(220 * MS, False, "ACK", Decimal("5")),
            Shown(400 * MS, False, "FILLED", Decimal("1.5")),
            Shown(650 * MS, True),
        ],
        "c": [Shown(590 * MS, True)],
    }
    matched = match(events, shown)
    assert sorted(round(s * 1000) for s in matched.exact) == [80, 150, 150]
    assert [round(s * 1000) for s in matched.superseded] == [200]
    assert matched.never_shown == 3
    assert matched.events == len(events)
    assert sorted(round(s * 1000) for s in matched.latencies) == [80, 150, 150, 200]


def test_a_status_or_quantity_that_differs_is_not_the_event():
    events = [event(1, 0, "a", "FILLED", 2.0)]
    assert match(events, {"a": [Shown(10 * MS, False, "ACK", Decimal("2"))]}).never_shown == 1
    assert match(events, {"a": [Shown(10 * MS, False, "FILLED", Decimal("2.5"))]}).never_shown == 1
    assert match(events, {"a": [Shown(10 * MS, False, "FILLED", Decimal("2.00"))]}).exact == [0.01]
