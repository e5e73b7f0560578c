"""The layers of docs/architecture.md as import-linter contracts (pyproject.toml): a broken rule fails CI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept() -> None:
    run = _lint_imports()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_a_broken_layer_is_caught(tmp_path: Path) -> None:
    # The contracts must bite: a document module that imports the engine is reported.
    probe = ROOT / "diffedit" / "document" / "_layer_probe.py"
    probe.write_text("from diffedit.engine.types import Frame  # noqa: F401\n")
    try:
        run = _lint_imports()
    finally:
        probe.unlink()
    assert run.returncode != 0
    assert "diffedit.document._layer_probe -> diffedit.engine.types" in run.stdout
