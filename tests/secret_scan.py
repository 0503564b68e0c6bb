"""S12: scan everything a test run logs, sends and renders for the API secrets and signatures it used.

A pytest plugin (``-p tests.secret_scan``), active when ``QFEXDASH_SECRET_SCAN=1`` is set or
``--secret-scan`` is given. For the whole run it

- turns debug logging on (the root logger at DEBUG; loggers the product's ``LOGGING`` deliberately quiets,
  such as websocket-client's, keep their level) and keeps every log record, traceback included;
- keeps every WebSocket frame a consumer sends, every HTTP response Django produces (body and headers),
  every channel-layer message, and each test's captured stdout/stderr;
- learns the secrets and signatures the run uses without help from the tests: every
  ``orders.qfex.Credentials`` and simulator ``SimAccount`` secret, every plaintext the encryption module
  encrypts or decrypts, and every signature ``orders.qfex.signing.sign`` produces; fixtures may add
  more with :func:`register_secret`.

After each test its captures are scanned for every secret known so far (raw, HTML-, JSON- and
URL-escaped) and every signature; at the end of the session everything is scanned again for the secrets
learnt later. A hit fails the session (exit status 1) with a report naming the secret by a hash prefix,
the channel, the test and a redacted excerpt — never the secret itself.

Secrets shorter than :data:`MIN_SECRET_LENGTH` (unit tests use values like ``"s"``) are counted but not
scanned: they would match ordinary text.

:func:`scanning` does the same for one block of code inside a test, whether or not the session scan is on.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

ENV_VAR = "QFEXDASH_SECRET_SCAN"
REPORT_ENV_VAR = "QFEXDASH_SECRET_SCAN_REPORT"  # optional path: write the run's figures as JSON
MIN_SECRET_LENGTH = 8
SIGNATURE_LENGTH = 64  # lowercase hex HMAC-SHA256
CHANNELS = ("log", "frame", "page", "layer", "output")

_HEX_RUN = re.compile(f"[0-9a-f]{{{SIGNATURE_LENGTH},}}")


def digest(value: str) -> str:
    """How a report names a secret: a SHA-256 prefix, never the value."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


# --- what to look for ------------------------------------------------------------------------------


class _Registry:
    """Every secret and signature the run used. Thread-safe; ``generation`` counts registrations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.secrets: dict[str, tuple[str, int, tuple[str, ...]]] = {}  # value → (origin, generation, forms)
        self.signatures: dict[str, int] = {}  # value → generation
        self.short: set[str] = set()
        self.generation = 0

    def add_secret(self, value: Any, origin: str) -> None:
        if not isinstance(value, str) or not value.strip():
            return
        with self._lock:
            if len(value) < MIN_SECRET_LENGTH:
                self.short.add(value)
            elif value not in self.secrets:
                self.generation += 1
                self.secrets[value] = (origin, self.generation, _variants(value))

    def add_signature(self, value: Any) -> None:
        if not isinstance(value, str) or len(value) != SIGNATURE_LENGTH:
            return
        with self._lock:
            if value not in self.signatures:
                self.generation += 1
                self.signatures[value] = self.generation

    def since(self, generation: int) -> Wanted:
        """What was registered after ``generation`` (0: everything)."""
        with self._lock:
            secrets = {
                value: (origin, forms) for value, (origin, gen, forms) in self.secrets.items() if gen > generation
            }
            signatures = {value for value, gen in self.signatures.items() if gen > generation}
        return Wanted(secrets, signatures)


@dataclass(frozen=True)
class Wanted:
    """Secrets (value → origin and the forms to look for) and signatures to look for."""

    secrets: dict[str, tuple[str, tuple[str, ...]]]
    signatures: set[str]

    def __bool__(self) -> bool:
        return bool(self.secrets or self.signatures)


_registry = _Registry()


def register_secret(value: str, origin: str = "registered by a test") -> None:
    """Add a secret the scan must never find (fixtures call this for values the hooks cannot see)."""
    _registry.add_secret(value, origin)


def is_registered(value: str) -> bool:
    """Whether the scan knows ``value`` as a secret or a signature."""
    return value in _registry.secrets or value in _registry.signatures


def register_signature(value: str) -> None:
    """Add a signature (64 lowercase hex characters) the scan must never find."""
    _registry.add_signature(value)


def _variants(secret: str) -> tuple[str, ...]:
    """The secret as it would look raw, in HTML, in JSON and in a URL or form body."""
    forms = dict.fromkeys([secret, html.escape(secret), json.dumps(secret)[1:-1], quote_plus(secret)])
    return tuple(form for form in forms if form)


# --- findings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One secret or signature found in one capture. ``excerpt`` has every known secret redacted."""

    kind: str  # "secret" or "signature"
    name: str  # digest(value)
    origin: str
    channel: str
    where: str
    test: str
    excerpt: str

    def describe(self) -> str:
        return (
            f"{self.kind} {self.name} ({self.origin}) found in {self.channel} [{self.where}] "
            f"during {self.test or 'session setup'}: {self.excerpt}"
        )


