"""docs/reliability.md names the test behind each guarantee: every test and test file it cites must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "reliability.md"


def defined_tests() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        found.update(re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(encoding="utf-8"), re.M))
    return found


def test_every_test_the_reliability_doc_cites_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    cited = set(re.findall(r"\b(test_\w+)\b(?!\.py)", text))
    files = set(re.findall(r"\b((?:tests/)?[\w/]*test_\w+\.py)\b", text))
    assert cited, "the doc cites no tests"
    assert sorted(cited - defined_tests()) == []
    test_files = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    missing_files = [f for f in files if not ((ROOT / f).exists() if "/" in f else f in test_files)]
    assert missing_files == []
