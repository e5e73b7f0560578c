"""The CLI end to end through the real engine on a checkpoint loaded from disk."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from diffedit.cli import main
from diffedit.document.blocks import parse_blocks
from tests.helpers.cli import run_cli as _run

DOC = "# Title\n\nFirst paragraph with some words.\n\n- item a\n- item b\n\nLast paragraph.\n"


@pytest.fixture
def md(tmp_path: Path) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(DOC, encoding="utf-8")
    return p


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
        "demo_model",
        "quantization",
        "implementation",
        "weight_bytes",
        "placement",
        "original",
        "free_form",
        "blocks",
        "instruction",
        "instruction_followed",
    }
    assert report["instruction"] == "" and report["instruction_followed"] is None  # none given
    assert report["compiled"] is None  # not asked for
    assert report["demo_model"] is False
    assert report["quantization"] == "none" and report["weight_bytes"] > 0
    assert report["implementation"] == "native"  # a plain infill checkpoint on the CPU: diffedit's own
    assert report["placement"] is None  # the CPU: never split
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


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr is when the user runs the CLI by hand."""

    def isatty(self) -> bool:
        return True


def test_visual_animates_then_leaves_the_final_text(
    md: Path, tiny_checkpoint: Path, capsys, monkeypatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, out, _ = _rewrite_block_2(
        capsys, md, tiny_checkpoint, "--seed", "3", "--steps", "4", "--visual", "--json"
    )
    assert code == 0
    err = terminal.getvalue()
    assert err.count("\x1b[?2026h") >= 5  # one synchronized repaint per step, plus the final one
    assert "step 4/4" in err and "\x1b[9m" in err  # noisy positions are struck through
    final = json.loads(out)["replacement"]
    assert err.rstrip("\n").endswith(final + "\x1b[?2026l")


def test_visual_into_a_pipe_writes_plain_progress_lines(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, err = _rewrite_block_2(
        capsys, md, tiny_checkpoint, "--seed", "3", "--steps", "4", "--visual", "--json"
    )
    assert code == 0
    assert "\x1b" not in err  # capsys's stderr is not a terminal
    assert "canvas 1 · step 4/4" in err.splitlines()
    assert err.rstrip("\n").endswith(json.loads(out)["replacement"])


def test_in_place_says_what_it_changed_in_one_line(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, err = _rewrite_block_2(capsys, md, tiny_checkpoint, "--seed", "1", "--in-place")
    assert code == 0 and err == ""
    old = parse_blocks(DOC)[1]
    new_text = md.read_text(encoding="utf-8")
    new = parse_blocks(new_text)[1]
    assert out == (
        f"{md}: rewrote block 2 (paragraph), {old.end - old.start} -> {new.end - new.start} characters\n"
    )


def test_in_place_over_several_blocks_names_them(md: Path, tiny_checkpoint: Path, capsys) -> None:
    code, out, err = _run(
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
        "1",
        "--in-place",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["text"] == md.read_text(encoding="utf-8")  # stdout stays pure JSON
    assert err.startswith(f"{md}: rewrote blocks 3-4 (list item, list item), ") and err.count("\n") == 1


def test_an_instruction_to_an_infill_model_is_said_to_be_ignored(
    md: Path, tiny_checkpoint: Path, capsys
) -> None:
    code, out, err = _rewrite_block_2(
        capsys,
        md,
        tiny_checkpoint,
        "--seed",
        "1",
        "--steps",
        "2",
        "--instruction",
        "make it shorter",
        "--json",
    )
    assert code == 0
    notes = [line for line in err.splitlines() if "make it shorter" in line]
    assert len(notes) == 1 and "ignored" in notes[0] and "cannot follow" in notes[0]
    report = json.loads(out)
    assert report["instruction"] == "make it shorter" and report["instruction_followed"] is False


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


@pytest.mark.parametrize("extra", [[], ["--free-form"]])
def test_the_native_and_the_transformers_model_write_the_same_text(
    md: Path, tiny_checkpoint: Path, capsys, extra: list[str]
) -> None:
    reports = {}
    for impl in ("native", "transformers"):
        code, out, err = _rewrite_block_2(
            capsys, md, tiny_checkpoint, "--seed", "5", "--json", "--impl", impl, *extra
        )
        assert code == 0, err
        reports[impl] = json.loads(out)
    assert reports["native"]["implementation"] == "native"
    assert reports["transformers"]["implementation"] == "transformers"
    assert reports["native"]["text"] == reports["transformers"]["text"]
    assert reports["native"]["steps"] == reports["transformers"]["steps"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sampling", "reference"], "--impl native does not run with --sampling reference"),
        (["--compile"], "--impl native does not run with --compile"),
        (["--quantize", "int8"], "--impl native loads unquantised weights"),
    ],
)
def test_impl_native_with_a_transformers_only_option_is_refused(
    md: Path, tiny_checkpoint: Path, capsys, extra: list[str], message: str
) -> None:
    code, out, err = _rewrite_block_2(capsys, md, tiny_checkpoint, "--impl", "native", *extra)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


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


# ------------------------------------------------------------------------------------------ as a program

SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _program(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diffedit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=SUBPROCESS_ENV,
    )


def _spoil_checkpoint(tiny_checkpoint: Path, folder: Path, spoil: str) -> Path:
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    if spoil == "config_list":
        (folder / "config.json").write_text("[]")
    elif spoil == "infill_list":
        (folder / "diffedit_infill.json").write_text("[1, 2]")
    elif spoil == "text_config_5":
        (folder / "config.json").write_text(json.dumps({**config, "text_config": 5}))
    elif spoil == "shape_mismatch":
        config["text_config"]["intermediate_size"] *= 2
        (folder / "config.json").write_text(json.dumps(config))
    elif spoil == "tokenizer_schema":
        tok = json.loads((folder / "tokenizer.json").read_text())
        del tok["added_tokens"]
        (folder / "tokenizer.json").write_text(json.dumps(tok))
    elif spoil == "weights_fifo":
        (folder / "model.safetensors").unlink()
        os.mkfifo(folder / "model.safetensors")
    return folder


def _torch_has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


BAD_INPUTS = [
    ("seed", ["--seed", "99999999999999999999999"], r"--seed 99999999999999999999999 is out of range"),
    ("device_foo", ["--device", "foo"], r"unknown device 'foo'"),
    pytest.param(
        "device_cuda",
        ["--device", "cuda"],
        r"CUDA is not available",
        marks=pytest.mark.skipif(_torch_has_cuda(), reason="this torch has CUDA"),
    ),
    ("config_list", [], r"config\.json holds a JSON list, not a JSON object"),
    ("infill_list", [], r"diffedit_infill\.json holds a JSON list, not a JSON object"),
    ("text_config_5", [], r"config\.json: field 'text_config' is 5"),
    ("shape_mismatch", [], r"'[\w.]+' has shape \[\d+, \d+\] in the weights, config\.json needs"),
    ("tokenizer_schema", [], r"tokenizer\.json: field 'added_tokens' is missing"),
    ("weights_fifo", [], r"model\.safetensors is a named pipe \(FIFO\), not a regular file"),
    ("shift_jis", [], r"not UTF-8 .*iconv -f shift_jis -t utf-8"),
    ("document_fifo", [], r"doc\.md: it is a named pipe \(FIFO\), not a regular file"),
    ("document_socket", [], r"doc\.md: it is a socket, not a regular file"),
    ("document_device", [], r"zero: it is a character device, not a regular file"),
]


def _main_with_timeout(argv: list[str], timeout: float = 120) -> int:
    """``main(argv)`` in a thread: a hang (a FIFO read) fails the test instead of blocking the suite."""
    result: list[int | BaseException] = []

    def run() -> None:
        try:
            result.append(main(argv))
        except BaseException as exc:  # a traceback the user would have seen
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"diffedit {' '.join(argv)} hung"
    (outcome,) = result
    assert not isinstance(outcome, BaseException), f"a traceback: {outcome!r}"
    return outcome


@pytest.mark.parametrize(("case", "extra", "message"), BAD_INPUTS)
def test_every_bad_input_is_one_line_and_exit_2_never_a_traceback(
    tmp_path: Path, tiny_checkpoint: Path, capsys, case: str, extra: list[str], message: str
) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(DOC, encoding="utf-8")
    model = _spoil_checkpoint(tiny_checkpoint, tmp_path / "model", case)
    server = None
    if case == "shift_jis":
        doc.write_bytes("# 日本語の文書\n\nこれは本文です。東京に住んでいます。\n".encode("shift_jis"))
    elif case == "document_fifo":
        doc.unlink()
        os.mkfifo(doc)
    elif case == "document_socket":
        doc.unlink()
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(doc))
    elif case == "document_device":
        doc = Path("/dev/zero")
    before = doc.read_bytes() if doc.is_file() else None
    try:
        code = _main_with_timeout(
            ["rewrite", str(doc), "--block", "2", "--model", str(model), "--steps", "2", "--in-place", *extra]
        )
    finally:
        if server is not None:
            server.close()
        if case == "document_fifo" and doc.exists():
            with contextlib.suppress(OSError):  # release a reader that blocked (the bug), if any
                os.close(os.open(doc, os.O_WRONLY | os.O_NONBLOCK))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert "latin-1" not in err
    assert out == ""
    if before is not None:
        assert doc.read_bytes() == before


def test_a_bad_seed_as_a_program_prints_one_line_not_a_traceback(md: Path, tiny_checkpoint: Path) -> None:
    proc = _program(
        "rewrite",
        str(md),
        "--block",
        "2",
        "--model",
        str(tiny_checkpoint),
        "--seed",
        "99999999999999999999999",
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("diffedit: --seed") and len(proc.stderr.strip().splitlines()) == 1


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout: float = 240) -> bytes:
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        chunk = proc.stderr.read1(4096)  # type: ignore[attr-defined]
        assert chunk and time.monotonic() < deadline, seen.decode(errors="replace")[-2000:]
        seen += chunk
    return seen


def _start_rewrite(path: Path, model: Path, block: int, steps: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diffedit",
            "rewrite",
            str(path),
            "--block",
            str(block),
            "--model",
            str(model),
            "--steps",
            str(steps),
            "--seed",
            "1",
            "--in-place",
            "--json",
            "--visual",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=SUBPROCESS_ENV,
    )


def test_in_place_never_overwrites_a_change_made_while_it_ran(md: Path, tiny_checkpoint: Path) -> None:
    proc = _start_rewrite(md, tiny_checkpoint, 2, steps=20)
    _read_until(proc, b"step 1/")  # it read the file and is denoising now
    proc.send_signal(signal.SIGSTOP)  # hold it mid-run (no timing luck needed) while another program appends
    appended = "\nA line another program appended while the rewrite ran.\n"
    with open(md, "a", encoding="utf-8") as f:
        f.write(appended)
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=300)
    # --visual into a pipe: plain progress lines and the final canvas, then the one message
    text = err.decode()
    assert proc.returncode == 2, text[-2000:]
    assert "Traceback" not in text and text.count("diffedit: ") == 1
    message = text.splitlines()[-1]
    assert "changed on disk" in message and "nothing was written" in message and "Traceback" not in message
    assert out == b""
    assert md.read_text(encoding="utf-8") == DOC + appended  # the other change is kept, ours not written


def test_two_parallel_in_place_rewrites_of_different_blocks_lose_nothing(
    md: Path, tiny_checkpoint: Path
) -> None:
    blocks = parse_blocks(DOC)
    first, second = (
        _start_rewrite(md, tiny_checkpoint, 2, steps=20),
        _start_rewrite(md, tiny_checkpoint, 5, steps=20),
    )
    # Both have read the file before either writes: the first waits, stopped, until the second is running.
    _read_until(first, b"step 1/")
    first.send_signal(signal.SIGSTOP)
    _read_until(second, b"step 1/")
    first.send_signal(signal.SIGCONT)
    results = {2: first.communicate(timeout=300), 5: second.communicate(timeout=300)}
    codes = {2: first.returncode, 5: second.returncode}
    assert sorted(codes.values()) == [0, 2], results  # the later writer sees the earlier one's change
    final = md.read_text(encoding="utf-8")
    for n, (out, err) in results.items():
        if codes[n] == 0:
            assert json.loads(out)["replacement"] in final
        else:
            assert "changed on disk" in err.decode() and out == b""
            assert blocks[n - 1].text(DOC) in final  # the block this run did not write keeps its text
    assert [p.name for p in md.parent.iterdir()] == ["doc.md"]


def test_in_place_names_a_hard_link_before_writing(md: Path, tiny_checkpoint: Path, capsys) -> None:
    os.link(md, md.parent / "also.md")
    code, _out, err = _rewrite_block_2(
        capsys, md, tiny_checkpoint, "--seed", "1", "--steps", "2", "--in-place"
    )
    assert code == 0
    assert "warning:" in err and "hard link" in err
    assert (md.parent / "also.md").read_text(encoding="utf-8") == DOC  # as the warning said