def _redact(text: str, wanted: Wanted) -> str:
    for value in sorted(wanted.secrets, key=len, reverse=True):
        for form in wanted.secrets[value][1]:
            text = text.replace(form, f"<secret {digest(value)}>")
    for run in set(_HEX_RUN.findall(text)):
        windows = (run[i : i + SIGNATURE_LENGTH] for i in range(len(run) - SIGNATURE_LENGTH + 1))
        if any(window in wanted.signatures for window in windows):
            text = text.replace(run, "<signature>")
    return text


def _excerpt(text: str, at: int, length: int) -> str:
    start = max(0, at - 60)
    return text[start : at + length + 60].replace("\n", "\\n")


def find_in(text: str, wanted: Wanted) -> list[tuple[str, str, str]]:
    """``(kind, value, origin)`` for each wanted secret or signature in ``text``."""
    hits: list[tuple[str, str, str]] = []
    for value, (origin, forms) in wanted.secrets.items():
        if any(form in text for form in forms):
            hits.append(("secret", value, origin))
    if wanted.signatures:
        for run in _HEX_RUN.findall(text):
            for i in range(len(run) - SIGNATURE_LENGTH + 1):
                candidate = run[i : i + SIGNATURE_LENGTH]
                if candidate in wanted.signatures:
                    hits.append(("signature", candidate, "made by orders.qfex.signing.sign"))
    return hits


# --- what is captured -------------------------------------------------------------------------------


@dataclass
class Scan:
    """Captured text (deduplicated) and what was found in it."""

    # Scanned text → (channel, where, test, registry generation it was scanned at).
    entries: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)
    pending: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # captured, not scanned yet
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))
    findings: list[Finding] = field(default_factory=list)
    captured_chars: int = 0
    _seen: set[tuple[str, str, str, str]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, channel: str, where: str, text: str) -> None:
        if not text:
            return
        with self._lock:
            self.counts[channel] += 1
            if text in self.entries or text in self.pending:
                return
            self.pending[text] = (channel, where, _current_test)
            self.captured_chars += len(text)

    def scan_pending(self) -> list[Finding]:
        """Scan what came in since the last call for every secret and signature known now."""
        with self._lock:
            pending, self.pending = self.pending, {}
        generation = _registry.generation
        wanted = _registry.since(0)
        new: list[Finding] = []
        for text, (channel, where, test) in pending.items():
            new += self._check(text, channel, where, test, wanted)
            self.entries[text] = (channel, where, test, generation)
        return new

    def rescan(self) -> list[Finding]:
        """Scan everything captured for the secrets and signatures learnt after it was first scanned."""
        new = self.scan_pending()
        late: dict[int, Wanted] = {}
        for text, (channel, where, test, generation) in self.entries.items():
            if generation not in late:
                late[generation] = _registry.since(generation)
            if late[generation]:
                new += self._check(text, channel, where, test, late[generation])
        return new

    def _check(self, text: str, channel: str, where: str, test: str, wanted: Wanted) -> list[Finding]:
        found = []
        redacted = ""
        for kind, value, origin in find_in(text, wanted):
            key = (value, channel, where, test)
            if key in self._seen:
                continue
            self._seen.add(key)
            # Redact the whole text before cutting the excerpt, so no other secret shows even in part.
            redacted = redacted or _redact(text, _registry.since(0))
            marker = f"<secret {digest(value)}>" if kind == "secret" else "<signature>"
            at = max(0, redacted.find(marker))
            finding = Finding(kind, digest(value), origin, channel, where, test, _excerpt(redacted, at, len(marker)))
            self.findings.append(finding)
            found.append(finding)
        return found


_current_test = ""
_sinks: list[Scan] = []
_exclusive: list[Scan] = []  # a scan that takes every capture for itself (a test that leaks on purpose)


def _capture(channel: str, where: str, text: str) -> None:
    for sink in list(_exclusive[-1:] or _sinks):
        sink.add(channel, where, text)


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else repr(value)


