"""The world of each live figure: a simulator that notes when it answered, and qfexdash in Daphne fed by it.

:func:`live_site` starts :class:`TimedSimulator` in this process, prepares a fresh SQLite database (a user,
a signed-in session and one qfexdash account per simulated key, pointing at the simulator) and serves it
with :class:`~bench.harness.daphne.Daphne` and the project's default settings.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench.harness.daphne import Daphne
from bench.harness.env import server_env
from bench.harness.site import Account, Person, SiteSpec, prepare
from orders.simulator import SimAccount, Simulator

PATIENCE = 30.0  # seconds any single wait may take before the benchmark gives up
# QFEX's budget: 12 000 weight per 60 s per user; get_user_orders weighs 5 per page, subscribe 0.1.
QFEX_WEIGHT_PER_SECOND = 12_000 / 60
PAGE_WEIGHT = 5.0
SUBSCRIBE_WEIGHT = 0.1
VIEWER = "bench"


def sim_account(name: str, orders: int, twaps: int = 3) -> SimAccount:
    """A simulated account of one figure. Simulator-only keys: they open nothing on the real QFEX."""
    return SimAccount(
        public_key=f"qfex_pub_bench_{name}", secret=f"qfex_secret_bench_{name}_sim_only", orders=orders, twaps=twaps
    )


# --- the simulator, timestamping its answers ------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One get_user_orders answer the simulator sent: when (monotonic ns), to which key, refused or not."""

    t_ns: int
    key: str | None
    refused: bool


class TimedSimulator(Simulator):
    """The simulator, noting when each ``get_user_orders`` answer (a page, or a ``RateLimited``
    refusal) has been handed to the connection's socket (``await send`` returned)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answers: list[Answer] = []
        self._answers_lock = threading.Lock()

    async def _handle(self, ws: Any) -> None:
        # Our client puts the public key in the URL (?api_key=), as QFEX asks.
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request is not None else {}
        key = (query.get("api_key") or [None])[0]
        send = ws.send

        async def timed_send(message: Any, text: bool | None = None) -> None:
            await send(message, text=text)
            if isinstance(message, bytes):
                if message.startswith(b'{"all_orders_response"'):
                    self._note_answer(key, refused=False)
                elif b'"RateLimited"' in message and b"get_user_orders" in message:
                    self._note_answer(key, refused=True)

        ws.send = timed_send
        await super()._handle(ws)

    def _note_answer(self, key: str | None, *, refused: bool) -> None:
        with self._answers_lock:
            self._answers.append(Answer(time.monotonic_ns(), key, refused))

    def answers(self, key: str, start_ns: int = 0, end_ns: int | None = None) -> list[Answer]:
        end = end_ns if end_ns is not None else time.monotonic_ns()
        with self._answers_lock:
            return [a for a in self._answers if a.key == key and start_ns <= a.t_ns <= end]

    def last_reply_before(self, key: str, t_ns: int) -> int:
        """When the last page sent to ``key`` before ``t_ns`` left the simulator."""
        replies = [a.t_ns for a in self.answers(key, 0, t_ns) if not a.refused]
        if not replies:
            raise RuntimeError(f"no get_user_orders reply to {key} before the update arrived")
        return replies[-1]


# --- qfexdash served by Daphne --------------------------------------------------------------------


@dataclass
class Site:
    """A running qfexdash (Daphne subprocess) fed by a simulator in this process."""

    sim: TimedSimulator
    session: str
    accounts: dict[str, int]  # simulator public key → qfexdash account id
    daphne: Daphne

    @property
    def origin(self) -> str:
        return self.daphne.origin

    def ws_url(self, key: str) -> str:
        return self.daphne.ws_url(f"/ws/accounts/{self.accounts[key]}/")

    def book_size(self, key: str) -> tuple[int, int]:
        """(open orders, active TWAPs) of the key's book right now."""
        return len(self.sim.open_orders(key)), len(self.sim.active_twaps(key))

    def restart(self, **settings: str) -> None:
        """Daphne again, with the default settings plus ``settings`` (environment variables)."""
        self.daphne.restart(settings)

    def rss_kib(self) -> int:
        """Daphne's resident set size (VmRSS), KiB."""
        return self.daphne.rss_kib()


@contextmanager
def live_site(accounts: Sequence[SimAccount], *, seed: int = 21, **simulator: Any) -> Iterator[Site]:
    """A simulator serving ``accounts`` (``simulator``: more of its constructor's arguments) and qfexdash in
    Daphne with one qfexdash account per key."""
    with (
        TimedSimulator(list(accounts), seed=seed, **simulator) as sim,
        tempfile.TemporaryDirectory(prefix="qfexdash-bench-") as name,
    ):
        folder = Path(name)
        env = server_env(folder)
        entered = tuple(Account.of(f"Bench {n}", a) for n, a in enumerate(accounts, 1))
        prepared = prepare(env, SiteSpec(sim.url, (Person(VIEWER, entered),)))
        ids = {a.public_key: prepared.accounts[a.label] for a in entered}
        with Daphne(env, folder / "daphne.log", patience=2 * PATIENCE) as daphne:
            try:
                daphne.start()
                yield Site(sim, prepared.sessions[VIEWER], ids, daphne)
            except Exception as exc:
                exc.add_note(f"Daphne's log ends with:\n{daphne.log_tail(30)}")
                raise
