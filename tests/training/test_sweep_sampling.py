"""The sampling sweep: its choice rule, and a tiny sweep through the real engine on the bundled demo model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from diffedit.engine.engine import Engine
from diffedit.resources import resources_dir
from diffedit.training.sweep_sampling import Setting, choose, sweep, write_generation_config
from diffedit.training.text_metrics import WORDS_FILE

DEMO = resources_dir() / "models" / "diffedit-demo"


def row(t: float, rate: float, rep: float, empty: float = 0.0, steps: float = 10.0) -> dict[str, object]:
    return {
        "setting": {"t_min": t, "t_max": 2 * t, "entropy_bound": 0.1},
        "selection": {"dictionary_word_rate": rate, "repetition": rep, "empty": empty, "steps_mean": steps},
    }


def test_choice_takes_the_best_rate_among_settings_that_do_not_repeat_or_go_empty() -> None:
    rows = [row(0.1, 0.95, 0.30), row(0.2, 0.90, 0.02), row(0.3, 0.93, 0.01, empty=0.2), row(0.4, 0.85, 0.0)]
    assert choose(rows, original_repetition=0.01)["setting"]["t_min"] == 0.2
    # a tie within 0.002 goes to fewer steps
    tie = [row(0.1, 0.900, 0.0, steps=12), row(0.2, 0.899, 0.0, steps=8)]
    assert choose(tie, original_repetition=0.0)["setting"]["t_min"] == 0.2
    # a sampler that runs every step misses the engine-time target, however many real words it writes
    slow = [row(0.4, 0.86, 0.0, steps=24), row(0.1, 0.84, 0.0, steps=12)]
    assert choose(slow, original_repetition=0.0)["setting"]["t_min"] == 0.1
    # nothing passes: the best rate minus repetition
    bad = [row(0.1, 0.9, 0.5), row(0.2, 0.7, 0.1)]
    assert choose(bad, original_repetition=0.0)["setting"]["t_min"] == 0.2


@pytest.mark.skipif(not WORDS_FILE.is_file(), reason="no /usr/share/dict/words (Debian: wamerican)")
def test_a_small_sweep_on_the_demo_model_writes_a_generation_config_the_engine_reads(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    checkpoint = tmp_path / "demo"
    shutil.copytree(DEMO, checkpoint)
    grid = [Setting(0.1, 0.3, 0.1), Setting(0.3, 0.6, 0.3)]
    result = sweep(checkpoint, tmp_path / "no-data", n=1, grid=grid, log=False)
    assert result["selection_from"] == "heldout_sample.jsonl" and result["blocks"] == {"selection": 1}
    assert [r["setting"] for r in result["rows"]] == [
        {"t_min": 0.1, "t_max": 0.3, "entropy_bound": 0.1},
        {"t_min": 0.3, "t_max": 0.6, "entropy_bound": 0.3},
    ]
    for r in result["rows"]:
        sel = r["selection"]
        assert sel["words"] > 0 and 0.0 <= sel["dictionary_word_rate"] <= 1.0 and sel["steps_mean"] >= 1
    assert 0.0 < result["one_pass_accuracy"]["value"] < 1.0
    assert 0.5 < result["original"]["selection"]["dictionary_word_rate"] <= 1.0  # real prose scores high

    write_generation_config(checkpoint, Setting(0.25, 0.55, 0.2))
    engine = Engine.load(checkpoint, device="cpu")
    assert (engine.defaults.t_min, engine.defaults.t_max, engine.defaults.entropy_bound) == (0.25, 0.55, 0.2)
    gen = json.loads((checkpoint / "generation_config.json").read_text())
    assert gen["max_denoising_steps"] == 24 and gen["eos_token_id"] == 1  # the rest is kept


def test_measured_rewrites_keep_each_blocks_shape_as_the_editors_do() -> None:
    """The sweep and the evaluation score what the editor writes: a paragraph stays one paragraph, a list
    item one list item. Free form (the engine alone) is what the model writes unshaped."""
    from diffedit.document.blocks import MARKDOWN
    from diffedit.engine.types import GenerationSettings
    from diffedit.training.examples import Split
    from diffedit.training.heldout_sets import rewrite_split

    engine = Engine.load(DEMO, device="cpu")
    prefix = "# Paths\n\nThe module works with paths.\n\n"
    suffix = "\n\n- Open the file.\n- Close it.\n"
    target = "Each function takes a path and returns a new one; nothing is read from disk."
    paragraph = Split(prefix, target, suffix)
    item = Split(prefix + "- Read the file.\n", "- Write it back when you are done.", "\n- Close it.\n")
    in_a_list = ["bullet_list_open", "list_item_open", "paragraph_open"]

    def kinds(text: str) -> list[str]:
        return [t.type for t in MARKDOWN.parse(text) if t.nesting == 1]

    for seed in range(3):
        settings = GenerationSettings(seed=seed, steps=8)
        text, res = rewrite_split(engine, paragraph, settings)
        assert kinds(text) == ["paragraph_open"] and text.strip() and res.steps >= 1, text
        text, _ = rewrite_split(engine, item, settings)
        assert text.startswith("- ") and kinds(text) == in_a_list, text
        free, res = rewrite_split(engine, paragraph, settings, free_form=True)
        assert free == res.text  # the engine's own text, no assembly


def test_rechoose_applies_the_rule_again_to_the_saved_sweep(tmp_path: Path) -> None:
    from diffedit.training.sweep_sampling import SWEEP_FILE, main

    checkpoint = tmp_path / "demo"
    shutil.copytree(DEMO, checkpoint)
    saved = {
        "rows": [row(0.4, 0.86, 0.0, steps=24), row(0.1, 0.84, 0.0, steps=12)],
        "best": row(0.4, 0.86, 0.0, steps=24),
        "original": {"selection": {"dictionary_word_rate": 0.98, "repetition": 0.01}},
        "one_pass_accuracy": {"value": 0.14},
    }
    (checkpoint / SWEEP_FILE).write_text(json.dumps(saved), encoding="utf-8")
    main(["--checkpoint", str(checkpoint), "--rechoose", "--write", "--nice", "0"])
    again = json.loads((checkpoint / SWEEP_FILE).read_text())
    assert again["best"]["setting"]["t_min"] == 0.1 and again["rows"] == saved["rows"]
    gen = json.loads((checkpoint / "generation_config.json").read_text())
    assert (gen["t_min"], gen["t_max"], gen["sampler_config"]["entropy_bound"]) == (0.1, 0.2, 0.1)