class _LogCapture(logging.Handler):
    """Keeps every record that reaches the root logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record whose arguments do not format: keep what we can
            text = f"{record.msg!r} {record.args!r}"
        _capture("log", f"{record.name} {record.levelname}", text)


# --- hooks into the code under test ----------------------------------------------------------------


class _Hooks:
    """Wraps the functions that see secrets, signatures, frames and pages; installed while any scan runs."""

    def __init__(self) -> None:
        self.users = 0
        self.undo: list[Callable[[], None]] = []
        self.missing: list[str] = []
        self.handler = _LogCapture()
        self.root_level = logging.WARNING

    def install(self) -> None:
        self.users += 1
        if self.users > 1:
            return
        root = logging.getLogger()
        self.root_level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.DEBUG)
        for patch in (
            self._patch_signing,
            self._patch_simulator,
            self._patch_encryption,
            self._patch_consumers,
            self._patch_pages,
            self._patch_layers,
        ):
            try:
                patch()
            except ImportError as exc:  # a part that is not installed here cannot leak either
                self.missing.append(f"{patch.__name__}: {exc}")

    def uninstall(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.root_level)
        while self.undo:
            self.undo.pop()()

    def ensure_logging(self) -> None:
        """Put the handler and level back if something reconfigured logging (``dictConfig`` drops handlers)."""
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        if root.level != logging.DEBUG:
            root.setLevel(logging.DEBUG)

    def _set(self, owner: Any, name: str, value: Any) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, value)
        self.undo.append(lambda: setattr(owner, name, original))

    def _patch_signing(self) -> None:
        import orders.qfex
        from orders.qfex import signing

        original_sign = signing.sign

        def sign(secret: str, nonce: str, unix_ts: int) -> str:
            _registry.add_secret(secret, "a secret passed to sign()")
            signature = original_sign(secret, nonce, unix_ts)
            _registry.add_signature(signature)
            return signature

        self._set(signing, "sign", sign)
        self._set(orders.qfex, "sign", sign)
        self._register_on_init(signing.Credentials, "orders.qfex.Credentials")

    def _patch_simulator(self) -> None:
        from orders.simulator import SimAccount

        self._register_on_init(SimAccount, "a simulator SimAccount")

    def _register_on_init(self, cls: type, origin: str) -> None:
        """Register ``obj.secret`` whenever a ``cls`` dataclass is made (its ``__post_init__`` runs)."""
        original = cls.__dict__["__post_init__"]

        def __post_init__(obj: Any) -> None:
            _registry.add_secret(getattr(obj, "secret", None), origin)
            original(obj)

        self._set(cls, "__post_init__", __post_init__)

    def _patch_encryption(self) -> None:
        from orders.accounts.encryption import EncryptionKey

        original_encrypt, original_decrypt = EncryptionKey.encrypt, EncryptionKey.decrypt

        def encrypt(key: Any, plaintext: bytes, associated_data: bytes) -> bytes:
            _registry.add_secret(plaintext.decode("utf-8", "replace"), "a secret stored encrypted")
            return original_encrypt(key, plaintext, associated_data)

        def decrypt(key: Any, blob: bytes, associated_data: bytes) -> bytes:
            plaintext = original_decrypt(key, blob, associated_data)
            _registry.add_secret(plaintext.decode("utf-8", "replace"), "a secret stored encrypted")
            return plaintext

        self._set(EncryptionKey, "encrypt", encrypt)
        self._set(EncryptionKey, "decrypt", decrypt)

    def _patch_consumers(self) -> None:
        from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

        original_async, original_sync = AsyncWebsocketConsumer.send, WebsocketConsumer.send

        def where(consumer: Any) -> str:
            return f"{type(consumer).__name__} {consumer.scope.get('path', '')}"

        async def async_send(consumer: Any, text_data: Any = None, bytes_data: Any = None, close: Any = False) -> None:
            _capture("frame", where(consumer), _text(text_data if text_data is not None else bytes_data or ""))
            await original_async(consumer, text_data=text_data, bytes_data=bytes_data, close=close)

        def sync_send(consumer: Any, text_data: Any = None, bytes_data: Any = None, close: Any = False) -> None:
            _capture("frame", where(consumer), _text(text_data if text_data is not None else bytes_data or ""))
            original_sync(consumer, text_data=text_data, bytes_data=bytes_data, close=close)

        self._set(AsyncWebsocketConsumer, "send", async_send)
        self._set(WebsocketConsumer, "send", sync_send)

    def _patch_pages(self) -> None:
        from django.core.handlers.base import BaseHandler

        original_sync, original_async = BaseHandler.get_response, BaseHandler.get_response_async

        def record(request: Any, response: Any) -> None:
            where = f"{request.method} {request.get_full_path()} -> {response.status_code}"
            headers = "\n".join(f"{name}: {value}" for name, value in response.items())
            cookies = response.cookies.output() if response.cookies else ""
            body = "" if getattr(response, "streaming", False) else _text(response.content)
            _capture("page", where, f"{headers}\n{cookies}\n\n{body}")

        def get_response(handler: Any, request: Any) -> Any:
            response = original_sync(handler, request)
            record(request, response)
            return response

        async def get_response_async(handler: Any, request: Any) -> Any:
            response = await original_async(handler, request)
            record(request, response)
            return response

        self._set(BaseHandler, "get_response", get_response)
        self._set(BaseHandler, "get_response_async", get_response_async)

    def _patch_layers(self) -> None:
        from channels.layers import InMemoryChannelLayer

        # The in-memory group_send calls send once per member: wrapping send sees every message.
        self._wrap_layer_method(InMemoryChannelLayer, "send")
        try:
            from channels_redis.core import RedisChannelLayer
        except ImportError:
            return
        self._wrap_layer_method(RedisChannelLayer, "send")
        self._wrap_layer_method(RedisChannelLayer, "group_send")

    def _wrap_layer_method(self, cls: type, name: str) -> None:
        original = cls.__dict__[name]

        async def method(layer: Any, target: str, message: Any) -> Any:
            _capture("layer", f"{type(layer).__name__}.{name} {target}", _text(message))
            return await original(layer, target, message)

        self._set(cls, name, method)


_hooks = _Hooks()


@contextmanager
def scanning(*, exclusive: bool = False) -> Iterator[Scan]:
    """Capture (and afterwards scan) everything inside the block, with debug logging on.

    ``scan.findings`` is filled when the block exits. The session-wide scan, if on, sees the same text,
    unless ``exclusive`` (for a test that leaks on purpose to prove the scan works; its test report's
    captured output still reaches the session scan, so such a test must leak through a frame, a page or
    the channel layer, not through a log line or a print).
    """
    scan = Scan()
    (_exclusive if exclusive else _sinks).append(scan)
    _hooks.install()
    try:
        yield scan
    finally:
        _hooks.uninstall()
        (_exclusive if exclusive else _sinks).remove(scan)
        scan.rescan()


def registered_counts() -> dict[str, int]:
    return {
        "secrets": len(_registry.secrets),
        "signatures": len(_registry.signatures),
        "short_secrets_not_scanned": len(_registry.short),
    }


# --- the pytest plugin -------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--secret-scan",
        action="store_true",
        default=False,
        help=f"S12: scan every log record, frame and page of the run for secrets (also: {ENV_VAR}=1).",
    )


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("--secret-scan")) or os.environ.get(ENV_VAR, "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    if _enabled(config):
        config.pluginmanager.register(SessionScan(), "qfexdash-secret-scan")


class SessionScan:
    """The session-wide scan: installed at session start, reported at the end."""

    def __init__(self) -> None:
        self.scan = Scan()

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        _sinks.append(self.scan)
        _hooks.install()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        global _current_test
        _current_test = item.nodeid
        _hooks.ensure_logging()
        try:
            return (yield)
        finally:
            self.scan.scan_pending()
            _current_test = ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, content in report.sections:
            if name.startswith("Captured std"):
                self.scan.add("output", f"{name} ({report.when})", content)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Any:
        self.scan.rescan()
        if self.scan.findings and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self._write_report()
        return (yield)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.scan in _sinks:
            _sinks.remove(self.scan)
            _hooks.uninstall()

    def figures(self) -> dict[str, Any]:
        return {
            "captured": dict(self.scan.counts),
            "distinct_texts": len(self.scan.entries),
            "captured_chars": self.scan.captured_chars,
            **registered_counts(),
            "findings": len(self.scan.findings),
            "hooks_missing": list(_hooks.missing),
        }

    def _write_report(self) -> None:
        path = os.environ.get(REPORT_ENV_VAR)
        if path:
            Path(path).write_text(json.dumps(self.figures(), indent=2) + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        figures = self.figures()
        counts = ", ".join(f"{count} {channel}" for channel, count in figures["captured"].items())
        failed = bool(self.scan.findings)
        terminalreporter.write_sep("=", "secret scan (S12)", red=failed, green=not failed)
        terminalreporter.write_line(
            f"captured {counts} ({figures['distinct_texts']} distinct texts, {figures['captured_chars']:,} chars); "
            f"looked for {figures['secrets']} secrets and {figures['signatures']} signatures "
            f"({figures['short_secrets_not_scanned']} secrets under {MIN_SECRET_LENGTH} characters not scanned)"
        )
        for missing in figures["hooks_missing"]:
            terminalreporter.write_line(f"not hooked (not importable): {missing}")
        if not failed:
            terminalreporter.write_line("no secret or signature found", green=True)
            return
        terminalreporter.write_line(f"SECRET SCAN FAILED: {len(self.scan.findings)} finding(s)", red=True, bold=True)
        for finding in self.scan.findings:
            terminalreporter.write_line("  " + finding.describe(), red=True)
