"""Fuzzer for the browser ⇄ server live protocol (issue 5/5 item 2, design.md S15).

``run_fuzz(target, frames=N, seed=S)`` sends N seeded frames (see :mod:`tests.security.fuzz_frames`) on
sockets of one user, opening a new socket whenever the server closes one, and checks on every frame:

- the server keeps serving: every frame gets the answer :mod:`orders.live.protocol` documents — an
  ``error`` frame with the right code, or a close with a documented code (the protocol's codes for "too
  large" and "flooding"; for frames the server's WebSocket layer refuses before the app sees them —
  invalid UTF-8, over Daphne's 1 MiB — RFC 6455's 1007/1009, or a dropped connection, 1006) — and
  nothing else; ``refresh`` and ``resync`` need no answer (a resync's snapshot is rate-limited, and
  skipped while the socket has everything);
- nothing of an account the user may not see reaches them: every frame's ``account`` and every row's
  ``account`` are accounts the user may see, and no frame contains any of the ``forbidden`` strings
  (another account's label, keys, order and TWAP ids);
- the socket's own state stays sane: snapshot parts arrive in order without interleaving, seq numbers
  never go back, no diff at or below the snapshot's seq, and at the end a fresh snapshot equals the
  exchange's books;
- a bystander — a well-behaved socket of another user on another account — keeps receiving its
  updates and answers throughout (checked every ``check_every`` frames and at the end).

Bursts of pipelined frames exercise rapid floods. With ``rate_limit`` (the server's
``QFEXDASH_WS_RATE``) each socket stays within the limit, and some sockets then flood past it and must
get ``rate_limited`` errors and a 1008 close.

By hand, against a real Daphne (started here with a simulator and two users)::

    .venv/bin/python -m tests.security.fuzz_command --frames 20000 --seed 1

or against a server you run (``--url ws://127.0.0.1:8000 --session KEY --account ID ...``, see ``--help``).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tests.security.fuzz_frames import (
    CLOSE_POLICY,
    RATE_LIMITED,
    UNKNOWN_TYPE,
    Expect,
    Frame,
    FrameMaker,
    Stream,
    expected_answer,
)
from tests.security.fuzz_transport import Connect, Incoming, Refused, Transport

SERVER_TYPES = frozenset({"snapshot", "diff", "status", "error"})
STATES = frozenset({"connecting", "live", "stale", "error", "idle"})
# The limiter's window is 10 s; a socket younger than this floods within one window for sure.
FLOOD_MAX_AGE = 5.0


class Broken(Exception):
    """A promise of the protocol was broken (the message says which); the socket is abandoned."""


# --- the report ------------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    seed: int
    frames: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)  # frames sent one by one, in bursts, in floods
    answers: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    closes: Counter[int] = field(default_factory=Counter)
    received_frames: int = 0
    received_bytes: int = 0
    gaps: int = 0
    bystander_checks: int = 0
    bystander_worst_seconds: float = 0.0
    failure_count: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure_count == 0

    def fail(self, text: str) -> None:
        self.failure_count += 1
        if len(self.failures) < 50:
            self.failures.append(text)

    def summary(self) -> str:
        lines = [
            f"fuzzed {self.frames} frames (seed {self.seed}) on {self.connections} sockets in {self.seconds:.1f} s: "
            + ("OK" if self.ok else f"{self.failure_count} FAILURE(S)"),
            "frames: " + ", ".join(f"{kind} {n}" for kind, n in self.kinds.most_common()),
            "sent: " + ", ".join(f"{mode} {n}" for mode, n in self.modes.most_common()),
            "answers: " + ", ".join(f"{answer} {n}" for answer, n in self.answers.most_common()),
            "closes: " + (", ".join(f"{code} ×{n}" for code, n in sorted(self.closes.items())) or "none"),
            f"received {self.received_frames} frames ({self.received_bytes:,} bytes); seq gaps {self.gaps}; "
            f"bystander checks {self.bystander_checks} (slowest {self.bystander_worst_seconds:.2f} s)",
        ]
        lines += [f"FAIL: {text}" for text in self.failures]
        return "\n".join(lines)


# --- one socket, seen as a page sees it --------------------------------------------------------------


class Page:
    """A socket plus what a page keeps of it, checking each message against the protocol's promises."""

    def __init__(
        self,
        transport: Transport,
        stream: Stream,
        visible: frozenset[int],
        forbidden: Collection[str],
        report: FuzzReport,
        name: str,
    ) -> None:
        self.transport = transport
        self.stream = stream
        self.visible = visible
        self.forbidden = forbidden
        self.report = report
        self.name = name
        self.seq: dict[int, int] = {}  # seq of the last complete snapshot or applied diff
        self.high: dict[int, int] = {}  # highest seq seen, to check it never goes back
        self.orders: dict[int, dict[str, Any]] = {}
        self.twaps: dict[int, dict[str, Any]] = {}
        self.pending: dict[int, dict[str, Any]] = {}  # account → the snapshot parts collected so far
        self.completed: deque[int] = deque()  # accounts whose snapshot completed, not yet claimed
        self.errors: deque[dict[str, Any]] = deque()
        self.closed: int | None = None
        self.sent = 0
        self.opened = time.monotonic()

    # --- reading ---

    async def read(self, deadline: float) -> None:
        """Read and check one thing from the server (raises ``TimeoutError`` at the deadline)."""
        incoming: Incoming = await self.transport.receive(max(0.01, deadline - time.monotonic()))
        if incoming.close is not None:
            self.closed = incoming.close
            self.report.closes[incoming.close] += 1
            return
        if incoming.data is not None:
            raise Broken(f"{self.name}: the server sent a binary frame ({len(incoming.data)} bytes)")
        text = incoming.text or ""
        self.report.received_frames += 1
        self.report.received_bytes += len(text)
        for value in self.forbidden:
            if value in text:
                raise Broken(f"{self.name}: a frame contains data of an account this user may not see: {text[:200]!r}")
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise Broken(f"{self.name}: the server sent a frame that is not JSON: {text[:200]!r}") from None
        self._apply(message)

    def _apply(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind not in SERVER_TYPES:
            raise Broken(f"{self.name}: unknown message type {kind!r}")
        account = message.get("account")
        if kind == "error":
            self.errors.append(message)  # its account is checked against the frame that caused it
            return
        if account not in self.visible or account not in self.stream.joined:
            raise Broken(f"{self.name}: a {kind} of account {account!r}, which this socket must not show")
        seq = message.get("seq")
        if not isinstance(seq, int):
            raise Broken(f"{self.name}: a {kind} without an integer seq")
        if kind == "status":
            if message.get("state") not in STATES:
                raise Broken(f"{self.name}: unknown state {message.get('state')!r}")
            return
        if seq < self.high.get(account, seq):
            raise Broken(f"{self.name}: account {account}'s seq went back from {self.high[account]} to {seq}")
        self.high[account] = seq
        if kind == "snapshot":
            self._snapshot_part(account, seq, message)
        else:
            self._diff(account, seq, message)

    def _rows(self, account: int, rows: Any, what: str) -> list[dict[str, Any]]:
        if not isinstance(rows, list):
            raise Broken(f"{self.name}: {what} of account {account} is not a list")
        for row in rows:
            if not isinstance(row, dict) or row.get("account") != account or not row.get("id"):
                raise Broken(f"{self.name}: a row in {what} of account {account} is not that account's: {row!r:.200}")
        return rows

    def _snapshot_part(self, account: int, seq: int, message: dict[str, Any]) -> None:
        part, parts = message.get("part", 1), message.get("parts", 1)
        if not (isinstance(part, int) and isinstance(parts, int) and 1 <= part <= parts):
            raise Broken(f"{self.name}: snapshot part {part!r} of {parts!r}")
        orders = self._rows(account, message.get("orders"), "snapshot orders")
        twaps = self._rows(account, message.get("twaps"), "snapshot twaps")
        pending = self.pending.get(account)
        if part == 1:
            if pending is not None:
                raise Broken(f"{self.name}: a new snapshot of account {account} began before the last one ended")
            pending = self.pending[account] = {"seq": seq, "parts": parts, "next": 1, "orders": [], "twaps": []}
        elif pending is None or pending["seq"] != seq or pending["next"] != part or pending["parts"] != parts:
            raise Broken(f"{self.name}: snapshot part {part}/{parts} (seq {seq}) of account {account} out of order")
        for other in self.pending:
            if other != account:
                raise Broken(f"{self.name}: snapshot parts of accounts {other} and {account} interleaved")
        pending["orders"] += orders
        pending["twaps"] += twaps
        pending["next"] = part + 1
        if part == parts:
            del self.pending[account]
            self.seq[account] = seq
            self.orders[account] = {row["id"]: row for row in pending["orders"]}
            self.twaps[account] = {row["id"]: row for row in pending["twaps"]}
            self.completed.append(account)

    def _diff(self, account: int, seq: int, message: dict[str, Any]) -> None:
        if account in self.pending:
            raise Broken(f"{self.name}: a diff of account {account} arrived between the parts of a snapshot")
        if account not in self.seq:
            return  # after a gap: ignored until the next snapshot, as the page does
        if seq <= self.seq[account]:
            raise Broken(f"{self.name}: diff seq {seq} at or below the snapshot's seq {self.seq[account]}")
        if seq != self.seq[account] + 1:
            self.report.gaps += 1
            del self.seq[account]
            return
        self.seq[account] = seq
        upsert, remove = message.get("upsert") or {}, message.get("remove") or {}
        for kind, rows in (("orders", self.orders[account]), ("twaps", self.twaps[account])):
            for row in self._rows(account, upsert.get(kind, []), f"diff upserts ({kind})"):
                rows[row["id"]] = row
            for row_id in remove.get(kind, []):
                rows.pop(row_id, None)

    # --- sending and expecting ---

    async def send(self, frame: Frame) -> None:
        self.sent += 1
        await self.transport.send(frame)

    async def expect(self, want: Expect, frame: Frame | None, patience: float) -> None:
        """Read until ``want`` is met; raises :class:`Broken` when the server answers otherwise."""
        about = frame.describe() if frame is not None else "connecting"
        deadline = time.monotonic() + patience
        try:
            if want.outcome == "snapshot":
                for account in want.accounts:
                    await self.until(lambda: bool(self.completed) or bool(self.errors), deadline, about)
                    if self.errors:
                        raise Broken(f"{self.name}: error {self.errors[0]!r} instead of a snapshot, after {about}")
                    while self.completed and self.completed[0] != account:
                        self.completed.popleft()  # an unasked-for snapshot (a feed re-snapshot): state only
                        await self.until(lambda: bool(self.completed) or bool(self.errors), deadline, about)
                    self.completed.popleft()
                self.report.answers["snapshot"] += 1
            elif want.outcome == "error":
                await self.until(lambda: bool(self.errors), deadline, about)
                self._check_error(self.errors.popleft(), want, about)
            elif want.closes:
                if want.outcome == "too_large":
                    await self.until(
                        lambda: bool(self.errors) or self.closed is not None, deadline, about, closing=True
                    )
                    if self.errors:
                        self._check_error(self.errors.popleft(), want, about)
                    elif not want.error_optional:
                        raise Broken(f"{self.name}: closed without a too_large error after {about}")
                await self.until(lambda: self.closed is not None, deadline, about, closing=True)
                if self.closed not in want.close_codes:
                    raise Broken(
                        f"{self.name}: closed with {self.closed}, not {sorted(want.close_codes)}, after {about}"
                    )
                self.report.answers[f"close {self.closed}"] += 1
            else:
                self.report.answers["nothing (refresh)"] += 1
        except TimeoutError:
            raise Broken(f"{self.name}: no {want.outcome} within {patience:.0f} s after {about}") from None

    def _check_error(self, error: dict[str, Any], want: Expect, about: str) -> None:
        code, account = error.get("code"), error.get("account")
        if code != want.code or account != want.account:
            raise Broken(
                f"{self.name}: error {code!r} for account {account!r}, expected {want.code!r} "
                f"for {want.account!r}, after {about}"
            )
        if not isinstance(error.get("message"), str) or not error["message"]:
            raise Broken(f"{self.name}: an error without a message, after {about}")
        self.report.answers[f"error {code}"] += 1

    async def until(self, condition: Callable[[], bool], deadline: float, about: str, closing: bool = False) -> None:
        while not condition():
            if self.closed is not None and not closing:
                raise Broken(f"{self.name}: closed with {self.closed} instead of answering {about}")
            if self.closed is not None:
                return
            await self.read(deadline)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            await self.transport.close()


# --- the bystander -------------------------------------------------------------------------------------


class Bystander:
    """Another user's well-behaved socket: it must keep getting its updates and answers while the fuzz runs.

    ``change()`` makes a change on its account at the exchange and returns the new row's id (None: no
    change, only resync is checked).
    """

    def __init__(
        self,
        connect: Connect,
        path: str,
        account: int,
        change: Callable[[], Awaitable[str | None]] | None = None,
        forbidden: Collection[str] = (),
    ) -> None:
        self.connect = connect
        self.path = path
        self.account = account
        self.change = change
        self.forbidden = forbidden
        self.page: Page | None = None

    async def start(self, report: FuzzReport, patience: float) -> None:
        transport = await self.connect(self.path)
        stream = Stream(self.account, (self.account,))
        self.page = Page(transport, stream, frozenset({self.account}), self.forbidden, report, "bystander")
        await self.page.expect(Expect("snapshot", accounts=(self.account,)), None, patience)

    async def check(self, report: FuzzReport, patience: float) -> None:
        page = self.page
        assert page is not None
        started = time.monotonic()
        deadline = started + patience
        if self.change is not None:
            row_id = await self.change()
            if row_id is not None:
                try:
                    await page.until(lambda: row_id in page.orders.get(self.account, {}), deadline, "a change")
                except TimeoutError:
                    raise Broken(f"bystander: its account's new order {row_id} never arrived") from None
        # Still answered at once: a frame the server must refuse (a resync need not be answered any more).
        page.completed.clear()
        await page.send(Frame("bystander probe", text='{"type": "probe"}'))
        await page.expect(Expect("error", code=UNKNOWN_TYPE, account=self.account), None, patience)
        report.bystander_checks += 1
        report.bystander_worst_seconds = max(report.bystander_worst_seconds, time.monotonic() - started)

    async def stop(self) -> None:
        if self.page is not None:
            await self.page.close()


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class Target:
    """The fuzzed user: how to open sockets, the stream paths (path → its one account, None for all
    accounts) and the accounts the user may see."""

    connect: Connect
    paths: dict[str, int | None]
    visible: frozenset[int]
    foreign: Sequence[int] = ()  # other users' accounts, named in frames
    # Strings no frame may contain: other accounts' labels, keys, order ids… (called again after each check)
    forbidden: Callable[[], Collection[str]] = lambda: ()
    # account → (order ids, TWAP ids) at the exchange, for the final check (None: skip it)
    truth: Callable[[int], Awaitable[tuple[set[str], set[str]]]] | None = None


class _Run:
    def __init__(
        self,
        target: Target,
        report: FuzzReport,
        rng: random.Random,
        *,
        rate_limit: int | None,
        max_frame_bytes: int,
        patience: float,
        oversize: bool,
    ) -> None:
        self.target = target
        self.oversize = oversize
        self.report = report
        self.rng = rng
        self.maker: FrameMaker | None = None  # made at the first socket: it knows what the transport can send
        self.rate_limit = rate_limit
        self.max_frame_bytes = max_frame_bytes
        self.patience = patience
        self.forbidden: Collection[str] = frozenset(target.forbidden())

    async def open(self, path: str | None = None) -> Page:
        path = path or self.rng.choice(sorted(self.target.paths))
        single = self.target.paths[path]
        joined = (single,) if single is not None else tuple(sorted(self.target.visible))
        transport = await self.target.connect(path)
        self.report.connections += 1
        if self.maker is None:
            own, foreign = sorted(self.target.visible), self.target.foreign
            self.maker = FrameMaker(
                self.rng, own, foreign, self.max_frame_bytes, raw_text=transport.raw_text, oversize=self.oversize
            )
        page = Page(
            transport, Stream(single, joined), self.target.visible, self.forbidden, self.report, f"socket {path}"
        )
        await page.expect(Expect("snapshot", accounts=joined), None, self.patience)
        return page

    def answer(self, page: Page, frame: Frame) -> Expect:
        limit = getattr(page.transport, "message_limit", None)
        return expected_answer(frame, page.stream, self.max_frame_bytes, limit)

    def _count(self, frame: Frame, mode: str) -> None:
        self.report.kinds[frame.kind] += 1
        self.report.modes[mode] += 1
        self.report.frames += 1

    async def one(self, page: Page) -> None:
        assert self.maker is not None
        frame = self.maker.next()
        self._count(frame, "one by one")
        want = self.answer(page, frame)
        page.completed.clear()
        await page.send(frame)
        await page.expect(want, frame, self.patience)

    async def burst(self, page: Page, count: int) -> None:
        """Frames sent back to back without waiting, then every answer checked in order."""
        assert self.maker is not None
        frames = [self.maker.next(closing=False) for _ in range(count)]
        page.completed.clear()
        for frame in frames:
            self._count(frame, "in bursts")
            await page.send(frame)
        for frame in frames:
            await page.expect(self.answer(page, frame), frame, self.patience)

    async def flood_past_the_limit(self, page: Page) -> None:
        """On a socket that used its whole budget: the next ``limit`` frames are refused with
        ``rate_limited``, the one after is refused and the socket closed for flooding (``CLOSE_POLICY``)."""
        assert self.rate_limit is not None
        assert self.maker is not None
        frames: list[Frame] = []
        while len(frames) < self.rate_limit + 1:
            frame = self.maker.next(closing=False)
            if self.answer(page, frame).answered:
                frames.append(frame)
        for frame in frames:
            self._count(frame, "flooding past the limit")
            await page.send(frame)
        refused = Expect("error", code=RATE_LIMITED, account=page.stream.single)
        for frame in frames:
            await page.expect(refused, frame, self.patience)
        await page.expect(Expect("close", close_codes=frozenset({CLOSE_POLICY})), frames[-1], self.patience)

    async def final_check(self) -> None:
        """A fresh socket shows the exchange's books (the all-accounts stream when there is one)."""
        if self.target.truth is None:
            return
        streams = sorted(self.target.paths, key=lambda path: self.target.paths[path] is not None)
        page = await self.open(streams[0])
        try:
            for account in page.stream.joined:
                orders, twaps = await self.target.truth(account)
                deadline = time.monotonic() + self.patience

                def shows_truth(account: int = account, orders: set[str] = orders, twaps: set[str] = twaps) -> bool:
                    return (
                        account in page.seq
                        and set(page.orders.get(account, {})) == orders
                        and set(page.twaps.get(account, {})) == twaps
                    )

                try:
                    await page.until(shows_truth, deadline, "the final check")
                except TimeoutError:
                    raise Broken(f"final check: account {account}'s rows never matched the exchange's books") from None
        finally:
            await page.close()


async def run_fuzz(
    target: Target,
    *,
    frames: int = 2000,
    seed: int = 1,
    bystander: Bystander | None = None,
    rate_limit: int | None = None,
    max_frame_bytes: int = 4096,
    burst_chance: float = 0.05,
    check_every: int = 250,
    patience: float = 15.0,
    oversize: bool = True,
) -> FuzzReport:
    """Fuzz ``target`` with ``frames`` frames from ``seed``; the report lists every broken promise.

    ``rate_limit``: the server's frames-per-window limit (``QFEXDASH_WS_RATE``), or None when it is far
    above what this run sends on one socket. ``max_frame_bytes``: the server's ``QFEXDASH_WS_MAX_FRAME_BYTES``;
    ``oversize=False`` sends no frame over it.
    """
    report = FuzzReport(seed=seed)
    rng = random.Random(seed)
    run = _Run(
        target,
        report,
        rng,
        rate_limit=rate_limit,
        max_frame_bytes=max_frame_bytes,
        patience=patience,
        oversize=oversize,
    )
    started = time.monotonic()
    page: Page | None = None
    try:
        if bystander is not None:
            await bystander.start(report, patience)
        next_check = check_every
        while report.frames < frames:
            try:
                if page is None or page.closed is not None:
                    if page is not None:
                        await page.close()
                    page = None
                    page = await run.open()
                if rate_limit is not None and page.sent >= rate_limit:
                    flood = rng.random() < 0.5  # drawn whatever the socket's age: the seed fixes the frames
                    if flood and time.monotonic() - page.opened < FLOOD_MAX_AGE:
                        await run.flood_past_the_limit(page)
                    else:
                        await page.close()
                        page = None
                    continue
                if rng.random() < burst_chance:
                    budget = frames - report.frames
                    if rate_limit is not None:
                        budget = min(budget, rate_limit - page.sent)
                    await run.burst(page, max(1, min(budget, rng.randint(5, 50))))
                else:
                    await run.one(page)
            except Broken as broken:
                report.fail(f"[frame {report.frames}] {broken}")
                if page is not None:
                    await _abandon(page, report)
                page = None
            except Refused as refused:
                report.fail(f"[frame {report.frames}] the fuzzed user's socket was refused ({refused.code})")
                break
            except Exception as exc:  # the server raised: the app crashed on this socket
                report.fail(f"[frame {report.frames}] the server failed: {type(exc).__name__}: {exc}")
                if page is not None:
                    await _abandon(page, report)
                page = None
            if report.frames >= next_check and bystander is not None:
                next_check += check_every
                await _check_bystander(bystander, report, patience)
                run.forbidden = frozenset(target.forbidden())
        if page is not None:
            await page.close()
            page = None
        if bystander is not None:
            await _check_bystander(bystander, report, patience)
        try:
            await run.final_check()
        except Exception as exc:
            report.fail(f"final check: {exc}")
    finally:
        if page is not None:
            await _abandon(page, report)
        if bystander is not None:
            with contextlib.suppress(Exception):
                await bystander.stop()
        report.seconds = time.monotonic() - started
    return report


async def _check_bystander(bystander: Bystander, report: FuzzReport, patience: float) -> None:
    try:
        await bystander.check(report, patience)
    except Exception as exc:
        report.fail(f"[frame {report.frames}] bystander: {exc}")


async def _abandon(page: Page, report: FuzzReport) -> None:
    try:
        await page.close()
    except Exception as exc:
        report.fail(f"closing {page.name}: the server failed: {type(exc).__name__}: {exc}")


# --- by hand ---------------------------------------------------------------------------------------------
