"""The one-command build: which commands run, in which order, for which profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffedit.training import build_demo


def test_dry_run_prints_every_stage_in_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    build_demo.main(["--dry-run", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().out.splitlines()
    stages = [line[2:] for line in lines if line.startswith("# ")]
    assert stages == ["corpus", "train", "pick", "sweep", "evaluate", "compare", "card"]
    train = lines[lines.index("# train") + 1]
    assert "diffedit.training.train_demo --shape demo-2" in train and "--device" not in train
    assert "--steps 1600" in train and "--snapshots" in train and "--minutes" not in train
    pick = lines[lines.index("# pick") + 1]
    assert "diffedit.training.pick_snapshot" in pick and "--apply" in pick
    assert "diffedit.training.sweep_sampling" in lines[lines.index("# sweep") + 1]
    assert "--write" in lines[lines.index("# sweep") + 1]
    compare = lines[lines.index("# compare") + 1]
    assert "diffedit.training.compare_demos" in compare and "--previous" in compare


def test_gpu_profile_trains_on_cuda_and_an_existing_corpus_is_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "data" / "corpus").mkdir(parents=True)
    (tmp_path / "data" / "corpus" / "train.jsonl").write_text("")
    build_demo.main(
        ["--dry-run", "--profile", "gpu", "--data", str(tmp_path / "data"), "--stages", "corpus,train"]
    )
    out = capsys.readouterr().out
    assert "exists (--rebuild-corpus to convert again)" in out
    assert "--device cuda" in out and "--minutes 6" in out and "--batch-size 64" in out


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown stage"):
        build_demo.main(["--dry-run", "--stages", "corpus,trian"])


def test_stages_started_by_a_niced_parent_do_not_nice_twice() -> None:
    import subprocess
    import sys

    code = (
        "import os; from diffedit.training.niceness import nice_to; os.nice(2); "
        "base = os.nice(0); nice_to(base + 3); nice_to(base + 3); nice_to(base + 1); print(os.nice(0) - base)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "3"


def test_device_and_minutes_override_the_profiles(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["--dry-run", "--profile", "gpu", "--data", str(tmp_path / "data"), "--stages", "train"]
    build_demo.main([*args, "--device", "cpu", "--minutes", "0.5"])
    train = capsys.readouterr().out.splitlines()[1]
    assert "--device" not in train and "--minutes 0.5" in train and "--batch-size 64" in train
