"""Choose among a run's snapshots by what a reader meets: the dictionary-word rate of its rewrites.

    python -m diffedit.training.pick_snapshot --checkpoint runs/diffedit-demo-2 [--n 24] [--apply]

``train_demo --snapshots`` keeps the weights of every evaluation under ``snapshots/step-N``. One-pass
accuracy, the curve's figure, and the dictionary-word rate of rewrites from noise need not move together
(``docs/training.md``: a later phase gained accuracy and lost words), so this rewrites the sweep's
``selection`` blocks (the held-out documents' prose, the same blocks the sampling sweep then reads; the
evaluation reads the blocks after them) with every snapshot, all with one sampler setting (``--setting``;
default: the one in the checkpoint's ``generation_config.json``), and scores them as the sweep scores a
setting. The rule is the sweep's (:func:`sweep_sampling.choose`): the
highest dictionary-word rate among snapshots whose repetition stays within its slack of the original blocks',
with few empty outputs and few steps; a tie (within 0.002) goes to the later snapshot.

Writes ``snapshot_choice.json`` next to the checkpoint. ``--apply`` copies the chosen snapshot's weights
over the checkpoint's ``model.safetensors`` (the run's curve and files stay as they are).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from diffedit.engine.engine import Engine
from diffedit.training.heldout_sets import CHOICE_FILE, load_sets, reference_score
from diffedit.training.niceness import nice_to
from diffedit.training.sweep_sampling import Setting, choose, run_setting
from diffedit.training.sweep_sampling import score as score_outputs
from diffedit.training.text_metrics import WORDS_FILE, load_words
from diffedit.training.train_demo import CURVE_FILE, SNAPSHOTS_DIR

WEIGHTS = "model.safetensors"
_STEP = re.compile(r"step-(\d+)$")


def snapshots(checkpoint: Path) -> list[tuple[int, Path]]:
    """The run's snapshots as (step, folder), by step."""
    root = checkpoint / SNAPSHOTS_DIR
    found = []
    for d in root.iterdir() if root.is_dir() else []:
        m = _STEP.match(d.name)
        if m and (d / WEIGHTS).is_file():
            found.append((int(m.group(1)), d))
    return sorted(found)


def saved_setting(checkpoint: Path) -> Setting:
    gen = json.loads((checkpoint / "generation_config.json").read_text(encoding="utf-8"))
    bound = (gen.get("sampler_config") or {}).get("entropy_bound")
    if bound is None:
        raise SystemExit(f"{checkpoint}: generation_config.json names no entropy bound")
    return Setting(float(gen["t_min"]), float(gen["t_max"]), float(bound))


def parse_setting(text: str) -> Setting:
    """``T_MIN:T_MAX:BOUND``, e.g. ``0.1:0.3:1.0``."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected T_MIN:T_MAX:BOUND, e.g. 0.1:0.3:1.0")
    try:
        return Setting(*(float(p) for p in parts))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None


def curve_accuracy(checkpoint: Path) -> dict[int, float]:
    path = checkpoint / CURVE_FILE
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split(",") if lines else []
    if "step" not in head or "heldout_acc" not in head:
        return {}
    rows = [dict(zip(head, line.split(","), strict=False)) for line in lines[1:] if line]
    return {int(r["step"]): float(r["heldout_acc"]) for r in rows}


def pick(
    checkpoint: Path,
    data_dir: Path,
    n: int,
    setting: Setting | None = None,
    words_file: Path = WORDS_FILE,
    log: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    found = snapshots(checkpoint)
    if not found:
        raise SystemExit(
            f"no snapshots under {checkpoint / SNAPSHOTS_DIR}: train with `train_demo --snapshots` first"
        )
    words = load_words(words_file)
    splits = load_sets(checkpoint, data_dir, n)["selection"]
    accuracy = curve_accuracy(checkpoint)
    setting = setting or saved_setting(checkpoint)
    start = time.time()
    rows: list[dict[str, Any]] = []
    for step, folder in found:
        engine = Engine.load(folder, device=device)
        outputs, results = run_setting(engine, splits, setting)
        row = {
            "step": step,
            "one_pass_accuracy": accuracy.get(step),
            "selection": asdict(score_outputs(outputs, results, words)),
        }
        rows.append(row)
        if log:
            print(json.dumps(row), flush=True)
    original = reference_score(splits, words)
    best = choose(rows, original["repetition"], prefer=lambda r: r["step"])
    return {
        "checkpoint": str(checkpoint),
        "words_file": str(words_file),
        "blocks": len(splits),
        "setting": asdict(setting),
        "original": original,
        "rows": rows,
        "chosen_step": best["step"],
        "last_step": found[-1][0],
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "minutes": round((time.time() - start) / 60, 1),
    }


def apply(checkpoint: Path, step: int) -> None:
    """The chosen snapshot's weights over the checkpoint's (its config and tokenizer are the run's own)."""
    source = checkpoint / SNAPSHOTS_DIR / f"step-{step}" / WEIGHTS
    shutil.copyfile(source, checkpoint / WEIGHTS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--n", type=int, default=24, help="selection blocks (default 24, the sweep's)")
    parser.add_argument("--words", type=Path, default=WORDS_FILE, help="word list (default %(default)s)")
    parser.add_argument(
        "--setting",
        type=parse_setting,
        default=None,
        help="sampler T_MIN:T_MAX:BOUND for all snapshots (default: the checkpoint's generation_config.json)",
    )
    parser.add_argument("--apply", action="store_true", help="copy the chosen snapshot's weights in")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where the rewrites run (cpu, or cuda on a lent GPU)")
    parser.add_argument("--nice", type=int, default=10)
    args = parser.parse_args(argv)
    nice_to(args.nice)
    torch.set_num_threads(args.threads)
    result = pick(args.checkpoint, args.data, args.n, args.setting, args.words, device=args.device)
    (args.checkpoint / CHOICE_FILE).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.apply:
        apply(args.checkpoint, result["chosen_step"])
    verb = "copied in" if args.apply else "not applied (--apply copies it in)"
    print(f"chosen: step {result['chosen_step']} of {result['last_step']}; {verb}", flush=True)


if __name__ == "__main__":
    main()
