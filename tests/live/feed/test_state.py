"""AccountState: the merge rule (docs/qfex-protocol.md §4.4) — what a push, a read and a published diff do
to an account's rows (pure, no I/O). Random interleavings: tests/live/feed/test_merge_properties.py."""

from __future__ import annotations

from typing import Any

import pytest

from orders.live.feed import lifecycle
from orders.live.feed.state import RELISTED, REMOVED, AccountState, Correction, FetchedBook, Gap
from orders.live.rows import build_order_rows, build_twap_rows
from orders.qfex.records import parse_order

ACCOUNT = 7


def order(order_id: str, status: str = "ACK", *, remaining: float | None = 10, quantity: float = 10,
          at: float | None = 100.0, **fields: Any) -> Any:  # fmt: skip
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
    merged = {**base, **fields}
    return parse_order({name: value for name, value in merged.items() if value is not None})


def book(*orders: Any, state: AccountState | None = None, fetched_at: float = 500.0) -> FetchedBook:
    previous = state.previous_rows() if state is not None else (None, None)
    return FetchedBook(
        build_order_rows(orders, ACCOUNT, "Desk", previous[0]),
        build_twap_rows([], ACCOUNT, "Desk", previous[1]),
        fetched_at,
        1,
    )


def read(state: AccountState, *orders: Any, fetched_at: float = 500.0) -> Any:
    """One complete read: begun now, the pages listing ``orders``."""
    state.begin_fetch()
    return state.apply_fetch(book(*orders, state=state, fetched_at=fetched_at))


def closed_ids(state: AccountState) -> list[str]:
    return [row["id"] for row in state.closed]


@pytest.fixture
def state() -> AccountState:
    account = AccountState(ACCOUNT, "Desk", seq=10)
    read(account, order("a", at=50), order("b", at=60))
    return account


# --- live pushes ----------------------------------------------------------------------------------


def test_an_ack_of_a_new_order_adds_its_row_and_asks_a_read_what_else_changed(state: AccountState) -> None:
    change, reconcile = state.apply_push(order("c", at=101))
    assert [row["id"] for row in change.upsert_orders] == ["c"]
    assert reconcile  # an unknown id: a prompt read follows (coalesced)
    assert state.orders["c"]["placed_at"] == 101.0


def test_a_partial_fill_of_a_resting_order_updates_the_row_and_keeps_the_placement_time(state: AccountState) -> None:
    placed = state.orders["a"]["placed_at"]
    change, reconcile = state.apply_push(order("a", "FILLED", remaining=4, at=120))
    assert change.upsert_orders[0]["quantity_remaining"] == "4"
    assert change.remove_orders == []
    assert change.closed == []
    assert state.orders["a"]["placed_at"] == placed == 50.0
    assert not reconcile


def test_pushes_apply_in_arrival_order_whatever_their_update_time(state: AccountState) -> None:
    """Pushes are ordered by arrival, never by QFEX's timestamps (which pushes may lack)."""
    state.apply_push(order("a", "FILLED", remaining=4, at=120))
    change, _ = state.apply_push(order("a", "MODIFIED", remaining=4, at=90, price=180.0))
    assert state.orders["a"]["price"] == "180.0"
    assert change.upsert_orders == [state.orders["a"]]
    change, _ = state.apply_push(order("a", "MODIFIED", remaining=4, at=None, price=181.0))
    assert state.orders["a"]["price"] == "181.0"


# --- finding 1: refusals never close ------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    ["REJECTED", "RATE_LIMITED", "FAILED_MARGIN_CHECK", "INVALID_TICK_SIZE_PRECISION_PRICE",
     "PRICE_LESS_THAN_MIN_PRICE", "CANNOT_MODIFY_NO_SUCH_ORDER", "CANNOT_MODIFY_PARTIAL_FILL", "NO_SUCH_ORDER",
     "REJECTED_MARKET_CLOSED"],
)  # fmt: skip
def test_a_refusal_under_a_live_id_changes_nothing_and_asks_for_a_read(state: AccountState, status: str) -> None:
    before = dict(state.orders)
    change, reconcile = state.apply_push(order("a", status, remaining=0, at=130, price=1.0))
    assert not change
    assert state.orders == before
    assert closed_ids(state) == []
    assert reconcile


def test_a_refusal_of_an_unknown_id_adds_nothing_and_asks_nothing(state: AccountState) -> None:
    change, reconcile = state.apply_push(order("never-seen", "REJECTED", at=130))
    assert not change
    assert "never-seen" not in state.orders
    assert closed_ids(state) == []
    assert not reconcile


