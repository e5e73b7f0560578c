"""``rewrite --keep``/``--polish`` and ``inspect`` from a terminal, through the real engine (demo model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli as _run

DOC = "# Title\n\nThe quick brown fox jumps over the lazy dog near the river.\n\n- item a\n- item b\n"


@pytest.fixture
def md(tmp_path: Path) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(DOC, encoding="utf-8")
    return p


def test_keep_reports_where_each_phrase_landed(md: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "rewrite", str(md), "--block", "2", "--keep", "brown fox", "--keep", "river",
        "--seed", "5", "--steps", "3", "--json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    kept = report["kept"]
    assert [k["phrase"] for k in kept] == ["brown fox", "river"]
    assert [report["replacement"][k["start"] : k["end"]] for k in kept] == ["brown fox", "river"]
    assert kept[0]["end"] <= kept[1]["start"]


@pytest.mark.parametrize("seed", [1, 2])
def test_kept_words_in_several_blocks_hold_in_the_batched_run(
    md: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    """Blocks 2-4 run as one batch of canvases; each block's kept words land in that block's rewrite."""
    code, out, _ = _run(
        capsys, "rewrite", str(md), "--block", "2", "--to", "4", "--keep", "lazy dog", "--keep", "item b",
        "--seed", str(seed), "--json",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    replacement = report["replacement"]
    assert [replacement[k["start"] : k["end"]] for k in report["kept"]] == ["lazy dog", "item b"]
    assert [b["kind"] for b in report["blocks"]] == ["paragraph", "list item", "list item"]
    assert replacement.splitlines()[-1].startswith("- ") and "item b" in replacement.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--block", "2", "--keep", "zebra"], "“zebra” is not in the text being rewritten"),
        (["--block", "1", "--keep", "#"], "is not text the rewrite writes"),
        (["--block", "2", "--keep", "fox", "--free-form"], "shape-true"),
        (["--block", "2", "--polish", "1.5"], "--polish"),
    ],
)
def test_keeps_that_cannot_be_held_are_refused_before_the_model_loads(
    md: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    from diffedit.engine import engine

    monkeypatch.setattr(engine.Engine, "load", None)  # a refusal never gets as far as loading the model
    code, out, err = _run(capsys, "rewrite", str(md), *args)
    assert code == 2 and message in err and out == ""
    assert md.read_text(encoding="utf-8") == DOC


def test_inspect_json_spans_tile_the_blocks(md: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "inspect", str(md), "--block", "2", "--to", "3", "--json", "--top", "2")
    assert code == 0
    tokens = json.loads(out)["tokens"]
    start, end = DOC.index("The quick"), DOC.index("- item a") + len("- item a")
    assert tokens[0]["start"] == start and tokens[-1]["end"] == end
    assert "".join(t["text"] for t in tokens) == DOC[start:end]
    assert all(DOC[t["start"] : t["end"]] == t["text"] for t in tokens)
    assert all(0 <= t["p"] <= 1 and t["entropy"] >= 0 and len(t["top"]) == 2 for t in tokens)


def test_inspect_reads_with_int4_weights_close_to_the_unquantised_reading(
    md: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readings = []
    for how in ("none", "int4"):
        code, out, _ = _run(capsys, "inspect", str(md), "--block", "2", "--json", "--quantize", how)
        assert code == 0
        readings.append(json.loads(out)["tokens"])
    plain, int4 = readings
    assert [t["text"] for t in int4] == [t["text"] for t in plain]  # the same tokens, read by int4 weights
    assert [t["p"] for t in int4] != [t["p"] for t in plain]  # the weights did change
    assert max(abs(a["p"] - b["p"]) for a, b in zip(plain, int4, strict=True)) < 0.5


def test_polish_keeps_the_file_but_its_weak_tokens(md: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "rewrite", str(md), "--block", "2", "--polish", "0.2", "--seed", "1", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["polished_tokens"] >= 1
    assert report["text"].startswith("# Title\n\n") and report["text"].endswith("\n\n- item a\n- item b\n")
