"""Browser → server frames for the fuzzer, and the answer the protocol promises for each.

:class:`FrameMaker` draws frames from a seeded random source: random bytes and text, binary frames,
malformed JSON, deep nesting, huge frames (up to 2 MiB), valid types with wrong field types, ``refresh``
and ``resync`` naming other users' or nonexistent accounts, unicode edge cases, and (over a real socket)
invalid UTF-8 in a text frame. (Lone surrogates are left out: a real server cannot deliver them — they are
not UTF-8 — so only the in-process communicator could, and the consumer is not asked to cope with them.)

:func:`expected_answer` is the oracle: what :mod:`orders.live.protocol` documents for a frame, worked out
here independently of the consumer's code (JSON is parsed with orjson because the protocol says frames
are orjson-encoded JSON).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from orders.live import protocol as lp

MIB = 1024 * 1024
MAX_FUZZ_BYTES = 2 * MIB

# Error codes of orders.live.protocol (repeated so the oracle stands on its own).
BAD_MESSAGE = "bad_message"
UNKNOWN_TYPE = "unknown_type"
TOO_LARGE = "too_large"
RATE_LIMITED = "rate_limited"
# The app's close codes are the protocol's own constants: one definition, and this follows a change of it.
CLOSE_TOO_LARGE = lp.CLOSE_TOO_LARGE
CLOSE_POLICY = lp.CLOSE_POLICY
# What a client sees when the server's WebSocket layer (Daphne/autobahn) rejects a frame before the app:
# RFC 6455's 1007 (invalid UTF-8) or 1009 (too big), or — autobahn drops such connections — 1006.
TRANSPORT_INVALID_UTF8 = frozenset({1007, 1006})
TRANSPORT_TOO_BIG = frozenset({1009, 1006})
CLIENT_TYPES = ("refresh", "resync")


@dataclass(frozen=True)
class Frame:
    """One frame a browser could send. ``raw_text``: ``data`` sent as a *text* frame (invalid UTF-8)."""

    kind: str
    text: str | None = None
    data: bytes | None = None
    raw_text: bool = False

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else len((self.text or "").encode("utf-8"))

    def describe(self, limit: int = 160) -> str:
        body = repr(self.data if self.data is not None else self.text)
        if len(body) > limit:
            body = f"{body[:limit]}… ({self.size} bytes)"
        return f"{self.kind}: {body}"


@dataclass(frozen=True)
class Expect:
    """The answer a frame must get.

    ``outcome``: ``nothing`` (a valid refresh or resync), ``snapshot`` (one complete snapshot per account in
    ``accounts``, in order), ``error`` (one error frame with ``code`` naming ``account``), ``too_large``
    (an error frame with code ``too_large`` — optional when the server's WebSocket layer refuses the
    frame first — then a close with one of ``close_codes``), ``close`` (a close with one of ``close_codes``).
    """

    outcome: str
    code: str | None = None
    account: int | None = None
    accounts: tuple[int, ...] = ()
    close_codes: frozenset[int] = field(default_factory=frozenset)
    error_optional: bool = False

    @property
    def answered(self) -> bool:
        """Whether the server always sends something back (used where a frame must not be silent)."""
        return self.outcome != "nothing"

    @property
    def closes(self) -> bool:
        return self.outcome in ("too_large", "close")


@dataclass(frozen=True)
class Stream:
    """What the oracle needs to know about the socket: its one account (None: all accounts) and what it shows."""

    single: int | None
    joined: tuple[int, ...]


def expected_answer(frame: Frame, stream: Stream, max_frame_bytes: int, transport_limit: int | None) -> Expect:
    """The documented answer to ``frame`` on ``stream`` (frames within the rate limit)."""
    if frame.raw_text:
        return Expect("close", close_codes=TRANSPORT_INVALID_UTF8)
    error_account = stream.single  # a single-account socket names its account in every error
    if frame.size > max_frame_bytes:
        beyond = transport_limit is not None and frame.size > transport_limit
        codes = frozenset({CLOSE_TOO_LARGE}) | (TRANSPORT_TOO_BIG if beyond else frozenset())
        return Expect("too_large", code=TOO_LARGE, account=error_account, close_codes=codes, error_optional=beyond)
    if frame.data is not None:
        return Expect("error", code=BAD_MESSAGE, account=error_account)
    try:
        message = orjson.loads(frame.text or "")
    except orjson.JSONDecodeError:
        return Expect("error", code=BAD_MESSAGE, account=error_account)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return Expect("error", code=BAD_MESSAGE, account=error_account)
    if message["type"] not in CLIENT_TYPES:
        return Expect("error", code=UNKNOWN_TYPE, account=error_account)
    account = message.get("account")
    if account is not None and (type(account) is not int):
        return Expect("error", code=BAD_MESSAGE, account=error_account)
    if account is None:
        targets = stream.joined
    elif account in stream.joined:
        targets = (account,)
    else:
        # "Not on this stream" is the same answer for another user's account and for no account at all.
        return Expect("error", code=BAD_MESSAGE, account=error_account if stream.single is not None else account)
    # A refresh is answered by the feed, not the socket. A resync is answered with a snapshot at most once
    # per account every few seconds and not at all while the socket holds the current state (S29): no
    # answer a socket can count on, so the oracle expects nothing (snapshots that do come are state).
    del targets
    return Expect("nothing")


# --- the frames ---------------------------------------------------------------------------------------

_UNICODE_POOL = (
    "\u0000\u0001\u001f\u007f"  # control characters, NUL included
    "\u00e9\u00df\u0130\u0131"  # accented, sharp s, dotted/dotless i (case-folding traps)
    "\u200b\u200c\u200d\u2060\ufeff"  # zero-width characters and the BOM
    "\u202e\u202d\u2066\u2069"  # bidi overrides and isolates
    "\u0301\u0308\u20dd"  # combining marks
    "\uff52\uff45\uff53\uff59\uff4e\uff43"  # fullwidth "resync"
    "\U0001f600\U0001f4a9\U00010348\U0001d54f"  # astral plane
    "\ufffd\ufffe\uffff"  # replacement and non-characters
    '"\\{}[]:,'  # JSON punctuation
)
_FORBIDDEN_TYPES = (
    "cancel_order",
    "cancel_all_orders",
    "cancel_on_disconnect",
    "add_order",
    "modify_order",
    "close_position",
    "auth",
    "subscribe",
    "get_user_orders",
    "snapshot",
    "diff",
    "error",
    "RESYNC",
    "Refresh",
    "resync ",
    " refresh",
    "re\u0000sync",
    "\uff52\uff45\uff53\uff59\uff4e\uff43",
    "resync\u200b",
    "",
)
_WRONG_VALUES: tuple[object, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    7.0,
    -0.0,
    1e300,
    "7",
    "",
    "refresh",
    [],
    [7],
    {},
    {"id": 7},
    2**63,
    -(2**63) - 1,
)


class FrameMaker:
    """Seeded frames. ``own``: accounts the user may see; ``foreign``: other users' accounts.

    ``raw_text``: also invalid UTF-8 in text frames (real sockets only). ``oversize=False`` leaves out
    frames over ``max_frame_bytes``.
    """

    def __init__(
        self,
        rng: random.Random,
        own: Sequence[int],
        foreign: Sequence[int],
        max_frame_bytes: int,
        *,
        raw_text: bool = False,
        oversize: bool = True,
    ) -> None:
        self.rng = rng
        self.oversize = oversize
        self.own = list(own)
        self.foreign = list(foreign)
        self.max = max_frame_bytes
        self.kinds: list[tuple[str, int]] = [
            ("valid", 14),
            ("foreign_account", 10),
            ("wrong_field_types", 12),
            ("unknown_type", 8),
            ("malformed_json", 12),
            ("random_text", 8),
            ("random_bytes", 6),
            ("binary_json", 3),
            ("deep_nesting", 5),
            ("unicode_edge", 6),
            ("near_limit", 3),
            ("huge", 2),
        ]
        if raw_text:
            self.kinds.append(("invalid_utf8", 2))

    def next(self, *, closing: bool = True) -> Frame:
        """A random frame; ``closing=False`` leaves out frames that end the connection."""
        kinds = [(k, w) for k, w in self.kinds if closing or k not in ("huge", "invalid_utf8", "near_limit")]
        while True:
            kind = self.rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
            frame = getattr(self, f"_{kind}")()
            if frame.size <= self.max or (closing and self.oversize):
                return frame

    # --- one method per kind ---

    def _type(self) -> str:
        return self.rng.choice(CLIENT_TYPES)

    def _json(self, kind: str, message: object) -> Frame:
        # The stdlib encoder writes any integer, -0.0 and 1e300 as they are; orjson refuses some of them.
        return Frame(kind, text=json.dumps(message, ensure_ascii=self.rng.random() < 0.3))

    def _valid(self) -> Frame:
        message: dict[str, object] = {"type": self._type()}
        if self.rng.random() < 0.5:
            message["account"] = self.rng.choice(self.own)
        if self.rng.random() < 0.2:
            message["extra"] = self.rng.choice([1, "x", None, {"nested": [1, 2]}])
        return self._json("valid", message)

    def _foreign_account(self) -> Frame:
        nonexistent = [0, -1, 2**31, 2**63 - 1, max(self.own + self.foreign) + self.rng.randint(1, 10_000)]
        account = self.rng.choice(self.foreign + nonexistent) if self.foreign else self.rng.choice(nonexistent)
        return self._json("foreign_account", {"type": self._type(), "account": account})

    def _wrong_field_types(self) -> Frame:
        value = self.rng.choice(_WRONG_VALUES)
        message = {"type": value} if self.rng.random() < 0.5 else {"type": self._type(), "account": value}
        return self._json("wrong_field_types", message)

    def _unknown_type(self) -> Frame:
        message: dict[str, object] = {"type": self.rng.choice(_FORBIDDEN_TYPES)}
        if self.rng.random() < 0.5:
            message["params"] = {
                "order_id": "00000000-0000-0000-0000-000000000000",
                "account": self.rng.choice(self.own),
            }
        return self._json("unknown_type", message)

    def _malformed_json(self) -> Frame:
        base = orjson.dumps({"type": self._type(), "account": self.rng.choice(self.own)}).decode()
        mutation = self.rng.randrange(11)
        if mutation == 0:
            text = base[: self.rng.randrange(len(base))]  # truncated
        elif mutation == 1:
            at = self.rng.randrange(len(base) + 1)
            text = base[:at] + self.rng.choice('{}[]",:\\x0 \n') + base[at:]
        elif mutation == 2:
            at = self.rng.randrange(len(base))
            text = base[:at] + base[at + 1 :]
        elif mutation == 3:
            text = base.replace('"', "'")
        elif mutation == 4:
            text = base[:-1] + ",}"
        elif mutation == 5:
            text = (
                '{"type": "resync", "account": '
                + self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "0x10"])
                + "}"
            )
        elif mutation == 6:
            text = '{"type": "resync" /* comment */}'
        elif mutation == 7:
            text = "{type: 'resync'}"
        elif mutation == 8:
            text = '{"type": "resync", "type": "' + self.rng.choice(["cancel_order", "refresh", "resync"]) + '"}'
        elif mutation == 9:
            text = '{"type": "\\ud800resync"}' if self.rng.random() < 0.5 else '{"type": "\\u0072esync"}'
        else:
            text = self.rng.choice(["\ufeff", " ", "\n\t", ""]) + base + self.rng.choice(["", " ", "\n", "x", "{}"])
        return Frame("malformed_json", text=text)

    def _random_text(self) -> Frame:
        length = self.rng.randint(0, 300)
        if self.rng.random() < 0.5:
            text = "".join(self.rng.choice(_UNICODE_POOL) for _ in range(length))
        else:
            text = "".join(chr(self.rng.randint(32, 126)) for _ in range(length))
        return Frame("random_text", text=text)

    def _random_bytes(self) -> Frame:
        return Frame("random_bytes", data=self.rng.randbytes(self.rng.randint(0, self.max)))

    def _binary_json(self) -> Frame:
        return Frame("binary_json", data=orjson.dumps({"type": self._type()}))

    def _deep_nesting(self) -> Frame:
        depth = self.rng.choice([10, 100, 500, 1023, 1024, 1025, 2000, self.max])
        shape = self.rng.randrange(3)
        if shape == 0:
            text = "[" * depth + "]" * depth
        elif shape == 1:
            text = '{"a":' * depth + "1" + "}" * depth
        else:
            text = '{"type": "resync", "deep": ' + "[" * depth + "]" * depth + "}"
        return Frame("deep_nesting", text=text)

    def _unicode_edge(self) -> Frame:
        noise = "".join(self.rng.choice(_UNICODE_POOL) for _ in range(self.rng.randint(1, 40)))
        shape = self.rng.randrange(4)
        if shape == 0:
            message: dict[str, object] = {"type": self._type(), "note": noise}
        elif shape == 1:
            message = {"type": self._type() + noise}
        elif shape == 2:
            message = {noise: "resync", "type": self._type()}
        else:
            message = {"type": self._type(), "account": noise}
        return self._json("unicode_edge", message)

    def _near_limit(self) -> Frame:
        # Multi-byte characters: few characters, many bytes. The limit counts bytes.
        pad_bytes = self.max - len('{"type":"refresh","pad":""}') + self.rng.choice([-1, 0, 1, 2])
        pad = "\u00e9" * (pad_bytes // 2) + "x" * (pad_bytes % 2)
        return self._json("near_limit", {"type": "refresh", "pad": pad})

    def _huge(self) -> Frame:
        size = self.rng.choice([self.max + 1, 64 * 1024, MIB - 100, MIB + 1, MAX_FUZZ_BYTES])
        if self.rng.random() < 0.5:
            return Frame("huge", data=self.rng.randbytes(size))
        return Frame("huge", text='{"type":"refresh","pad":"' + "x" * size + '"}')

    def _invalid_utf8(self) -> Frame:
        body = self.rng.choice([b"\xff\xfe", b'{"type":"resync\xc0"}', b"\xed\xa0\x80", b"ok\x80"])
        return Frame("invalid_utf8", data=body, raw_text=True)
