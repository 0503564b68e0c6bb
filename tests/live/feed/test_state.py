"""AccountState: what a push, a fetch and a published diff do to an account's rows (pure, no I/O).

QFEX's lifecycle (docs/qfex-protocol.md §4.3): ACK/MODIFIED upsert; FILLED with remaining > 0 updates;
FILLED with 0, CANCELLED, CANCELLED_STP and the rejections remove; what cannot be placed asks for a
prompt reconcile. A fetch is merged with the pushes that arrived while it ran.
"""

from __future__ import annotations

from typing import Any

import pytest

from orders.live.feed.state import AccountState, FetchedBook, Gap, _index
from orders.live.rows import build_order_rows, build_twap_rows
from orders.qfex.records import parse_order

ACCOUNT = 7


def order(order_id: str, status: str = "ACK", *, remaining: float = 10, quantity: float = 10, at: float = 100.0,
          **fields: Any) -> Any:  # fmt: skip
    base = {
        "order_id": order_id,
        "symbol": "AAPL-USD",
        "side": "BUY",
        "type": "LIMIT",
        "time_in_force": "GTC",
        "price": 187.25,
        "quantity": quantity,
        "quantity_remaining": remaining,
        "status": status,
        "client_order_id": "",
        "update_time": at,
    }
    return parse_order({**base, **fields})


def book(*orders: Any, state: AccountState | None = None, fetched_at: float = 500.0) -> FetchedBook:
    previous = state.previous_rows() if state is not None else (None, None)
    return FetchedBook(
        build_order_rows(orders, ACCOUNT, "Desk", previous[0]),
        build_twap_rows([], ACCOUNT, "Desk", previous[1]),
        fetched_at,
        1,
    )


@pytest.fixture
def state() -> AccountState:
    account = AccountState(ACCOUNT, "Desk", seq=10)
    account.apply_fetch(book(order("a", at=50), order("b", at=60)))
    return account


# --- pushes ----------------------------------------------------------------------------------------


def test_an_ack_of_a_new_order_adds_its_row(state: AccountState) -> None:
    change, reconcile = state.apply_push(order("c", at=101))
    assert [row["id"] for row in change.upsert_orders] == ["c"]
    assert not reconcile
    assert state.orders["c"]["placed_at"] == 101.0


def test_a_partial_fill_updates_the_row_and_keeps_the_placement_time(state: AccountState) -> None:
    placed = state.orders["a"]["placed_at"]
    change, reconcile = state.apply_push(order("a", "FILLED", remaining=4, at=120))
    assert change.upsert_orders[0]["quantity_remaining"] == "4"
    assert change.remove_orders == []
    assert change.closed == []
    assert state.orders["a"]["placed_at"] == placed == 50.0
    assert not reconcile


@pytest.mark.parametrize(
    ("status", "remaining", "outcome", "reason"),
    [
        ("FILLED", 0, "filled", "Filled"),
        ("CANCELLED", 10, "cancelled", "Cancelled"),
        ("CANCELLED", 4, "cancelled", "Partly filled, the rest cancelled"),
        ("CANCELLED_STP", 10, "cancelled", "Cancelled by self-trade prevention"),
        ("REJECTED_MARKET_CLOSED", 10, "rejected", "Rejected: rejected market closed"),
    ],
)
def test_terminal_statuses_remove_the_row_and_say_how_it_ended(
    state: AccountState, status: str, remaining: float, outcome: str, reason: str
) -> None:
    change, reconcile = state.apply_push(order("a", status, remaining=remaining, at=130))
    assert change.remove_orders == ["a"]
    assert "a" not in state.orders
    (closed,) = change.closed
    assert (closed["id"], closed["status"], closed["outcome"], closed["reason"]) == ("a", status, outcome, reason)
    assert closed["closed_at"] == 130.0
    assert closed["filled"] == str(10 - remaining)
    assert state.closed[0] is closed
    assert not reconcile


