"""Two real Daphne processes of one site on this machine's PostgreSQL and Redis, plus the simulator.

- Upstream traffic does not depend on the number of viewers or on how they spread over processes:
  the count of ``get_user_orders`` over the same number of reconcile intervals is the same with 1
  viewer as with 50 viewers on two processes (give or take the fetch at each end of the window).
- All those viewers see the same rows and seqs; the accounts page of a process that feeds nothing
  shows the owner's live state.
- Owner failover: the owning process is killed (SIGKILL: nothing released); the other process takes
  the lease once it expires, opens the one upstream session, and its viewers get a snapshot, then diffs.
"""

from __future__ import annotations

import functools
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import websocket

from bench.harness.cluster import ClusterSite
from bench.harness.pages import Page
from orders.simulator import SimAccount, Simulator

pytestmark = pytest.mark.services

PUBLIC_KEY = "qfex_pub_cluster_test"
SECRET = "qfex_secret_cluster_test_0123456789"
PATIENCE = 30.0
RECONCILE = 1.0  # QFEXDASH_RECONCILE_SECONDS of the site (ClusterSite's default)
WINDOW_INTERVALS = 8


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(accounts=[SimAccount(public_key=PUBLIC_KEY, secret=SECRET, orders=60, twaps=2)], seed=8) as s:
        yield s


@contextmanager
def running_site(services: dict[str, str], folder: Path, sim: Simulator, **settings: str) -> Iterator[ClusterSite]:
    cluster = ClusterSite(
        folder,
        sim.url,
        [(PUBLIC_KEY, SECRET)],
        processes=2,
        settings=settings,
        postgres_admin_url=services["postgres"],
        redis_url=services["redis"],
        patience=PATIENCE,
    )
    with cluster:
        try:
            yield cluster
        except BaseException:
            print(cluster.logs())  # shown by pytest when the test fails
            raise


@pytest.fixture
def site(services: dict[str, str], tmp_path: Path, sim: Simulator) -> Iterator[ClusterSite]:
    with running_site(services, tmp_path / "site", sim) as cluster:
        yield cluster


@pytest.fixture
def long_lease_site(services: dict[str, str], tmp_path: Path, sim: Simulator) -> Iterator[ClusterSite]:
    with running_site(services, tmp_path / "site", sim, QFEXDASH_LEASE_SECONDS="60") as cluster:
        yield cluster


def truth(sim: Simulator) -> set[str]:
    return {order["order_id"] for order in sim.open_orders(PUBLIC_KEY)}


def shows_truth(page: Page, sim: Simulator) -> bool:
    return page.seq is not None and page.state == "live" and set(page.orders) == truth(sim)


def open_page(site: ClusterSite, process: int, sim: Simulator) -> Page:
    page = Page(site.open(process))
    page.follow_until(lambda: shows_truth(page, sim), PATIENCE, f"a page on process {process} shows the orders")
    return page


