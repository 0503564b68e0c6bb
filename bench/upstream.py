"""P1 and P6: the protocol client's full fetch against the simulator.

P1 compares our client (connect + auth + full paged fetch + close) with a bare websocket-client
script doing what QFEX's own Python sample does (connect + auth + one get_user_orders), on the same
simulator with 1000 orders. Samples alternate between the two so drift hits both alike.
P6 fetches 10 000 orders with 20 ms of simulated latency per page.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

import websocket

from bench.stats import ratio, summary_ms
from orders.qfex import Credentials, QfexSession, auth_message, fetch_open_orders
from orders.simulator import SimAccount, Simulator

# Simulator-only keys: they open nothing on the real QFEX.
ACCOUNT = SimAccount(public_key="qfex_pub_bench", secret="qfex_secret_bench_only", orders=1000, twaps=3)
BIG_ACCOUNT = SimAccount(public_key="qfex_pub_bench_big", secret="qfex_secret_bench_big", orders=10_000, twaps=5)


def _sample_script(url: str, *, skip_utf8_validation: bool) -> int:
    """Connect, authenticate and read one page the way QFEX's sample does, with websocket-client."""
    ws = websocket.create_connection(
        f"{url}/?api_key={ACCOUNT.public_key}", timeout=10, skip_utf8_validation=skip_utf8_validation
    )
    try:
        ws.send(json.dumps(auth_message(Credentials(ACCOUNT.public_key, ACCOUNT.secret))))
        json.loads(ws.recv())
        ws.send(json.dumps({"type": "get_user_orders", "params": {"limit": 1000, "offset": 0}}))
        reply = json.loads(ws.recv())
        return len(reply["all_orders_response"]["orders"])
    finally:
        ws.close()


def _our_fetch(url: str, account: SimAccount) -> int:
    with QfexSession(url, Credentials(account.public_key, account.secret), timeout=30) as session:
        return len(fetch_open_orders(session).orders)


def _time(fn: Callable[[], int], expected: int) -> float:
    start = time.perf_counter()
    count = fn()
    elapsed = time.perf_counter() - start
    if count != expected:
        raise RuntimeError(f"fetched {count} orders, expected {expected}")
    return elapsed


def p1(samples: int) -> list[str]:
    with Simulator([ACCOUNT], seed=11) as sim:
        sim.faults.rate_limit_weight = 1e12  # the benchmark measures speed, not the budget
        url = sim.url
        ours: list[float] = []
        sample: list[float] = []
        sample_fast: list[float] = []
        for _ in range(3):  # warm-up: imports, caches
            _our_fetch(url, ACCOUNT)
            _sample_script(url, skip_utf8_validation=False)
        for _ in range(samples):
            ours.append(_time(lambda: _our_fetch(url, ACCOUNT), 1000))
            sample.append(_time(lambda: _sample_script(url, skip_utf8_validation=False), 1000))
            sample_fast.append(_time(lambda: _sample_script(url, skip_utf8_validation=True), 1000))
    return [
        "P1 full fetch of 1000 orders (connect + auth + fetch + close), goal ≤ 1.10× the sample script",
        f"   qfexdash client:                          {summary_ms(ours)}",
        f"   QFEX sample script (websocket-client):    {summary_ms(sample)}",
        f"   same script, skip_utf8_validation=True:   {summary_ms(sample_fast)}",
        f"   ratio vs sample script: {ratio(ours, sample):.2f}×; vs the faster script: {ratio(ours, sample_fast):.2f}×",
    ]


def p6(samples: int, page_latency: float = 0.020) -> list[str]:
    with Simulator([BIG_ACCOUNT], seed=12, page_latency=page_latency) as sim:
        sim.faults.rate_limit_weight = 1e12
        times: list[float] = []
        pages: list[int] = []
        for _ in range(samples):
            before = sim.request_count("get_user_orders")
            times.append(_time(lambda: _our_fetch(sim.url, BIG_ACCOUNT), 10_000))
            pages.append(sim.request_count("get_user_orders") - before)
    used = max(pages)
    minimum = math.ceil(10_000 / 1000) + 1  # ten full pages and the short one that ends the list
    budget = 1.2 * used * page_latency + 0.100
    return [
        f"P6 full fetch of 10 000 orders, {page_latency * 1000:.0f} ms per page: {summary_ms(times)}",
        f"   pages requested {used} (minimum possible {minimum}); goal ≤ 1.2 × pages × latency + 100 ms"
        f" = {budget * 1000:.0f} ms → {'met' if max(times) <= budget else 'NOT met'} (worst sample"
        f" {max(times) * 1000:.0f} ms)",
    ]