@pytest.mark.parametrize(
    "push",
    [
        {"status": "CANNOT_MODIFY_PARTIAL_FILL"},  # the order is unchanged, but how does it look now?
        {"status": "SOMETHING_QFEX_NEVER_DOCUMENTED"},
        {"status": "FILLED", "quantity_remaining": None},  # a fill that does not say whether it is done
        {"status": None},
        {"order_id": None},
    ],
)
def test_a_push_that_cannot_be_placed_asks_for_a_reconcile_and_changes_nothing(
    state: AccountState, push: dict[str, Any]
) -> None:
    before = dict(state.orders)
    change, reconcile = state.apply_push(order(push.pop("order_id", "a"), **{"at": 140, **push}))
    assert not change
    assert reconcile
    assert state.orders == before


def test_a_modify_with_a_new_id_replaces_the_one_order_it_can_only_be(state: AccountState) -> None:
    change, reconcile = state.apply_push(order("a2", "MODIFIED", at=150, price=186.0, client_order_id="desk-1"))
    assert reconcile  # "a" and "b" both match everything a modify keeps: ambiguous
    assert set(state.orders) == {"a", "b", "a2"}
    unique = AccountState(ACCOUNT, "Desk", seq=1)
    unique.apply_fetch(book(order("x", at=50, client_order_id="desk-1"), order("y", at=60, quantity=3, remaining=3)))
    change, reconcile = unique.apply_push(order("x2", "MODIFIED", at=150, price=186.0, client_order_id="desk-1"))
    assert not reconcile
    assert change.remove_orders == ["x"]
    assert [row["id"] for row in change.upsert_orders] == ["x2"]
    assert change.closed == []  # replaced, not closed
    assert unique.orders["x2"]["placed_at"] == 50.0


def test_late_or_duplicated_pushes_never_bring_back_what_is_newer(state: AccountState) -> None:
    state.apply_push(order("a", "FILLED", remaining=4, at=120))
    change, _ = state.apply_push(order("a", "ACK", at=50))  # an old copy, arriving late
    assert not change
    assert state.orders["a"]["quantity_remaining"] == "4"
    state.apply_push(order("b", "CANCELLED", at=130))
    change, _ = state.apply_push(order("b", "ACK", at=60))  # F8: a stale ACK of a removed order
    assert not change
    assert "b" not in state.orders


# --- the reconcile: a fetch merged with the pushes that arrived while it ran ---------------------------


def test_a_fetch_never_undoes_a_push_that_arrived_while_it_ran(state: AccountState) -> None:
    state.begin_fetch()
    state.apply_push(order("a", "FILLED", remaining=2, at=200))  # newer than the page that held "a"
    state.apply_push(order("b", "CANCELLED", at=201))
    state.apply_push(order("c", at=202))  # placed after its page was read
    change = state.apply_fetch(book(order("a", at=50), order("b", at=60), state=state))
    assert state.orders["a"]["quantity_remaining"] == "2"
    assert "b" not in state.orders
    assert "c" in state.orders
    assert not change  # the pushes already published all of it


def test_a_fetched_copy_newer_than_the_push_wins(state: AccountState) -> None:
    state.begin_fetch()
    state.apply_push(order("a", "FILLED", remaining=6, at=200))
    change = state.apply_fetch(book(order("a", "FILLED", remaining=3, at=210), order("b", at=60), state=state))
    assert state.orders["a"]["quantity_remaining"] == "3"
    assert [row["id"] for row in change.upsert_orders] == ["a"]


def test_an_order_moved_between_pages_by_an_event_is_kept(state: AccountState) -> None:
    """QFEX may order pages by latest update: an order filled while the pages are read jumps to a page
    already read and is absent from the fetch. Its push proves it is still open."""
    state.begin_fetch()
    state.apply_push(order("a", "FILLED", remaining=9, at=200))
    change = state.apply_fetch(book(order("b", at=60), state=state))  # "a" missing from every page
    assert "a" in state.orders
    assert change.remove_orders == []


