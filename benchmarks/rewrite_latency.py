"""Engine time of a typical paragraph rewrite with the default settings (early stop on), as a user runs it.

Takes held-out paragraphs the demo model never saw in training (its model card's sample), rewrites each
as ``diffedit rewrite`` and the editor do (``build_job``, then ``Engine.rewrite``: the paragraph keeps its
shape; :func:`diffedit.training.heldout_sets.rewrite_split`), and prints the medians.

    python benchmarks/rewrite_latency.py                 # the bundled demo model
    python benchmarks/rewrite_latency.py --model PATH --n 20
    python benchmarks/rewrite_latency.py --model NEW --versus OLD --out NEW/rewrite_latency.json

``--versus`` rewrites the same paragraphs with a second checkpoint in the same run, interleaved paragraph by
paragraph (so both see the same machine), and prints the ratio of the medians. ``--out`` writes the summary
as JSON (the demo's model card reads ``rewrite_latency.json`` from its checkpoint).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path
from typing import Any

import torch

from diffedit.engine.engine import Engine
from diffedit.engine.loader import default_model_path
from diffedit.engine.types import GenerationSettings, RewriteResult
from diffedit.training.examples import Split
from diffedit.training.heldout_sets import rewrite_split


def summarise(engine: Engine, results: list[RewriteResult], strength: float) -> dict[str, Any]:
    return {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "device": engine.device,
        "model": engine.name,
        "paragraphs": len(results),
        "strength": strength,
        "total_s_median": round(statistics.median(r.total_s for r in results), 3),
        "total_s_max": round(max(r.total_s for r in results), 3),
        "steps_median": statistics.median(r.steps for r in results),
        "tokens_per_forward_median": round(statistics.median(r.tokens_per_forward for r in results), 2),
        "encode_ms_median": round(statistics.median(r.encode_ms for r in results), 2),
        "step_ms_median": round(statistics.median(r.step_ms_median for r in results), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--versus", help="a second checkpoint rewriting the same paragraphs, interleaved")
    ap.add_argument("--sample", type=Path, default=default_model_path() / "heldout_sample.jsonl")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--out", type=Path, help="write the summary here as JSON")
    args = ap.parse_args()

    engines = [Engine.load(args.model)] + ([Engine.load(args.versus)] if args.versus else [])
    rows = [json.loads(line) for line in args.sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    # paragraphs only: the "typical paragraph" of the target (a few dozen to ~150 tokens)
    rows = [
        r for r in rows if r["target"].strip() and not r["target"].lstrip().startswith(("#", "```", "-", "*"))
    ]
    splits = [Split(r["prefix"], r["target"], r["suffix"]) for r in rows[: args.n]]
    for engine in engines:
        rewrite_split(engine, splits[0], GenerationSettings(seed=0))  # warm-up
    results: list[list[RewriteResult]] = [[] for _ in engines]
    for i, split in enumerate(splits):
        for engine, done in zip(engines, results, strict=True):
            settings = GenerationSettings(seed=i, strength=args.strength)
            text, res = rewrite_split(engine, split, settings)
            target_tokens = len(engine.tokenizer.encode(split.target, add_special_tokens=False))
            done.append(res)
            print(
                json.dumps(
                    {
                        "model": engine.name,
                        "i": i,
                        "target_tokens": target_tokens,
                        "out_chars": len(text),
                        "steps": res.steps,
                        "canvases": res.canvases,
                        "total_s": round(res.total_s, 3),
                        "tokens_per_forward": round(res.tokens_per_forward, 2),
                    }
                ),
                flush=True,
            )
    summary = summarise(engines[0], results[0], args.strength)
    if args.versus:
        other = summarise(engines[1], results[1], args.strength)
        summary["versus"] = {"path": args.versus, **other}
        summary["median_ratio"] = round(summary["total_s_median"] / other["total_s_median"], 3)
    print("RESULT " + json.dumps(summary), flush=True)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