def test_a_status_the_docs_do_not_list_is_a_refusal_that_is_reported(state: AccountState) -> None:
    change, reconcile = state.apply_push(order("a", "SOMETHING_QFEX_NEVER_DOCUMENTED", remaining=0, at=140))
    assert not change
    assert change.unknown_status == "SOMETHING_QFEX_NEVER_DOCUMENTED"
    assert "a" in state.orders
    assert reconcile


def test_a_refusal_does_not_count_as_a_push_for_the_read_in_flight(state: AccountState) -> None:
    state.begin_fetch()
    state.apply_push(order("a", "CANNOT_MODIFY_PARTIAL_FILL", at=150))
    change = state.apply_fetch(book(order("b", at=60), state=state))  # "a" is gone at QFEX
    assert change.remove_orders == ["a"]


@pytest.mark.parametrize("push", [{"status": None}, {"order_id": None}])
def test_a_push_without_an_id_or_status_changes_nothing_and_asks_for_a_read(
    state: AccountState, push: dict[str, Any]
) -> None:
    before = dict(state.orders)
    change, reconcile = state.apply_push(order(push.pop("order_id", "a"), **{"at": 140, **push}))
    assert not change
    assert reconcile
    assert state.orders == before


# --- terminal pushes, and finding 5: IOC/FOK/MARKET partial fills ---------------------------------------


@pytest.mark.parametrize(
    ("status", "remaining", "fields", "outcome", "reason"),
    [
        ("FILLED", 0, {}, "filled", "Filled"),
        ("CANCELLED", 10, {}, "cancelled", "Cancelled"),
        ("CANCELLED", 4, {}, "cancelled", "Partly filled, the rest cancelled"),
        ("CANCELLED_STP", 10, {}, "cancelled", "Cancelled by self-trade prevention"),
        ("IOC_CANCELLED", 10, {}, "cancelled", "Cancelled: immediate-or-cancel found nothing to fill"),
        ("EXPIRED", 10, {}, "cancelled", "Expired"),
        ("FILLED", 4, {"time_in_force": "IOC"}, "cancelled", "Partly filled, the rest cancelled (immediate-or-cancel)"),
        ("FILLED", 4, {"time_in_force": "FOK"}, "cancelled", "Partly filled, the rest cancelled (fill-or-kill)"),
        ("FILLED", 4, {"type": "MARKET", "time_in_force": None}, "cancelled",
         "Partly filled, the rest cancelled (market order)"),
    ],
)  # fmt: skip
def test_terminal_pushes_close_the_order_and_say_how_it_ended(
    state: AccountState, status: str, remaining: float, fields: dict[str, Any], outcome: str, reason: str
) -> None:
    change, reconcile = state.apply_push(order("a", status, remaining=remaining, at=130, **fields))
    assert change.remove_orders == ["a"]
    assert "a" not in state.orders
    (closed,) = change.closed
    assert (closed["id"], closed["status"], closed["outcome"], closed["reason"]) == ("a", status, outcome, reason)
    assert closed["closed_at"] == 130.0
    assert closed["filled"] == str(10 - remaining)
    assert state.closed[0] is closed
    assert not reconcile


def test_an_ioc_partial_fill_closes_even_when_the_push_leaves_out_the_time_in_force() -> None:
    account = AccountState(ACCOUNT, "Desk")
    read(account, order("ioc", time_in_force="IOC"))
    change, _ = account.apply_push(order("ioc", "FILLED", remaining=3, time_in_force=None))
    assert change.remove_orders == ["ioc"]
    assert change.closed[0]["reason"] == "Partly filled, the rest cancelled (immediate-or-cancel)"


def test_a_partial_fill_whose_time_in_force_is_unknown_stays_open_and_asks_for_a_read() -> None:
    account = AccountState(ACCOUNT, "Desk")
    change, reconcile = account.apply_push(order("x", "FILLED", remaining=3, time_in_force=None))
    assert [row["id"] for row in change.upsert_orders] == ["x"]
    assert change.closed == []
    assert reconcile
    change, reconcile = account.apply_push(order("x", "FILLED", remaining=None, time_in_force="GTC"))
    assert change.upsert_orders
    assert reconcile


def test_a_terminal_push_for_an_unknown_id_adds_a_closed_row_but_never_an_open_one(state: AccountState) -> None:
    change, _ = state.apply_push(order("z", "CANCELLED", at=130))
    assert change.upsert_orders == []
    assert change.remove_orders == []
    assert [row["id"] for row in change.closed] == ["z"]
    assert "z" not in state.orders


# --- finding 2: a close gives way to the next complete read that began after it ---------------------------


def test_a_close_is_final_against_the_read_that_began_before_it(state: AccountState) -> None:
    state.begin_fetch()  # QFEX's pages still held "a" when they were read
    state.apply_push(order("a", "CANCELLED", at=None))
    change = state.apply_fetch(book(order("a", at=50), order("b", at=60), state=state))
    assert "a" not in state.orders
    assert not change  # the push already published it
    assert closed_ids(state) == ["a"]


