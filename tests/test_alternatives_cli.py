"""``diffedit rewrite FILE --block N --alternatives K --json`` end to end on the bundled demo model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffedit.cli import main
from diffedit.document.blocks import parse_blocks

DOC = "# Notes\n\nA short paragraph to rewrite here.\n\n- an item\n"


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["rewrite", *args, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_alternatives_report_the_run_seed_and_each_candidate_with_its_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    md = tmp_path / "doc.md"
    md.write_text(DOC, encoding="utf-8")
    args = (str(md), "--block", "2", "--steps", "8", "--device", "cpu")
    report = _json(capsys, *args, "--alternatives", "3", "--seed", "40")
    alternatives = report["alternatives"]
    assert isinstance(alternatives, list) and len(alternatives) == 3
    assert report["seed"] == 40 and [a["seed"] for a in alternatives] == [40, 41, 42]
    assert report["context_encodes"] == 1  # one encode of the context for the three candidates
    assert report["original"] == "A short paragraph to rewrite here."
    for a in alternatives:  # block-true: each candidate is one paragraph
        assert a["blocks"][0]["kind"] == "paragraph" and a["blocks"][0]["same_shape"]
        assert [b.kind for b in parse_blocks(str(a["replacement"]))] == ["paragraph"]
    # the run's seed reproduces them all; a candidate's own seed reproduces it alone (CPU)
    assert _json(capsys, *args, "--alternatives", "3", "--seed", "40")["alternatives"] == alternatives
    alone = _json(capsys, *args, "--seed", "41")
    assert alone["replacement"] == alternatives[1]["replacement"]
    assert md.read_text(encoding="utf-8") == DOC  # alternatives write nothing


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--alternatives", "0"], "from 1 to 8"), (["--alternatives", "2", "--in-place"], "writes nothing")],
)
def test_bad_alternatives_are_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    md = tmp_path / "doc.md"
    md.write_text(DOC, encoding="utf-8")
    assert main(["rewrite", str(md), "--block", "2", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
