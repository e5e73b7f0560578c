"""pick_snapshot: a run's snapshots scored by the dictionary-word rate of their rewrites, best copied in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from diffedit.training.pick_snapshot import CHOICE_FILE, WEIGHTS, apply, main, snapshots
from diffedit.training.sweep_sampling import choose
from diffedit.training.text_metrics import WORDS_FILE
from diffedit.training.train_demo import SNAPSHOTS_DIR, train
from tests.helpers.tiny_training import tiny_args, tiny_corpus


def row(step: int, rate: float, repetition: float = 0.0, steps_mean: float = 10.0) -> dict[str, Any]:
    figures = {"dictionary_word_rate": rate, "repetition": repetition, "empty": 0.0, "steps_mean": steps_mean}
    return {"step": step, "selection": figures}


def test_the_best_rate_wins_and_a_tie_goes_to_the_later_snapshot() -> None:
    def later(r: dict[str, Any]) -> int:
        return int(r["step"])

    assert choose([row(100, 0.80), row(200, 0.85), row(300, 0.82)], 0.01, prefer=later)["step"] == 200
    assert choose([row(100, 0.850), row(200, 0.849)], 0.01, prefer=later)["step"] == 200  # within 0.002
    # a snapshot that repeats itself beyond the originals' repetition plus the slack is passed over
    assert choose([row(100, 0.80), row(200, 0.90, repetition=0.2)], 0.01, prefer=later)["step"] == 100
    # the sweep's own tie-break (no prefer) is still fewest steps
    assert choose([row(1, 0.85, steps_mean=12), row(2, 0.85, steps_mean=9)], 0.01)["step"] == 2


@pytest.mark.skipif(not WORDS_FILE.is_file(), reason="no /usr/share/dict/words (Debian: wamerican)")
def test_a_runs_snapshots_are_scored_and_the_chosen_one_copied_in(tmp_path: Path, tiny_shape: str) -> None:
    data = tiny_corpus(tmp_path)
    out = tmp_path / "run"
    args = tiny_args(out, data, tiny_shape, steps=20, warmup=5)
    train(args)
    assert [s for s, _ in snapshots(out)] == [10, 20]
    apply(out, 10)  # the earlier weights over the run's own
    assert (out / WEIGHTS).read_bytes() == (out / SNAPSHOTS_DIR / "step-10" / WEIGHTS).read_bytes()

    cli = ["--checkpoint", str(out), "--data", str(data), "--n", "4", "--nice", "0", "--threads", "1"]
    main([*cli, "--setting", "0.1:0.3:1.0", "--apply"])
    choice = json.loads((out / CHOICE_FILE).read_text())
    assert [r["step"] for r in choice["rows"]] == [10, 20] and choice["blocks"] == 4
    assert choice["setting"] == {"t_min": 0.1, "t_max": 0.3, "entropy_bound": 1.0}
    for r in choice["rows"]:
        assert r["one_pass_accuracy"] is not None  # read from the run's curve
        assert 0.0 <= r["selection"]["dictionary_word_rate"] <= 1.0 and r["selection"]["words"] > 0
    chosen = out / SNAPSHOTS_DIR / f"step-{choice['chosen_step']}" / WEIGHTS
    assert (out / WEIGHTS).read_bytes() == chosen.read_bytes()


def test_a_run_without_snapshots_is_told_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="train with `train_demo --snapshots`"):
        main(["--checkpoint", str(tmp_path), "--nice", "0"])


def test_a_malformed_setting_names_the_form_expected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--checkpoint", "x", "--setting", "0.1:0.3"])
    assert "expected T_MIN:T_MAX:BOUND" in capsys.readouterr().err