def read_for(page: Page, seconds: float) -> None:
    """Keep one page reading (as a browser does) for a while; the window the counts are taken over."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        page.ws.settimeout(remaining)
        try:
            page.receive()
        except websocket.WebSocketTimeoutException:
            return


def account_list_state(site: ClusterSite, process: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{site.nodes[process].port}/", headers={"Cookie": f"sessionid={site.session}"}
    )
    with urllib.request.urlopen(request, timeout=PATIENCE) as response:  # noqa: S310 (loopback, http)
        return response.read().decode()


def test_upstream_requests_do_not_depend_on_viewers_or_processes(site: ClusterSite, sim: Simulator) -> None:
    first = open_page(site, 0, sim)
    window = WINDOW_INTERVALS * RECONCILE

    # One viewer: the requests QFEX sees over a window of reconcile intervals. Every fetch publishes
    # exactly one message (a diff or a heartbeat), which gives the requests per fetch.
    before, messages = sim.request_count("get_user_orders"), first.messages
    read_for(first, window)
    alone = sim.request_count("get_user_orders") - before
    fetches = first.messages - messages
    assert fetches >= WINDOW_INTERVALS - 2, f"only {fetches} fetches in {WINDOW_INTERVALS} reconcile intervals"
    per_fetch = max(1, round(alone / fetches))

    # Fifty viewers over two processes, connecting inside a window of (at least) the same length.
    before = sim.request_count("get_user_orders")
    started = time.monotonic()
    pages = [first]
    for n in range(49):
        pages.append(open_page(site, 1 if n % 2 == 0 else 0, sim))
    crowd_window = max(window, time.monotonic() - started + 2 * RECONCILE)  # a slow machine connects slowly
    read_for(first, crowd_window - (time.monotonic() - started))
    crowd = sim.request_count("get_user_orders") - before
    expected = alone * crowd_window / window

    # The windows may differ by the fetch at each end (the coalescing rule: at most one fetch per
    # reconcile interval unless something changed), each of `per_fetch` requests.
    print(f"get_user_orders: {alone} in {window:g} s with 1 viewer; {crowd} in {crowd_window:.1f} s with 50")
    assert abs(crowd - expected) <= 2 * per_fetch, f"{alone} requests with 1 viewer, {crowd} with 50 (≈{expected:.0f})"
    assert sim.handshake_count == 1, "more than one upstream session was opened"

    # Every viewer, on either process, follows the same change to the same rows and seq.
    sim.add_orders(PUBLIC_KEY, 3)
    for page in pages:
        page.follow_until(functools.partial(shows_truth, page, sim), PATIENCE, "every page shows the new orders")
    assert len({page.seq for page in pages}) == 1
    assert sim.authenticated_connections(PUBLIC_KEY) == 1

    # The accounts page of either process shows the owner's live state (one process feeds nothing).
    for process in (0, 1):
        assert "state-live" in account_list_state(site, process)
    for page in pages:
        page.ws.close()


def test_the_other_process_takes_over_when_the_owner_dies(site: ClusterSite, sim: Simulator) -> None:
    owner_page = open_page(site, 0, sim)  # process 0 is asked first: it takes the lease
    follower = open_page(site, 1, sim)
    old_seq = follower.seq
    assert old_seq is not None
    snapshots_before = follower.snapshots

    killed_at = time.monotonic()
    site.kill_process(0)
    owner_page.ws.close()
    sim.add_orders(PUBLIC_KEY, 2)

    # Process 1 takes the lease once it expires, fetches, and its page resyncs to a snapshot.
    follower.follow_until(
        lambda: follower.snapshots > snapshots_before and shows_truth(follower, sim),
        PATIENCE,
        "the surviving process's page gets a fresh snapshot with the new orders",
    )
    print(f"owner killed: the other process's page had a fresh snapshot {time.monotonic() - killed_at:.1f} s later")
    assert follower.seq is not None
    assert follower.seq > old_seq
    # ...and then diffs, from the one upstream session of the new owner.
    diffs = follower.diffs
    sim.add_orders(PUBLIC_KEY, 1)
    follower.follow_until(lambda: follower.diffs > diffs and shows_truth(follower, sim), PATIENCE, "a diff arrives")
    assert sim.authenticated_connections(PUBLIC_KEY) == 1

    # The dead process comes back: it follows the new owner instead of opening a second session.
    site.start_process(0)
    again = open_page(site, 0, sim)
    assert set(again.orders) == set(follower.orders)
    assert sim.authenticated_connections(PUBLIC_KEY) == 1
    for page in (again, follower):
        page.ws.close()


def test_a_stopped_owner_hands_over_at_once(long_lease_site: ClusterSite, sim: Simulator) -> None:
    """SIGTERM (a restart): the owner releases its lease on the way out, so with a 60 s lease the other
    process still takes over long before the lease could have expired."""
    site = long_lease_site
    owner_page = open_page(site, 0, sim)
    follower = open_page(site, 1, sim)
    snapshots_before = follower.snapshots
    site.stop_process(0)
    owner_page.ws.close()
    sim.add_orders(PUBLIC_KEY, 2)
    follower.follow_until(
        lambda: follower.snapshots > snapshots_before and shows_truth(follower, sim),
        20.0,  # a third of the lease: only a released lease can be taken this soon
        "the surviving process to take over",
    )
    assert sim.authenticated_connections(PUBLIC_KEY) == 1
    follower.ws.close()
