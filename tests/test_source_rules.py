"""Rules about the app's own source that the code cannot check for itself, each with a finder that is shown
to catch what it looks for:

1. a setting is read as ``settings.NAME``: its one default is in qfexdash/settings.py, and a
   ``getattr(settings, NAME, default)`` writes a second one that drifts (two_factor once fell back to False
   where settings say "on unless DEBUG");
2. a person is typed as a person: every parameter or attribute about a user or an actor uses the aliases
   of orders/accounts/people.py (``User``, ``Visitor``), not ``Any``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Parameter and attribute names that hold a person.
PERSON_NAMES = {"user", "actor", "owner_user", "acting_user"}
Finder = Callable[[str, str], list[str]]


def scan_orders(finder: Finder) -> list[str]:
    """What ``finder(source, filename)`` reports in every module of orders/, as ``path:line: …`` lines."""
    return [
        line
        for path in sorted((ROOT / "orders").rglob("*.py"))
        for line in finder(path.read_text(), str(path.relative_to(ROOT)))
    ]


# --- 1. settings without a second default ----------------------------------------------------------------


def settings_defaults_in(source: str, filename: str = "<source>") -> list[str]:
    """Every ``getattr(settings, NAME, default)`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"):
            continue
        target = node.args[0] if node.args else None
        named = target.id if isinstance(target, ast.Name) else target.attr if isinstance(target, ast.Attribute) else ""
        if named == "settings" and len(node.args) + len(node.keywords) >= 3:
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


# --- 2. people typed as people ---------------------------------------------------------------------------


def _annotated_names(tree: ast.AST) -> list[tuple[str, ast.expr | None, int]]:
    """(name, annotation, line) of every function parameter and annotated assignment."""
    named: list[tuple[str, ast.expr | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            for param in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                named.append((param.arg, param.annotation, param.lineno))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            named.append((node.target.id, node.annotation, node.lineno))
    return named


def people_typed_any(source: str, filename: str = "<source>") -> list[str]:
    """Each parameter or class attribute named like a person whose annotation is ``Any``."""
    return [
        f"{filename}:{line}: {name}"
        for name, annotation, line in _annotated_names(ast.parse(source, filename))
        if name in PERSON_NAMES and annotation is not None and ast.unparse(annotation) == "Any"
    ]


# --- the finders find, and orders/ is clean ----------------------------------------------------------------

# Each sample is a module; the lines marked "caught" are the ones its finder must report, and only those.
SETTINGS_SAMPLE = """
rate = getattr(settings, "QFEXDASH_WS_RATE", 20)  # caught
proxies = int(getattr(settings, "QFEXDASH_TRUSTED_PROXIES", 0))  # caught
keys = getattr(django.conf.settings, name, None)  # caught
direct = settings.QFEXDASH_WS_RATE
two_arguments = getattr(settings, "QFEXDASH_WS_RATE")
not_settings = getattr(options, "QFEXDASH_WS_RATE", 20)
"""
PEOPLE_SAMPLE = """
def a(user: Any) -> None: ...  # caught
def b(*, actor: Any, name: str) -> None: ...  # caught
class C:
    acting_user: Any = None  # caught
async def d(self, owner_user: Any = None) -> None: ...  # caught
def e(user: User) -> None: ...
def f(user: Visitor | None) -> None: ...
def g(session: Any) -> None: ...
"""


def _marked_lines(sample: str) -> list[int]:
    return [number for number, line in enumerate(sample.splitlines(), 1) if line.endswith("# caught")]


@pytest.mark.parametrize(
    ("finder", "sample"), [(settings_defaults_in, SETTINGS_SAMPLE), (people_typed_any, PEOPLE_SAMPLE)]
)
def test_each_finder_catches_what_it_looks_for(finder: Finder, sample: str) -> None:
    reported = sorted(int(line.split(":")[1]) for line in finder(sample, "sample"))
    assert reported == _marked_lines(sample)
    assert reported, "a sample without a caught line would prove nothing"


@pytest.mark.parametrize(
    ("finder", "fix"),
    [
        (settings_defaults_in, "read these as settings.NAME; the default belongs in qfexdash/settings.py alone"),
        (people_typed_any, "type these with orders.accounts.people.User (or Visitor where nobody may be signed in)"),
    ],
)
def test_orders_keeps_the_rule(finder: Finder, fix: str) -> None:
    assert scan_orders(finder) == [], fix
