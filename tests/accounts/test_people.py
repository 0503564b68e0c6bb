"""A person is typed as a person: every signature in orders/ about a user or an actor uses the aliases of
orders/accounts/people.py (``User``, ``Visitor``), not ``Any``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Parameter and attribute names that hold a person.
PERSON_NAMES = {"user", "actor", "owner_user", "acting_user"}


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


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("def f(user: Any) -> None: ...", True),
        ("def f(*, actor: Any, name: str) -> None: ...", True),
        ("class F:\n    acting_user: Any = None", True),
        ("async def f(self, owner_user: Any = None) -> None: ...", True),
        ("def f(user: User) -> None: ...", False),
        ("def f(user: Visitor | None) -> None: ...", False),
        ("def f(session: Any) -> None: ...", False),
    ],
)
def test_the_detector(source: str, caught: bool) -> None:
    assert bool(people_typed_any(source)) is caught


def test_no_person_in_orders_is_typed_any() -> None:
    found = [
        line
        for path in sorted((ROOT / "orders").rglob("*.py"))
        for line in people_typed_any(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == [], "type these with orders.accounts.people.User (or Visitor where nobody may be signed in)"