def test_an_order_absent_and_untouched_while_the_pages_were_read_is_proven_gone(state: AccountState) -> None:
    state.begin_fetch()
    change = state.apply_fetch(book(order("b", at=60), state=state, fetched_at=600.0))
    assert change.remove_orders == ["a"]
    (closed,) = change.closed
    assert (closed["id"], closed["outcome"], closed["closed_at"]) == ("a", "closed", 600.0)


def test_a_fetch_started_before_a_push_closed_an_order_does_not_bring_it_back(state: AccountState) -> None:
    state.apply_push(order("a", "CANCELLED", at=300))
    state.begin_fetch()  # QFEX's pages still held "a" when they were read (as old as before the cancel)
    change = state.apply_fetch(book(order("a", at=50), order("b", at=60), state=state))
    assert "a" not in state.orders
    assert not change


def test_an_order_a_fetch_once_missed_comes_back_with_the_next(state: AccountState) -> None:
    state.begin_fetch()
    state.apply_fetch(book(order("b", at=60), state=state))
    state.begin_fetch()
    change = state.apply_fetch(book(order("a", at=50), order("b", at=60), state=state))
    assert [row["id"] for row in change.upsert_orders] == ["a"]


def test_unchanged_records_keep_their_row_objects(state: AccountState) -> None:
    row = state.orders["b"]
    state.begin_fetch()
    change = state.apply_fetch(book(order("a", at=50), order("b", at=60), state=state))
    assert state.orders["b"] is row
    assert not change


def test_a_modify_finds_its_order_after_fetches_changed_added_and_removed_others() -> None:
    """The signature index follows each fetch's changes (not rebuilt): it must match the rows exactly."""
    account = AccountState(ACCOUNT, "Desk", seq=1)
    account.apply_fetch(book(order("x", at=50, client_order_id="d1"), order("y", at=60, client_order_id="d2")))
    account.begin_fetch()
    account.apply_push(order("z", at=70, client_order_id="d3"))  # pushed while the pages were read
    account.apply_fetch(
        book(
            order("x", at=80, client_order_id="d1", quantity=4, remaining=4),  # changed: new signature
            order("w", at=81, client_order_id="d4"),  # new
            state=account,
        )  # "y" is gone, "z" was not on the pages yet
    )
    assert set(account.orders) == {"x", "w", "z"}
    assert account._by_signature == _index(account.orders)
    change, reconcile = account.apply_push(
        order("x2", "MODIFIED", at=150, price=186.0, client_order_id="d1", quantity=4, remaining=4)
    )
    assert not reconcile
    assert change.remove_orders == ["x"]
    change, reconcile = account.apply_push(order("y2", "MODIFIED", at=151, client_order_id="d2"))
    assert reconcile, "the removed order's old signature must be gone from the index"


# --- a follower's mirror -------------------------------------------------------------------------------


def test_published_diffs_apply_in_seq_order_and_a_gap_is_reported() -> None:
    mirror = AccountState(ACCOUNT, "Desk", seq=5)
    diff = {
        "seq": 6,
        "as_of": 9.0,
        "upsert": {"orders": [{"id": "n", "symbol": "X"}], "twaps": [{"id": "t"}]},
        "remove": {"orders": [], "twaps": []},
        "closed": [{"id": "old1"}, {"id": "old2"}],
    }
    mirror.apply_published(diff)
    assert (mirror.seq, set(mirror.orders), set(mirror.twaps)) == (6, {"n"}, {"t"})
    assert [row["id"] for row in mirror.closed] == ["old2", "old1"]  # newest first
    mirror.apply_published(diff)  # already applied: ignored
    assert mirror.seq == 6
    with pytest.raises(Gap):
        mirror.apply_published({**diff, "seq": 8})
