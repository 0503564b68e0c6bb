"""What the commands print is safe for a terminal (S39): no exchange string can steer it.

A client order id, a symbol or an exchange's error code is free text chosen by whoever controls the
exchange (or the account). Printed raw, ``ESC ] 0 ; … BEL`` retitles the window, ``ESC [ 2 J`` clears it,
``ESC ] 8`` plants a link, the 8-bit ``CSI`` (U+009B) does the same on terminals that take it, and a
right-to-left override (U+202E) makes ``evil.exe`` read as something else. So every character of Unicode
category C — controls (Cc, C1 included), format characters (Cf: bidi overrides and isolates, zero-width
characters), surrogates, private-use and unassigned code points — is replaced before anything is written:

- :func:`printable` — in text, by U+FFFD (the replacement character, "something unprintable was here");
  ``keep_newlines`` keeps ``\\n`` for our own multi-line output;
- :func:`json_for_terminal` — in JSON text, by its ``\\uXXXX`` escape, so the JSON still reads back exactly;
- :class:`TerminalSafeCommand` — the base of every command here: its ``stdout`` and ``stderr`` (the one-line
  failure Django prints from ``CommandError`` included) pass through :func:`printable` before the command's
  own colour codes are added.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.core.management.base import BaseCommand, OutputWrapper

__all__ = ["REPLACEMENT", "TerminalOutput", "TerminalSafeCommand", "json_for_terminal", "printable"]

REPLACEMENT = "\ufffd"


def _unprintable(character: str) -> bool:
    return unicodedata.category(character).startswith("C")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every category-C character replaced by U+FFFD (``\\n`` kept when asked)."""
    return "".join(REPLACEMENT if _unprintable(ch) and not (keep_newlines and ch == "\n") else ch for ch in str(text))


def _escape(character: str) -> str:
    code = ord(character)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP: JSON writes it as a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_for_terminal(text: str) -> str:
    """JSON text with every category-C character but the newline written as its ``\\uXXXX`` escape.

    Such characters can only stand inside JSON strings (JSON's own whitespace is space, tab, newline and
    carriage return, and our encoders use only spaces and newlines), where the escape means the same.
    """
    return "".join(_escape(ch) if _unprintable(ch) and ch != "\n" else ch for ch in text)


class TerminalOutput(OutputWrapper):
    """An ``OutputWrapper`` that makes every message printable before styling and writing it."""

    # The signature of Django's own OutputWrapper.write, which its stubs also mark as overriding TextIOBase's.
    def write(self, msg: str = "", style_func: Any = None, ending: str | None = None) -> None:  # type: ignore[override]
        super().write(printable(msg, keep_newlines=True), style_func, ending)


class TerminalSafeCommand(BaseCommand):
    """A management command whose output passes through :class:`TerminalOutput`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._use_terminal_output(self.stdout._out, self.stderr._out)

    def _use_terminal_output(self, stdout: Any, stderr: Any) -> None:
        error_style = self.stderr.style_func
        self.stdout = TerminalOutput(stdout)
        self.stderr = TerminalOutput(stderr)
        self.stderr.style_func = error_style

    def execute(self, *args: Any, **options: Any) -> Any:
        # BaseCommand.execute would wrap a given stdout/stderr in a plain OutputWrapper: wrap them here instead.
        stdout, stderr = options.pop("stdout", None), options.pop("stderr", None)
        self._use_terminal_output(stdout or self.stdout._out, stderr or self.stderr._out)
        return super().execute(*args, **options)
