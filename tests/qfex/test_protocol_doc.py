"""docs/qfex-protocol.md stays consistent with the code that cites it and with its own test vectors."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from orders.qfex import sign
from tests.qfex.test_signing import VECTORS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "qfex-protocol.md"
# "docs/qfex-protocol.md §3.2", "docs/qfex-protocol.md §2.6, §3.2, §3.6"
_CITATION = re.compile(r"docs/qfex-protocol\.md((?:,? §\d+(?:\.\d+)?)+)")
_VECTOR_ROW = re.compile(r"^\| (V\d) \| `([^`]*)` \| `([^`]*)` \| (\d+) \| `([^`]*)` \| `([0-9a-f]{64})` \|$", re.M)


def _sections() -> set[str]:
    found = set()
    for line in DOC.read_text().splitlines():
        match = re.match(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", line)
        if match:
            found.add(match.group(1))
    return found


def test_every_cited_section_exists() -> None:
    sections = _sections()
    assert {"1.5", "2.2", "2.7", "3.2", "3.5", "3.7", "4.3", "7"} <= sections
    missing = {}
    for path in [*ROOT.glob("orders/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/**/*.py")]:
        for match in _CITATION.finditer(path.read_text()):
            cited = set(re.findall(r"§(\d+(?:\.\d+)?)", match.group(1)))
            if cited - sections:
                missing[str(path.relative_to(ROOT))] = sorted(cited - sections)
    assert not missing, f"these files cite sections docs/qfex-protocol.md does not have: {missing}"


def test_the_docs_vectors_are_the_tested_ones_and_correct() -> None:
    rows = _VECTOR_ROW.findall(DOC.read_text())
    assert [row[0] for row in rows] == ["V1", "V2", "V3", "V4", "V5", "V6"]
    for name, secret, nonce, unix_ts, signed, signature in rows:
        assert signed == f"{nonce}:{unix_ts}", name
        assert hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest() == signature, name
        assert sign(secret, nonce, int(unix_ts)) == signature, name
    assert [(n, s, no, int(ts), sig) for n, s, no, ts, _, sig in rows] == VECTORS
