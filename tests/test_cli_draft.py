"""``diffedit draft`` end to end on the bundled demo model (loaded from disk as users run it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diffedit.document.blocks import parse_blocks
from diffedit.document.drafts import sections
from tests.helpers.cli import run_cli as _run

OUTLINE = """# Field guide

## Why

- the problem in one line

## How

Explain the steps in order.

## Next steps
"""
HEADINGS_AND_NOTES = [b.text(OUTLINE) for b in parse_blocks(OUTLINE)]


@pytest.fixture
def outline(tmp_path: Path) -> Path:
    p = tmp_path / "outline.md"
    p.write_text(OUTLINE, encoding="utf-8")
    return p


def _without(text: str, paragraphs: list[str]) -> str:
    for p in paragraphs:
        assert text.count("\n\n" + p) == 1
        text = text.replace("\n\n" + p, "")
    return text


def test_draft_fills_each_empty_section_and_keeps_headings_and_notes(
    outline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "draft", str(outline), "--json", "--seed", "5", "--steps", "3", "--visual")
    assert code == 0, err
    report = json.loads(out)  # stdout is the report alone
    assert [s["number"] for s in report["sections"]] == [2, 3, 4]  # the empty ones; the title is a container
    blocks = [b for s in report["sections"] for b in s["blocks"]]
    assert len(blocks) == 3 and report["drafted_blocks"] == 3 and not report["stopped"]
    assert [b["seed"] for b in blocks] == [5, 6, 7]  # one seed per block, from --seed on
    assert all(b["steps"] >= 1 and b["band"][0] <= b["tokens"] <= b["band"][1] for b in blocks)
    assert report["demo_model"] is True and "demo model" in err
    assert "canvas 1 · step" in err  # --visual into a pipe: plain progress lines, no escapes
    text = report["text"]
    paragraphs = [b["text"] for b in blocks]
    assert _without(text, paragraphs) == OUTLINE  # headings and notes byte for byte, nothing else changed
    after = [b.text(text) for b in parse_blocks(text)]
    assert [t for t in after if t not in paragraphs] == HEADINGS_AND_NOTES
    # Each section now holds its block right after its notes.
    found = sections(text)
    assert [s.blocks[-1].text(text) for s in found[1:]] == paragraphs
    assert outline.read_text(encoding="utf-8") == OUTLINE  # no --in-place: the file is untouched


def test_in_place_drafts_the_chosen_sections_block_after_block(
    outline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys, "draft", str(outline), "--sections", "3", "--blocks", "2", "--length", "short", "--in-place"
    )
    assert code == 0, err
    text = outline.read_text(encoding="utf-8")
    how = sections(text)[2]
    assert [b.kind for b in how.blocks] == ["paragraph"] * 3  # the line of intent, then two drafted blocks
    assert how.blocks[0].text(text) == "Explain the steps in order."
    drafted = [b.text(text) for b in how.blocks[1:]]
    assert _without(text, drafted) == OUTLINE
    assert out.startswith(f"{outline}: drafted 2 block(s) in section(s) 3, ") and len(out.splitlines()) == 1


def test_stopping_mid_draft_keeps_only_the_committed_blocks(
    outline: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffedit.engine.engine import Engine

    real = Engine.rewrite
    calls: list[str] = []

    def interrupted_on_the_second_block(self: Engine, job: Any, **kw: Any) -> Any:
        calls.append(job.request.prefix)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl+C while the second block denoises
        return real(self, job, **kw)

    monkeypatch.setattr(Engine, "rewrite", interrupted_on_the_second_block)
    code, _out, err = _run(capsys, "draft", str(outline), "--in-place", "--steps", "2")
    assert code == 130
    assert "1 block(s) drafted before are kept" in err
    text = outline.read_text(encoding="utf-8")
    why = sections(text)[1]
    assert len(why.blocks) == 2  # the note and the one committed block
    assert _without(text, [why.blocks[1].text(text)]) == OUTLINE
    assert why.blocks[1].text(text) in calls[1]  # the second block read the first


def test_list_and_bad_input_never_load_a_model(
    outline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "draft", str(outline), "--list")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4 and "container" in lines[0] and "drafted by default" in lines[1]
    flat = tmp_path / "flat.md"
    flat.write_text("Just a paragraph.\n", encoding="utf-8")
    for args, message in (
        ([str(flat)], "has no headings"),
        ([str(outline), "--sections", "9"], "out of range"),
        ([str(outline), "--blocks", "0"], "--blocks must be at least 1"),
    ):
        code, out, err = _run(capsys, "draft", *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and not out