def test_a_close_gives_way_to_the_next_complete_read_that_lists_the_order(state: AccountState) -> None:
    """Without update_time anywhere (QFEX's push examples carry none), a wrong close must not hide an order."""
    state.apply_push(order("a", "CANCELLED", at=None))  # wrong, or about another order: QFEX still lists it
    change = read(state, order("a", at=None), order("b", at=60))
    assert [row["id"] for row in change.upsert_orders] == ["a"]
    assert change.withdraw_closed == ["a"]  # its Closed row is withdrawn, on the server and in the page
    assert change.corrections == [Correction(RELISTED, "a")]
    assert closed_ids(state) == []
    assert not read(state, order("a", at=None), order("b", at=60))  # settled


def test_a_close_confirmed_by_a_read_stays_final_against_later_live_pushes(state: AccountState) -> None:
    state.apply_push(order("a", "FILLED", remaining=0, at=None))
    read(state, order("b", at=60))
    change, _ = state.apply_push(order("a", "ACK", at=None))  # a late, stale ACK
    assert not change
    assert "a" not in state.orders
    assert closed_ids(state) == ["a"]


# --- live pushes against reads -----------------------------------------------------------------------------


def test_an_order_pushed_live_during_a_read_keeps_its_pushed_state(state: AccountState) -> None:
    state.begin_fetch()
    state.apply_push(order("a", "FILLED", remaining=2, at=200))  # newer than the page that held "a"
    state.apply_push(order("c", at=202))  # placed after its page was read
    change = state.apply_fetch(book(order("a", at=50), order("b", at=60), state=state))
    assert state.orders["a"]["quantity_remaining"] == "2"
    assert "c" in state.orders
    assert not change  # the pushes already published all of it


def test_a_pushed_state_gives_way_to_the_next_read(state: AccountState) -> None:
    state.apply_push(order("a", "FILLED", remaining=6, at=None))
    change = read(state, order("a", "FILLED", remaining=3, at=None), order("b", at=60))
    assert state.orders["a"]["quantity_remaining"] == "3"
    assert [row["id"] for row in change.upsert_orders] == ["a"]
    assert change.corrections == []


def test_an_order_moved_between_pages_by_an_event_is_kept(state: AccountState) -> None:
    """QFEX may order pages by latest update: an order filled while the pages are read jumps to a page
    already read and is absent from the read. Its push, recorded against the read, keeps it."""
    state.begin_fetch()
    state.apply_push(order("a", "FILLED", remaining=9, at=200))
    change = state.apply_fetch(book(order("b", at=60), state=state))  # "a" missing from every page
    assert "a" in state.orders
    assert change.remove_orders == []


def test_an_order_absent_and_not_pushed_since_the_read_began_is_gone(state: AccountState) -> None:
    change = read(state, order("b", at=60), fetched_at=600.0)
    assert change.remove_orders == ["a"]
    (closed,) = change.closed
    assert (closed["id"], closed["outcome"], closed["closed_at"]) == ("a", "closed", 600.0)
    assert closed["reason"] == lifecycle.GONE_REASON
    assert change.corrections == []  # no push said anything about it


def test_an_order_a_push_kept_and_the_next_read_no_longer_lists_is_a_correction(state: AccountState) -> None:
    state.apply_push(order("a", "MODIFIED", at=None, price=186.0))
    change = read(state, order("b", at=60))
    assert change.remove_orders == ["a"]
    assert change.corrections == [Correction(REMOVED, "a")]


def test_an_incomplete_read_removes_nothing(state: AccountState) -> None:
    state.begin_fetch()
    state.abandon_fetch()
    assert set(state.orders) == {"a", "b"}
    change = read(state, order("a", at=50), order("b", at=60))
    assert not change


def test_an_order_a_read_once_missed_comes_back_with_the_next(state: AccountState) -> None:
    read(state, order("b", at=60))
    change = read(state, order("a", at=50), order("b", at=60))
    assert [row["id"] for row in change.upsert_orders] == ["a"]
    assert change.withdraw_closed == ["a"]
    assert closed_ids(state) == []


def test_unchanged_records_keep_their_row_objects(state: AccountState) -> None:
    row = state.orders["b"]
    change = read(state, order("a", at=50), order("b", at=60))
    assert state.orders["b"] is row
    assert not change


# --- finding 3: a modify under a new id guesses nothing ---------------------------------------------------


