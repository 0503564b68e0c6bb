"""Rules about the repository's layout that no other test would notice being broken.

1. ``bench/`` never imports ``tests``. The benchmarks run from a checkout as ``python -m bench`` (and
   ``bench.soak``, ``bench.load``); what they share with the tests (Daphne with its own SQLite, the
   Chromium binary, the live page's stand-in servers, the PostgreSQL + Redis cluster) lives in ``bench/``
   and the tests import it from there. The other direction would make the benchmarks depend on test
   code that is free to change with the tests.
2. No tracked file names a path of the machine it was written on. A path like ``/home/alice/...``, the
   checkout's own location, or a reference file beside the checkout (``../shared/...``) works only on
   that machine: on a fresh clone, in CI and on a server it points at nothing, or at something else.
   System locations that are the same everywhere (``/usr/bin/chromium``, ``/etc/...``, ``/proc/...``,
   ``/srv/qfexdash`` in the deployment guide) are fine and not looked for.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# --- 1. bench/ never imports tests ------------------------------------------------------------------

# A dotted module name under tests, as passed to importlib.import_module, __import__ or ``python -m``.
_TESTS_MODULE = re.compile(r"^tests(\.[A-Za-z_]\w*)*$")


def imports_of_tests(source: str, filename: str = "<source>") -> list[str]:
    """Every place in ``source`` that imports the ``tests`` package: ``import tests...``, ``from tests...
    import``, or a string naming a module under it (``import_module("tests.x")``, ``["-m", "tests.x"]``)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if _TESTS_MODULE.match(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and _TESTS_MODULE.match(node.module):
                found.append(f"line {node.lineno}: from {node.module} import …")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _TESTS_MODULE.match(node.value):
            found.append(f"line {node.lineno}: the module name {node.value!r}")
    return found


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import tests.daphne", True),
        ("import tests", True),
        ("from tests.web.browser.harness import PageServer", True),
        ("from tests import chromium", True),
        ("def f():\n    from tests.daphne import ROOT", True),  # a function-level import counts too
        ("importlib.import_module('tests.web.e2e.world')", True),
        ("subprocess.run([python, '-m', 'tests.web.e2e.world'])", True),
        ("from bench.harness import ROOT", False),
        ("import testsuite", False),
        ("from .stats import p95", False),
        ("'''See tests/bench/test_smoke.py.'''", False),  # a path in prose is not an import
    ],
)
def test_the_import_rule_catches_what_it_should(source: str, caught: bool) -> None:
    assert bool(imports_of_tests(source)) is caught


def test_bench_never_imports_tests() -> None:
    offenders = {}
    for path in sorted((ROOT / "bench").rglob("*.py")):
        found = imports_of_tests(path.read_text(), str(path))
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert not offenders, (
        "bench/ must not import the tests package (tests may import bench, never the other way round): move "
        f"what both need into a module under bench/ and import it from there. Found: {offenders}"
    )


# --- 2. no tracked file names a path of the machine it was written on ---------------------------------

# Where a person's or a machine's own files live; never the same on another machine.
_MACHINE_PATH = re.compile(
    r"""
      (?<![\w.])/(?:home|Users)/[^/\s"'`]+   # a user's home: /home/<user>, /Users/<user>
    | (?<![\w.])/root/                        # root's home
    | (?<![\w.])/(?:work|mnt|media)/          # a workspace or mounted disk of one machine
    | (?<![\w])\.\./(?:\.\./)*shared\b        # reference files beside the checkout
    | \b[A-Za-z]:\\(?:Users|Documents\ and\ Settings)\\  # a Windows home
    """,
    re.VERBOSE,
)

# Files that may show such a path, and why. Keep this short: each entry is a path that is right on
# every machine, or text that is about these paths rather than using one.
ALLOWED = {
    "tests/test_layout.py": "names the patterns it looks for",
}


def machine_paths(text: str) -> list[str]:
    """The machine-specific paths in ``text`` (:data:`_MACHINE_PATH`)."""
    return [m.group(0) for m in _MACHINE_PATH.finditer(text)]


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, timeout=60
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout, so there are no tracked files to check ({exc})")
    return [name for name in out.split("\0") if name]


@pytest.mark.parametrize(
    ("text", "caught"),
    [
        ("See /work/shared/docs/qfex-protocol.md", True),
        ("cd /home/alice/src/qfexdash", True),
        ("open('/root/.cache/x')", True),
        ("/Users/bob/Projects", True),
        ("read ../shared/docs/qfex-protocol.md", True),
        ("read ../../shared/notes", True),
        (r"C:\Users\carol\qfexdash", True),
        ("/usr/bin/chromium", False),
        ("EnvironmentFile=/etc/qfexdash/env", False),
        ("/proc/self/status", False),
        ("WorkingDirectory=/srv/qfexdash", False),
        ("see docs/qfex-protocol.md §4.3", False),
        ("https://example.com/home/index.html", False),  # a URL's path is not a file on this machine
        ("ws://127.0.0.1:8000/ws/accounts/7/", False),
    ],
)
def test_the_machine_path_rule_catches_what_it_should(text: str, caught: bool) -> None:
    assert bool(machine_paths(text)) is caught


def test_no_tracked_file_names_a_path_of_the_machine_it_was_written_on() -> None:
    offenders = {}
    for name in _tracked_files():
        if name in ALLOWED:
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary files, and files deleted but not yet committed
        found = machine_paths(text)
        if found:
            offenders[name] = sorted(set(found))
    assert not offenders, (
        "These tracked files name paths that exist only on the machine they were written on; on a fresh "
        "clone, in CI or on a server they point at nothing. Use a path inside the repository (relative to "
        "it, or computed from __file__), an environment variable, or a system location that is the same "
        f"everywhere. If one is truly right on every machine, add it to ALLOWED with the reason. {offenders}"
    )
