"""The soak's upstream faults: what the exchange (the simulator) does wrong, F1-F8, F11 and F12.

Each fault is switched on through the simulator's ``faults`` switches (some in steps over the fault's
time), healed by switching them off, and judged by its own bound where it has one (reconnects back off,
a rejected key is not hammered, ``retry_after`` is honoured, a lifetime end alarms nobody).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from bench.harness.site import reenter_keys
from bench.soak.results import Check
from bench.soak.stack import FaultSpec, Stack


async def _set(stack: Stack, **values: Any) -> None:
    for name, value in values.items():
        setattr(stack.sim.faults, name, value)


async def _restart_sim(stack: Stack) -> None:
    """Every upstream session ends and reconnects (under the fault just switched on)."""
    await asyncio.to_thread(stack.sim.restart)


async def _later(stack: Stack, delay: float, **values: Any) -> None:
    await asyncio.sleep(delay)
    await _set(stack, **values)


def _split(stack: Stack, parts: int) -> float:
    return stack.config.seconds_per_fault / parts


async def _f1_apply(stack: Stack) -> None:
    await _set(stack, refuse_handshake=True)
    await _restart_sim(stack)
    stack.background_task(_later(stack, _split(stack, 2), refuse_handshake=False, reset_handshake=True))


async def _f1_heal(stack: Stack) -> None:
    await _set(stack, refuse_handshake=False, reset_handshake=False)


def _f1_checks(stack: Stack) -> list[Check]:
    # A reconnect storm would show as many handshakes; full-jitter backoff capped at `cap` averages cap/2.
    cfg = stack.config
    seconds = stack.heal_at - stack.t0
    bound = cfg.accounts * (2 * seconds / (cfg.backoff_cap / 2) + 10)
    handshakes = stack.phase["handshakes_at_heal"]
    return [Check("reconnects back off", handshakes <= bound, f"{handshakes} handshakes (bound {bound:.0f})")]


async def _f2_apply(stack: Stack) -> None:
    await _set(stack, drop_mid_reply=True)


async def _f2_heal(stack: Stack) -> None:
    await _set(stack, drop_mid_reply=False)


async def _f3_apply(stack: Stack) -> None:
    await _set(stack, reply_delay=stack.config.timeout + 1.0)


async def _f3_heal(stack: Stack) -> None:
    await _set(stack, reply_delay=0.0)


async def _f4_apply(stack: Stack) -> None:
    await _set(stack, silent=True)


async def _f4_heal(stack: Stack) -> None:
    await _set(stack, silent=False)


# Just over the protocol client's 16 MiB message cap: refused before the payload is read.
OVERSIZED_REPLY_BYTES = 16 * 1024 * 1024 + 1024


async def _f5_apply(stack: Stack) -> None:
    await _set(stack, malformed_json=True)
    third = _split(stack, 3)
    stack.background_task(_later(stack, third, malformed_json=False, wrong_schema=True))
    stack.background_task(_later(stack, 2 * third, wrong_schema=False, oversized_reply_bytes=OVERSIZED_REPLY_BYTES))


async def _f5_heal(stack: Stack) -> None:
    await _set(stack, malformed_json=False, wrong_schema=False, oversized_reply_bytes=0)


async def _f6_apply(stack: Stack) -> None:
    await _set(stack, reject_auth=True)
    await _restart_sim(stack)


async def _f6_heal(stack: Stack) -> None:
    # A rejected key is fatal: the feed waits for a person. The person re-enters the key.
    await _set(stack, reject_auth=False)
    await asyncio.to_thread(reenter_keys, stack.site, stack.site.accounts)


def _f6_checks(stack: Stack) -> list[Check]:
    attempts = stack.phase["auth_at_heal"]
    worst = max((attempts.get(a.public_key, 0) for a in stack.site.accounts), default=0)
    # One reconnect after the restart; then nothing until QFEXDASH_AUTH_RETRY_SECONDS (300 s) or a new key.
    bound = 2 + math.ceil((stack.heal_at - stack.t0) / 300.0)
    return [Check("rejected key not hammered", worst <= bound, f"max {worst} auth attempts per key (bound {bound})")]


# A bucket smaller than one get_user_orders page (weight 5): every page is refused with retry_after = the
# window, so a client that ignores the hint shows up at once as many refused requests.
F7_WEIGHT = 4.99
F7_WINDOW = 5.0


async def _f7_apply(stack: Stack) -> None:
    await _set(stack, rate_limit_weight=F7_WEIGHT, rate_limit_window=F7_WINDOW)


async def _f7_heal(stack: Stack) -> None:
    await _set(stack, rate_limit_weight=12_000.0, rate_limit_window=60.0)


def _f7_checks(stack: Stack) -> list[Check]:
    # Every request is refused with retry_after = F7_WINDOW: honouring it means one request per window
    # (plus the one that met the limit first, and one in flight at each end).
    seconds = stack.heal_at - stack.t0
    bound = seconds / F7_WINDOW + 3
    counts = stack.phase["requests_at_heal"]
    worst = max((counts.get(a.public_key, 0) for a in stack.site.accounts), default=0)
    return [
        Check(
            "RateLimited honoured",
            worst <= bound,
            f"max {worst} refused requests per account in {seconds:.0f} s with retry_after {F7_WINDOW:g} s"
            f" (bound {bound:.0f})",
        )
    ]


async def _f8_apply(stack: Stack) -> None:
    await _set(stack, duplicate_replies=True, unrelated_frames=True)


async def _f8_heal(stack: Stack) -> None:
    await _set(stack, duplicate_replies=False, unrelated_frames=False)


def _fetched_a_few_times(stack: Stack) -> bool:
    counts = stack.requests()
    return all(counts.get(a.public_key, 0) >= 4 for a in stack.site.accounts)


F11_LIFETIME = 3.0


async def _f11_apply(stack: Stack) -> None:
    # Sessions only get a lifetime when they open: restart the simulator so every session reopens, let the
    # pages settle (the restart itself is a short outage), and start the clock then.
    await _set(stack, max_lifetime=F11_LIFETIME)
    await _restart_sim(stack)
    keys = [account.public_key for account in stack.site.accounts]

    def settled() -> bool:
        # New sessions (with a lifetime) are open on the restarted simulator, and the pages are live again.
        return all(stack.sim.authenticated_connections(key) >= 1 for key in keys) and stack.all_live()

    await stack.wait_for(settled, stack.config.deadline)
    stack.mark_start()


async def _f11_heal(stack: Stack) -> None:
    await _set(stack, max_lifetime=0.0)


def _f11_effect(stack: Stack) -> bool:
    # At least two sessions per account ended at the max lifetime and were replaced.
    return stack.sim.handshake_count >= 2 * stack.config.accounts


def _f11_checks(stack: Stack) -> list[Check]:
    # QFEX ending a healthy session is routine: the feed reconnects without alarming anyone.
    alarmed = sum(
        1 for _, view in stack.views() if view is not None and view.states_since(stack.t0) & {"stale", "error"}
    )
    handshakes = stack.phase["handshakes_at_heal"]
    return [
        Check(
            "lifetime ends are transparent",
            alarmed == 0,
            f"{handshakes} upstream sessions opened; {alarmed} pages showed stale/error",
        )
    ]


F12_PAGE_CAP = 25  # several pages per fetch, so orders move between pages
F12_CHURN = 2


async def _f12_apply(stack: Stack) -> None:
    await _set(stack, page_cap=F12_PAGE_CAP, page_mutation=F12_CHURN)


async def _f12_heal(stack: Stack) -> None:
    await _set(stack, page_mutation=0, page_cap=1000)


def _f12_effect(stack: Stack) -> bool:
    counts = stack.requests()
    return all(counts.get(a.public_key, 0) >= 12 for a in stack.site.accounts)


UPSTREAM_FAULTS = (
    FaultSpec(
        "F1",
        "handshakes refused (HTTP 503), then reset",
        _f1_apply,
        _f1_heal,
        shows="stale",
        checks=_f1_checks,
    ),
    FaultSpec("F2", "connection dropped mid-reply", _f2_apply, _f2_heal, shows="stale"),
    FaultSpec("F3", "replies slower than the timeout", _f3_apply, _f3_heal, shows="stale"),
    FaultSpec("F4", "socket open but silent", _f4_apply, _f4_heal, shows="stale"),
    FaultSpec("F5", "malformed JSON, wrong schema, oversized frame", _f5_apply, _f5_heal, shows="stale"),
    FaultSpec(
        "F6",
        "auth rejected (healed by re-entering the key)",
        _f6_apply,
        _f6_heal,
        shows="error",
        checks=_f6_checks,
    ),
    FaultSpec(
        "F7",
        f"RateLimited (every page refused, retry_after {F7_WINDOW:g} s)",
        _f7_apply,
        _f7_heal,
        shows="stale",
        checks=_f7_checks,
        extra_allowance=F7_WINDOW,
        allowance_text=f"the last retry_after (≤ {F7_WINDOW:g} s)",
    ),
    FaultSpec(
        "F8",
        "duplicate replies and unrelated frames",
        _f8_apply,
        _f8_heal,
        effect=_fetched_a_few_times,
        effect_text="at least 4 fetches per account under the fault",
    ),
    FaultSpec(
        "F11",
        f"upstream closes at a {F11_LIFETIME:g} s max lifetime",
        _f11_apply,
        _f11_heal,
        effect=_f11_effect,
        effect_text="sessions reconnected after reaching the max lifetime",
        checks=_f11_checks,
    ),
    FaultSpec(
        "F12",
        f"orders added/removed while paging ({F12_CHURN} per page, {F12_PAGE_CAP}-order pages)",
        _f12_apply,
        _f12_heal,
        effect=_f12_effect,
        effect_text="at least 12 pages per account under the fault",
    ),
)
