"""A multi-block rewrite batched against block after block, and K alternatives batched against K runs.

Both on the bundled demo model (or ``--model``), through ``Engine.rewrite`` / ``Engine.alternatives`` as the
editor and the CLI run them, interleaved round by round with the same seeds (round r: seed r):

* **multi-block**: a ``--blocks``-paragraph selection, ``RewriteJob.batch_blocks`` on (one batch: each block
  its own canvas, reading the document with the other blocks as written) and off (block after block, each
  reading the blocks rewritten before it);
* **alternatives**: ``--alternatives`` K candidates of one paragraph as one batch (one context encode)
  against K single rewrites with seeds seed..seed+K-1 (which, on the CPU, produce the same candidates).

Prints the machine, one line per comparison with the ratio (sequential over batched: above 1, the batch is
faster), and one JSON line at the end. Runs on shared CPUs are noisy: compare the ratio, not the seconds.

  nice python benchmarks/multiblock.py [--device cpu] [--reps 3] [--blocks 4] [--alternatives 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections.abc import Callable

import torch
from constraints_cost import PARAGRAPH, machine

from diffedit.document.blocks import parse_blocks
from diffedit.engine.engine import Engine
from diffedit.engine.types import GenerationSettings, RewriteJob
from diffedit.rewrites import build_job


def document(blocks: int) -> str:
    words = PARAGRAPH.split()
    paragraphs = [" ".join(words[i : i + 14 + 3 * i]) + "." for i in range(blocks)]
    return "# Notes\n\n" + "\n\n".join(paragraphs) + "\n\nClosing words.\n"


def _timed(engine: Engine, run: Callable[[], object]) -> tuple[float, object]:
    if torch.device(engine.device).type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = run()
    if torch.device(engine.device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, out


def multiblock(engine: Engine, blocks: int, reps: int) -> dict[str, object]:
    text = document(blocks)
    spans = [b for b in parse_blocks(text) if b.kind == "paragraph"][:blocks]
    walls: dict[str, list[float]] = {"batched": [], "sequential": []}
    forwards: dict[str, list[int]] = {"batched": [], "sequential": []}
    for seed in range(reps + 1):  # round 0 warms up
        job = build_job(text, spans[0].start, spans[-1].end, GenerationSettings(seed=seed))
        for name, j in (("batched", job), ("sequential", dataclasses.replace(job, batch_blocks=False))):
            wall, result = _timed(engine, lambda j=j: engine.rewrite(j))  # type: ignore[misc]
            if seed:
                walls[name].append(wall)
                forwards[name].append(result.steps)  # type: ignore[attr-defined]
    seq, bat = statistics.median(walls["sequential"]), statistics.median(walls["batched"])
    return {
        "blocks": blocks,
        "sequential_s": round(seq, 3),
        "batched_s": round(bat, 3),
        "sequential_over_batched": round(seq / bat, 3),
        "sequential_forwards": statistics.median(forwards["sequential"]),
        "batched_forwards": statistics.median(forwards["batched"]),
    }


def alternatives(engine: Engine, count: int, reps: int) -> dict[str, object]:
    text = document(2)
    block = [b for b in parse_blocks(text) if b.kind == "paragraph"][1]
    walls: dict[str, list[float]] = {"batched": [], "sequential": []}
    for seed in range(reps + 1):
        job: RewriteJob = build_job(text, block.start, block.end, GenerationSettings(seed=seed * 100))
        wall, _ = _timed(engine, lambda job=job: engine.alternatives(job, count))  # type: ignore[misc]
        if seed:
            walls["batched"].append(wall)

        def one_by_one(job: RewriteJob = job) -> None:
            base = job.settings.seed or 0
            for r in range(count):
                settings = dataclasses.replace(job.settings, seed=base + r)
                engine.rewrite(dataclasses.replace(job, settings=settings))

        wall, _ = _timed(engine, one_by_one)
        if seed:
            walls["sequential"].append(wall)
    seq, bat = statistics.median(walls["sequential"]), statistics.median(walls["batched"])
    return {
        "alternatives": count,
        "sequential_s": round(seq, 3),
        "batched_s": round(bat, 3),
        "per_candidate_sequential_s": round(seq / count, 3),
        "per_candidate_batched_s": round(bat / count, 3),
        "sequential_over_batched": round(seq / bat, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--alternatives", type=int, default=3)
    args = parser.parse_args()
    engine = Engine.load(args.model, device=args.device)
    print("machine:", machine(engine))
    multi = multiblock(engine, args.blocks, args.reps)
    print(
        f"multi-block ({args.blocks} paragraphs): block after block {multi['sequential_s']} s "
        f"({multi['sequential_forwards']} forwards), batched {multi['batched_s']} s "
        f"({multi['batched_forwards']} batched forwards): ratio {multi['sequential_over_batched']}"
    )
    alt = alternatives(engine, args.alternatives, args.reps)
    print(
        f"alternatives ({args.alternatives}): {args.alternatives} runs {alt['sequential_s']} s, one batch "
        f"{alt['batched_s']} s; per candidate {alt['per_candidate_sequential_s']} s vs "
        f"{alt['per_candidate_batched_s']} s: ratio {alt['sequential_over_batched']}"
    )
    print(json.dumps({"multiblock": multi, "alternatives": alt}))


if __name__ == "__main__":
    main()