def test_a_modify_under_a_new_id_removes_no_other_order() -> None:
    """Shrinking order A from 10 to 5 makes it look like order B of size 5; B must stay."""
    account = AccountState(ACCOUNT, "Desk")
    read(account, order("A", quantity=10, remaining=10, client_order_id="d"), order("B", quantity=5, remaining=5,
                                                                                   client_order_id="d"))  # fmt: skip
    change, reconcile = account.apply_push(order("A2", "MODIFIED", quantity=5, remaining=5, client_order_id="d"))
    assert [row["id"] for row in change.upsert_orders] == ["A2"]
    assert change.remove_orders == []
    assert change.closed == []
    assert reconcile
    change = read(account, order("A2", "MODIFIED", quantity=5, remaining=5, client_order_id="d"),
                  order("B", quantity=5, remaining=5, client_order_id="d"))  # fmt: skip
    assert change.remove_orders == ["A"]  # the read, not a guess, removes the replaced id
    assert change.closed[0]["outcome"] == "closed"
    assert "modified under a new id" in change.closed[0]["reason"]
    assert set(account.orders) == {"A2", "B"}


def test_a_modify_keeping_its_id_updates_the_row(state: AccountState) -> None:
    change, reconcile = state.apply_push(order("a", "MODIFIED", at=None, price=180.0))
    assert [row["price"] for row in change.upsert_orders] == ["180.0"]
    assert not reconcile


# --- finding 4: late pushes after a read -------------------------------------------------------------------


def test_a_late_live_push_after_a_read_proved_the_order_gone_shows_it_unconfirmed(state: AccountState) -> None:
    read(state, order("b", at=60))  # "a" was cancelled at QFEX; its pushes are late
    assert closed_ids(state) == ["a"]
    change, reconcile = state.apply_push(order("a", "ACK", at=None))
    assert reconcile  # a prompt read settles it
    (row,) = change.upsert_orders
    assert row["unconfirmed"] is True
    assert change.closed == []  # never a second Closed row
    change, _ = state.apply_push(order("a", "CANCELLED", at=None))  # the late cancel
    assert change.remove_orders == ["a"]
    assert [row["reason"] for row in change.closed] == ["Cancelled"]  # replaces its one Closed row
    assert closed_ids(state) == ["a"]
    assert not read(state, order("b", at=60))


def test_an_unconfirmed_order_the_prompt_read_does_not_list_is_removed_again_with_one_closed_row(
    state: AccountState,
) -> None:
    read(state, order("b", at=60))
    state.apply_push(order("a", "FILLED", remaining=4, at=None))
    change = read(state, order("b", at=60))
    assert change.remove_orders == ["a"]
    assert change.closed == []  # it kept its Closed row
    assert closed_ids(state) == ["a"]


def test_an_unconfirmed_order_the_prompt_read_lists_is_confirmed(state: AccountState) -> None:
    read(state, order("b", at=60))
    state.apply_push(order("a", "FILLED", remaining=4, at=None))
    change = read(state, order("a", "FILLED", remaining=4, at=None), order("b", at=60))
    assert [row.get("unconfirmed") for row in change.upsert_orders] == [None]
    assert change.withdraw_closed == ["a"]
    assert closed_ids(state) == []


def test_a_read_that_began_before_an_unconfirmed_push_keeps_the_row_marked(state: AccountState) -> None:
    read(state, order("b", at=60))
    state.begin_fetch()
    state.apply_push(order("a", "ACK", at=None))
    change = state.apply_fetch(book(order("b", at=60), state=state))
    assert state.orders["a"]["unconfirmed"] is True
    assert change.remove_orders == []


def test_duplicated_terminal_pushes_keep_one_closed_row(state: AccountState) -> None:
    for _ in range(3):
        state.apply_push(order("a", "CANCELLED", at=None))
    assert closed_ids(state) == ["a"]


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


def test_a_mirror_keeps_one_closed_row_per_order_and_withdraws_them() -> None:
    mirror = AccountState(ACCOUNT, "Desk", seq=5)
    empty: dict[str, Any] = {"upsert": {"orders": [], "twaps": []}, "remove": {"orders": [], "twaps": [], "closed": []}}
    mirror.apply_published({**empty, "seq": 6, "closed": [{"id": "x", "reason": "closed"}, {"id": "y"}]})
    mirror.apply_published({**empty, "seq": 7, "closed": [{"id": "x", "reason": "Cancelled"}]})
    assert [(row["id"], row.get("reason")) for row in mirror.closed] == [("x", "Cancelled"), ("y", None)]
    withdraw = {**empty, "remove": {"orders": [], "twaps": [], "closed": ["x"]}}
    mirror.apply_published({**withdraw, "seq": 8, "upsert": {"orders": [{"id": "x"}], "twaps": []}})
    assert [row["id"] for row in mirror.closed] == ["y"]
    assert "x" in mirror.orders
