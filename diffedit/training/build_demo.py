"""Build the demo model with one command: corpus -> tokenizer -> examples -> training -> snapshot choice ->
sampling sweep -> evaluation -> comparison with the bundled demo -> model card.

    python -m diffedit.training.build_demo --profile cpu               # this project's 2-core CPU, ~2 h
    python -m diffedit.training.build_demo --profile gpu --stages train  # on a lent GPU (~15 min), then:
    python -m diffedit.training.build_demo --profile gpu --stages pick,sweep,evaluate,compare,card  # CPU

Each stage runs as its own ``python -m diffedit.training.*`` process (so each records its own command
line), niced, and is printed before it runs. The checkpoint goes to ``--out`` (default
``runs/diffedit-demo-2``), never over the bundled model: copy it into
``diffedit/resources/models/diffedit-demo`` once its card shows it is better.

The corpus needs the Debian packages (apt, root) and a network; a lent GPU machine has neither, so build
``data/corpus`` first (``--stages corpus``) and carry ``data`` there.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from diffedit.training.checkpoint import DEMO_DIR
from diffedit.training.niceness import nice_to

STAGES = ("corpus", "train", "pick", "sweep", "evaluate", "compare", "card")


@dataclass(frozen=True)
class Profile:
    device: str
    steps: int  # with minutes: the most steps (the loop times itself and fits the rest)
    batch_size: int
    lr: float
    warmup: int
    eval_every: int
    minutes: float | None = None


# cpu: ~2 hours in all on 2 idle cores: 1,600 steps at ~3.5 s a step (measured, docs/training.md) is ~95
# minutes of training, plus ~30 minutes of corpus, examples, snapshot choice, sweep and evaluation.
# gpu: a lent GPU gives 15 minutes in all, starting the machine included, and one command at most 10, so the
# loop gets 6: it times its first 30 steps and one evaluation and fits its length to that (train_demo
# --minutes). Batches of 64 (demo-1 ran 0.19 s a step at batch 16 on an H100, far from filling it): not
# measured yet.
PROFILES = {
    "cpu": Profile("cpu", steps=1600, batch_size=16, lr=1.2e-3, warmup=100, eval_every=200),
    "gpu": Profile("cuda", steps=20000, batch_size=64, lr=1.2e-3, warmup=150, eval_every=500, minutes=6),
}
SHAPE = "demo-2"
# The setting the sweep chose for this shape in both of its CPU runs: the snapshots are compared with it.
PICK_SETTING = "0.1:0.3:1.0"


def commands(
    profile: Profile, out: Path, data: Path, threads: int, previous: Path = DEMO_DIR
) -> dict[str, list[str]]:
    py = [sys.executable, "-m"]
    train = [
        *py,
        "diffedit.training.train_demo",
        "--shape",
        SHAPE,
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        str(profile.steps),
        "--batch-size",
        str(profile.batch_size),
        "--lr",
        str(profile.lr),
        "--warmup",
        str(profile.warmup),
        "--eval-every",
        str(profile.eval_every),
        "--threads",
        str(threads),
        "--snapshots",
    ]
    if profile.device != "cpu":
        train += ["--device", profile.device]
    if profile.minutes is not None:
        train += ["--minutes", f"{profile.minutes:g}"]
    return {
        "corpus": [*py, "diffedit.training.corpus", "--out", str(data / "corpus")],
        "train": train,
        "pick": [
            *py,
            "diffedit.training.pick_snapshot",
            "--checkpoint",
            str(out),
            "--data",
            str(data),
            "--setting",
            PICK_SETTING,
            "--apply",
        ],
        "sweep": [
            *py,
            "diffedit.training.sweep_sampling",
            "--checkpoint",
            str(out),
            "--data",
            str(data),
            "--write",
        ],
        "evaluate": [*py, "diffedit.training.evaluate_demo", "--checkpoint", str(out), "--data", str(data)],
        "compare": [
            *py,
            "diffedit.training.compare_demos",
            "--checkpoint",
            str(out),
            "--previous",
            str(previous),
            "--data",
            str(data),
        ],
        "card": [*py, "diffedit.training.model_card", "--checkpoint", str(out), "--data", str(data)],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, in order (default: all)")
    parser.add_argument("--out", type=Path, default=Path("runs/diffedit-demo-2"))
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None, help="train on this device instead of the profile's")
    parser.add_argument(
        "--minutes", type=float, default=None, help="fit the training to this many minutes instead"
    )
    parser.add_argument(
        "--previous", type=Path, default=DEMO_DIR, help="the demo to compare with (default: the bundled one)"
    )
    parser.add_argument(
        "--rebuild-corpus", action="store_true", help="convert again even if data/corpus exists"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    profile = PROFILES[args.profile]
    if args.device is not None:
        profile = replace(profile, device=args.device)
    if args.minutes is not None:
        profile = replace(profile, minutes=args.minutes)
    cmds = commands(profile, args.out, args.data, args.threads, args.previous)
    if not args.dry_run:
        nice_to(10)
    for stage in stages:
        if stage == "corpus" and (args.data / "corpus" / "train.jsonl").is_file() and not args.rebuild_corpus:
            print(f"# corpus: {args.data / 'corpus'} exists (--rebuild-corpus to convert again)", flush=True)
            continue
        print(f"# {stage}\n{shlex.join(cmds[stage])}", flush=True)
        if not args.dry_run:
            subprocess.run(cmds[stage], check=True)


if __name__ == "__main__":
    main()
