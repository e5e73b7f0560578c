"""The CLI end to end through the real engine on a checkpoint loaded from disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diffedit.cli import main
from diffedit.document.blocks import parse_blocks

DOC = "# Title\n\nFirst paragraph with some words.\n\n- item a\n- item b\n\nLast paragraph.\n"


@pytest.fixture
def md(tmp_path: Path) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(DOC, encoding="utf-8")
    return p


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_blocks_lists_numbers_kinds_and_first_words(md: Path, capsys) -> None:
    code, out, _ = _run(capsys, "blocks", str(md))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[1].split()[:2] == ["2", "paragraph"] and "First paragraph with" in lines[1]
    assert "list item" in lines[2]


def test_rewrite_changes_only_the_chosen_block(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, _ = _run(
        capsys, "rewrite", str(md), "--block", "2", "--model", str(tiny_checkpoint), "--seed", "4"
    )
    assert code == 0
    b = parse_blocks(DOC)[1]
    assert out.startswith(DOC[: b.start])
    assert out.endswith(DOC[b.end :])
    assert out != DOC
    assert md.read_text(encoding="utf-8") == DOC  # stdout only: the file is untouched


def test_json_report(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, _ = _run(
        capsys,
        "rewrite",
        str(md),
        "--block",
        "3",
        "--to",
        "4",
        "--model",
        str(tiny_checkpoint),
        "--seed",
        "2",
        "--steps",
        "3",
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert set(report) == {
        "text",
        "replacement",
        "steps",
        "tokens_per_forward",
        "encode_ms",
        "step_ms_median",
        "total_s",
        "seed",
        "model",
        "compiled",
        "original",
        "free_form",
        "blocks",
    }
    assert report["compiled"] is None  # not asked for
    assert report["free_form"] is False  # block-true by default
    assert [b["kind"] for b in report["blocks"]] == ["list item", "list item"]
    for b in report["blocks"]:
        low, high = b["band"]
        assert b["same_shape"] is True and low <= high and b["ratio"] > 0
    assert report["seed"] == 2 and report["model"] == tiny_checkpoint.name
    assert report["steps"] % 3 == 0 and report["steps"] >= 3
    blocks = parse_blocks(DOC)
    assert report["original"] == DOC[blocks[2].start : blocks[3].end]
    assert report["text"] == DOC[: blocks[2].start] + report["replacement"] + DOC[blocks[3].end :]
    assert [b.kind for b in parse_blocks(report["text"])] == [b.kind for b in blocks]


def test_free_form_json_report(md: Path, tiny_checkpoint: Path, capsys) -> None:
    args = (
        "rewrite",
        str(md),
        "--block",
        "2",
        "--model",
        str(tiny_checkpoint),
        "--seed",
        "2",
        "--steps",
        "3",
    )
    code, out, _ = _run(capsys, *args, "--json", "--free-form")
    assert code == 0
    report = json.loads(out)
    assert report["free_form"] is True and report["blocks"] == []


def test_in_place_writes_the_file(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, _ = _run(
        capsys,
        "rewrite",
        str(md),
        "--block",
        "5",
        "--model",
        str(tiny_checkpoint),
        "--seed",
        "1",
        "--in-place",
        "--json",
    )
    assert code == 0
    assert md.read_text(encoding="utf-8") == json.loads(out)["text"]
    assert [p.name for p in md.parent.iterdir()] == ["doc.md"]  # no temp files left behind


def _rewrite_block_2(
    capsys: pytest.CaptureFixture[str], path: Path, model: Path, *extra: str
) -> tuple[int, str, str]:
    """``diffedit rewrite PATH --block 2 --model MODEL EXTRA...``."""
    return _run(capsys, "rewrite", str(path), "--block", "2", "--model", str(model), *extra)


def test_in_place_failure_leaves_the_file_intact(
    md: Path, tiny_checkpoint: Path, capsys, monkeypatch
) -> None:
    def boom(*_a: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    code, out, err = _rewrite_block_2(capsys, md, tiny_checkpoint, "--seed", "1", "--in-place")
    assert code == 2 and out == ""
    assert "disk is full" in err and "nothing was written" in err and len(err.strip().splitlines()) == 1
    assert md.read_text(encoding="utf-8") == DOC
    assert [p.name for p in md.parent.iterdir()] == ["doc.md"]


def test_in_place_keeps_bom_and_crlf(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    f = tmp_path / "windows.md"
    original = "\ufeff" + DOC.replace("\n", "\r\n")
    f.write_bytes(original.encode("utf-8"))
    code, out, _ = _rewrite_block_2(capsys, f, tiny_checkpoint, "--seed", "1", "--in-place", "--json")
    assert code == 0
    data = f.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert data.decode("utf-8-sig").replace("\r\n", "\n") == json.loads(out)["text"]


def test_visual_animates_then_leaves_the_final_text(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, err = _rewrite_block_2(
        capsys, md, tiny_checkpoint, "--seed", "3", "--steps", "4", "--visual", "--json"
    )
    assert code == 0
    assert err.count("\x1b[?2026h") >= 5  # one synchronized repaint per step, plus the final one
    assert "step 4/4" in err and "\x1b[9m" in err  # noisy positions are struck through
    final = json.loads(out)["replacement"]
    assert err.rstrip("\n").endswith(final + "\x1b[?2026l")


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["rewrite", "{dir}/missing.md", "--block", "1"], "missing.md: .*does not exist"),
        ("latin1", ["rewrite", "{file}", "--block", "1"], "is not UTF-8"),
        ("binary", ["rewrite", "{file}", "--block", "1"], "binary file"),
        ("doc", ["rewrite", "{file}", "--block", "9"], "block 9 is out of range: .* has 5 blocks"),
        ("empty", ["rewrite", "{file}", "--block", "1"], "no Markdown blocks"),
        ("doc", ["rewrite", "{file}", "--block", "1", "--model", "{dir}"], "not a transformers checkpoint"),
        ("doc", ["rewrite", "{file}", "--block", "1", "--strength", "0"], "--strength must be in"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, capsys, setup, args, message) -> None:
    f = tmp_path / "in.md"
    content = {
        "latin1": b"caf\xe9\n",
        "binary": b"\x89PNG\x00\x00",
        "doc": DOC.encode(),
        "empty": b"\n\n",
        None: None,
    }[setup]
    if content is not None:
        f.write_bytes(content)
    argv = [a.format(file=f, dir=tmp_path) for a in args] + ["--in-place"]
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err)
    if content is not None:
        assert f.read_bytes() == content


def test_entry_point_runs_as_a_program(md: Path, tiny_checkpoint: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffedit",
            "rewrite",
            str(md),
            "--block",
            "2",
            "--model",
            str(tiny_checkpoint),
            "--steps",
            "2",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Title\n\n") and proc.stdout.endswith(
        "- item a\n- item b\n\nLast paragraph.\n"
    )


def test_compile_runs_the_compiled_step_or_says_why_not(
    md: Path, tiny_checkpoint: Path, capsys, monkeypatch
) -> None:
    from diffedit.engine import denoise as denoise_mod
    from tests.helpers.kernels import broken_kernels

    plain = _rewrite_block_2(capsys, md, tiny_checkpoint, "--seed", "3", "--json")
    assert plain[0] == 0

    def broken(*_a: object, **_k: object) -> object:
        raise RuntimeError("no working C++ compiler")

    monkeypatch.setattr(denoise_mod, "compiled_kernels", lambda: broken_kernels(broken))
    code, out, err = _rewrite_block_2(capsys, md, tiny_checkpoint, "--seed", "3", "--json", "--compile")
    assert code == 0
    assert "--compile: RuntimeError: no working C++ compiler; ran uncompiled" in err
    assert json.loads(out)["text"] == json.loads(plain[1])["text"]  # the uncompiled step, bit for bit
    assert json.loads(out)["compiled"] is False and json.loads(plain[1])["compiled"] is None


@pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None, reason="needs a C++ compiler"
)
def test_compile_rewrites_through_the_compiled_step(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, err = _rewrite_block_2(capsys, md, tiny_checkpoint, "--seed", "3", "--json", "--compile")
    assert code == 0
    assert "--compile" not in err  # no fallback warning: the compiled kernels ran
    report = json.loads(out)
    assert report["compiled"] is True
    assert report["steps"] >= 1 and report["text"] != DOC
