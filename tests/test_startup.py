"""Start-up of the CLI: what its path imports (no Qt, no torch before the engine is needed) and the GC phase.

No timings here: benchmarks/cli_startup.py measures them.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from diffedit.cli import main
from diffedit.startup import load_phase

ROOT = Path(__file__).resolve().parents[1]
DOC = "# Title\n\nFirst paragraph with some words.\n\n- item a\n- item b\n"
QT = ("PySide6", "diffedit.ui", "diffedit.app", "diffedit.worker")
ENGINE = ("torch", "transformers", "safetensors", "tokenizers", "diffedit.engine.engine")

# Runs diffedit's entry point in a fresh interpreter, then prints which of the named modules it imported.
PROBE = """
import json, sys
from diffedit.__main__ import main
code = main(sys.argv[2:])
names = json.loads(sys.argv[1])
print(json.dumps({"code": code, "imported": sorted(n for n in names if n in sys.modules)}))
"""


def _imported_by(argv: list[str], names: tuple[str, ...]) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(names), *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    return list(report["imported"])


@pytest.fixture
def md(tmp_path: Path) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(DOC, encoding="utf-8")
    return p


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Gives back to the collector what a test froze, so that the rest of the suite runs as before."""
    yield
    gc.unfreeze()


def test_importing_the_cli_imports_neither_qt_nor_the_engine() -> None:
    probe = "import json, sys, diffedit.cli; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    modules = set(json.loads(proc.stdout))
    assert not [m for m in (*QT, *ENGINE) if m in modules]


def test_listing_blocks_imports_neither_qt_nor_the_engine(md: Path) -> None:
    assert _imported_by(["blocks", str(md)], (*QT, *ENGINE)) == []


def test_a_rewrite_imports_the_engine_but_no_qt(md: Path, tiny_checkpoint: Path) -> None:
    argv = [
        "rewrite",
        str(md),
        "--block",
        "2",
        "--seed",
        "1",
        "--steps",
        "2",
        "--model",
        str(tiny_checkpoint),
    ]
    imported = _imported_by(argv, (*QT, *ENGINE))
    assert "torch" in imported and "diffedit.engine.engine" in imported  # the probe sees real imports
    assert not [m for m in QT if m in imported]


def test_load_phase_pauses_the_gc_then_freezes_what_was_built(unfrozen: None) -> None:
    assert gc.isenabled()
    before = gc.get_freeze_count()
    with load_phase():
        assert not gc.isenabled()
        kept = [[i] for i in range(1000)]  # tracked objects made during the phase
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(kept)


def test_load_phase_restores_the_gc_after_an_error(unfrozen: None) -> None:
    with pytest.raises(RuntimeError), load_phase():
        raise RuntimeError("the model did not load")
    assert gc.isenabled()


def test_load_phase_leaves_a_disabled_gc_disabled(unfrozen: None) -> None:
    gc.disable()
    try:
        with load_phase():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_rewrite_loads_the_model_inside_the_load_phase(
    md: Path, tiny_checkpoint: Path, capsys: pytest.CaptureFixture[str], unfrozen: None
) -> None:
    gc.unfreeze()
    code = main(
        ["rewrite", str(md), "--block", "2", "--seed", "1", "--steps", "2", "--model", str(tiny_checkpoint)]
    )
    assert code == 0, capsys.readouterr().err
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0  # frozen after the load: the exit and later collections skip it


def test_a_native_rewrite_of_the_demo_never_imports_transformers(md: Path) -> None:
    # The bundled demo model, as `diffedit rewrite` runs it by default: checked when the CLI has returned.
    argv = ["rewrite", str(md), "--block", "2", "--seed", "1", "--steps", "2"]
    imported = _imported_by(argv, ENGINE)
    assert "torch" in imported and "diffedit.engine.engine" in imported  # the rewrite really ran here
    assert "transformers" not in imported


def test_a_native_rewrite_of_another_checkpoint_never_imports_transformers(
    md: Path, tiny_checkpoint: Path
) -> None:
    argv = [
        "rewrite",
        str(md),
        "--block",
        "2",
        "--seed",
        "1",
        "--steps",
        "2",
        "--model",
        str(tiny_checkpoint),
    ]
    assert "transformers" not in _imported_by(argv, ENGINE)
    # the probe sees transformers where it is imported: with --impl transformers it is
    assert "transformers" in _imported_by([*argv, "--impl", "transformers"], ENGINE)


# `diffedit rewrite` as a program (cli.main() reading sys.argv), with an exit handler registered first and a
# line after main() that only a normal return would reach.
AS_A_PROGRAM = """
import atexit, sys
from pathlib import Path
marker = Path(sys.argv[1])
atexit.register(marker.write_text, "exit handlers ran")
sys.argv = ["diffedit", *sys.argv[2:]]
from diffedit.cli import main
code = main()
print("returned", code)
"""


def test_a_rewrite_as_a_program_exits_at_once_after_its_output_and_exit_handlers(
    md: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    argv = ["rewrite", str(md), "--block", "2", "--seed", "1", "--steps", "2", "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", AS_A_PROGRAM, str(marker), *argv, "--model", str(tiny_checkpoint)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["replacement"]  # the whole report, flushed before the exit
    assert "returned" not in proc.stdout  # ended inside main(), skipping the interpreter's teardown
    assert marker.read_text() == "exit handlers ran"


def test_a_command_without_a_model_returns_as_usual(md: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    proc = subprocess.run(
        [sys.executable, "-c", AS_A_PROGRAM, str(marker), "blocks", str(md)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("returned 0")
    assert marker.read_text() == "exit handlers ran"
