"""Issue 14, honest states: loading says how far it is and shows no data time; stale dims the rows and says
why, since when and when the next try is (one countdown); error says what to do; on All accounts each
account has its own state and only its rows dim."""

from __future__ import annotations

import pytest

from bench.livepage import (
    AS_OF,
    live_status,
    order_row,
    snapshot,
    snapshot_parts,
    status,
    twap_row,
)

pytestmark = pytest.mark.browser


def _rows(n: int, account: int = 7) -> list[dict]:
    return [order_row(i, account=account) for i in range(n)]


def _countdowns(page) -> int:
    """How many "Next try in" countdowns the page shows."""
    return page.locator("main").evaluate("el => (el.innerText.match(/Next try in/g) || []).length")


def test_loading_says_how_far_and_shows_no_data_time_until_complete(live_site) -> None:
    parts = snapshot_parts(1, _rows(4000), [twap_row(1)], rows_per_message=500)
    assert len(parts) == 9
    site = live_site(lambda _: parts[:3])  # the rest comes when the test sends it
    page = site.open()
    site.wait("() => document.getElementById('orders-count').textContent === 'Loading 1,499 of 4,000 orders'")
    assert page.locator("body").get_attribute("data-state") == "loading"
    assert page.locator("#live-status-badge").text_content() == "Loading"
    assert page.locator("#live-status-reason").text_content() == "Loading 1,499 of 4,000 orders"
    assert page.locator("#twaps-count").text_content() == "Loading…"  # never "0 TWAPs" while loading
    assert page.locator("#live-status-time").text_content() == ""  # no freshness time yet
    assert "3,000" not in page.locator("main").inner_text()

    for part in parts[3:]:
        site.ws.send(part)
    site.wait_seq(1)
    assert page.locator("#orders-count").text_content() == "4,000 orders"
    assert page.locator("#twaps-count").text_content() == "1 TWAP"
    assert page.locator("#live-status-time").text_content().startswith("Data as of ")


def test_before_the_first_data_nothing_says_zero_or_fresh(live_site) -> None:
    empty = snapshot(1, [], as_of=None, status=live_status(None, state="connecting", reason="Connecting to QFEX…"))
    site = live_site(lambda _: [empty])
    page = site.open()
    site.wait_seq(1)
    assert page.locator("#orders-count").text_content() == "Loading…"
    assert page.locator("#twaps-count").text_content() == "Loading…"
    assert page.locator("#live-status-badge").text_content() == "Connecting"
    assert page.locator("#live-status-time").text_content() == ""


def test_stale_dims_the_rows_and_says_why_since_when_with_one_countdown(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(3))])
    page = site.open()
    site.wait_seq(1)
    row = page.locator("#orders-table .tabulator-row[data-id='ord-00001']")
    live_color = row.locator("[tabulator-field='symbol']").evaluate("el => getComputedStyle(el).color")

    retry = site.js("() => Date.now() / 1000") + 30
    # A server that still writes a countdown into its reason: the page shows only its own.
    reason = "QFEX did not answer within 10 s; next try in 7 s."
    site.ws.send(status(1, "stale", reason=reason, as_of=AS_OF - 40, next_retry_at=retry, since=AS_OF - 35, failures=3))
    site.wait("() => document.body.dataset.state === 'stale'")
    assert page.locator("#live-status-reason").text_content() == "QFEX did not answer within 10 s."
    since = page.locator("#live-status-since").text_content()
    assert since.startswith("since ")
    assert since.endswith(", 3 failed tries)")
    assert _countdowns(page) == 1
    assert "row-stale" in row.get_attribute("class")
    stale_color = row.locator("[tabulator-field='symbol']").evaluate("el => getComputedStyle(el).color")
    assert stale_color != live_color

    site.ws.send(status(1, "live", as_of=AS_OF + 5))
    site.wait("() => document.body.dataset.state === 'live'")
    assert "row-stale" not in row.get_attribute("class")


def test_error_shows_the_reason_and_what_to_do(live_site) -> None:
    site = live_site(lambda _: [snapshot(1, _rows(2))])
    page = site.open()
    site.wait_seq(1)
    site.ws.send(
        status(
            1,
            "error",
            reason="QFEX refused the connection 12 times in a row.",
            action="Check that QFEX is reachable from the server, then press Refresh.",
            failures=12,
            since=AS_OF - 75,
        )
    )
    site.wait("() => document.body.dataset.state === 'error'")
    assert page.locator("#live-status-badge").text_content() == "Error"
    assert page.locator("#live-status-reason").text_content() == "QFEX refused the connection 12 times in a row."
    action = page.locator("#live-status-action")
    assert action.text_content() == "What to do: Check that QFEX is reachable from the server, then press Refresh."
    assert action.is_visible()
    assert "then press Refresh" in page.locator("#live-announcer").text_content()  # said, not only shown
    assert page.locator("#live-status").evaluate("el => getComputedStyle(el).borderTopWidth") == "2px"


def test_all_accounts_each_account_has_its_own_state_and_only_its_rows_dim(live_site) -> None:
    def on_connect(_: int) -> list[dict]:
        return [snapshot(1, _rows(3)), snapshot(5, _rows(2, account=8), account=8)]

    site = live_site(on_connect)
    page = site.open("/all")
    site.wait("() => window.qfexLive.seqs[7] === 1 && window.qfexLive.seqs[8] === 5")
    chips = page.locator("#live-accounts .live-account")
    assert chips.count() == 2
    assert sorted(chips.locator(".state").all_text_contents()) == ["Live", "Live"]

    retry = site.js("() => Date.now() / 1000") + 30
    site.ws.send(status(5, "stale", reason="QFEX is not answering.", next_retry_at=retry, since=AS_OF - 10, account=8))
    site.wait("() => document.querySelector('#live-accounts [data-account=\"8\"]').dataset.state === 'stale'")
    eight = page.locator("#live-accounts [data-account='8']")
    assert eight.locator(".state").text_content() == "Stale"
    assert "QFEX is not answering." in eight.text_content()
    assert "Next try in" in eight.text_content()
    assert page.locator("#live-accounts [data-account='7'] .state").text_content() == "Live"
    assert _countdowns(page) == 1  # on the stale account's chip only
    # Only account 8's rows dim, and they say so in their Account cell.
    rows = page.locator("#orders-table .tabulator-row")
    dimmed = rows.evaluate_all("rs => rs.filter(r => r.classList.contains('row-stale')).length")
    assert dimmed == 2
    acct = page.locator("#orders-table .tabulator-row.row-stale [tabulator-field='account_label']").first
    assert "Stale" in acct.text_content()
    # The page's data time is that of the live account.
    assert page.locator("#live-status-time").text_content().startswith("Data as of ")
