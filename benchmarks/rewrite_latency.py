"""Engine time of a typical paragraph rewrite with the default settings (early stop on), as a user runs it.

Takes held-out paragraphs the demo model never saw in training (its model card's sample), rewrites each
through ``Engine.rewrite`` exactly as ``diffedit rewrite`` does, and prints the medians.

    python benchmarks/rewrite_latency.py                 # the bundled demo model
    python benchmarks/rewrite_latency.py --model PATH --n 20
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from diffedit.engine.engine import Engine
from diffedit.engine.loader import default_model_path
from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--sample", type=Path, default=default_model_path() / "heldout_sample.jsonl")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--strength", type=float, default=1.0)
    args = ap.parse_args()

    engine = Engine.load(args.model)
    rows = [json.loads(line) for line in args.sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    # paragraphs only: the "typical paragraph" of the target (a few dozen to ~150 tokens)
    rows = [
        r for r in rows if r["target"].strip() and not r["target"].lstrip().startswith(("#", "```", "-", "*"))
    ]
    rows = rows[: args.n]
    engine.rewrite(
        RewriteJob(
            EditRequest(rows[0]["prefix"], rows[0]["target"], rows[0]["suffix"]), GenerationSettings(seed=0)
        )
    )  # warm-up
    results = []
    for i, r in enumerate(rows):
        job = RewriteJob(
            EditRequest(r["prefix"], r["target"], r["suffix"]),
            GenerationSettings(seed=i, strength=args.strength),
        )
        res = engine.rewrite(job)
        target_tokens = len(engine.tokenizer.encode(r["target"], add_special_tokens=False))
        results.append(res)
        print(
            json.dumps(
                {
                    "i": i,
                    "target_tokens": target_tokens,
                    "out_chars": len(res.text),
                    "steps": res.steps,
                    "canvases": res.canvases,
                    "total_s": round(res.total_s, 3),
                    "tokens_per_forward": round(res.tokens_per_forward, 2),
                }
            ),
            flush=True,
        )
    summary = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "device": engine.device,
        "model": engine.name,
        "paragraphs": len(results),
        "strength": args.strength,
        "total_s_median": round(statistics.median(r.total_s for r in results), 3),
        "total_s_max": round(max(r.total_s for r in results), 3),
        "steps_median": statistics.median(r.steps for r in results),
        "tokens_per_forward_median": round(statistics.median(r.tokens_per_forward for r in results), 2),
        "encode_ms_median": round(statistics.median(r.encode_ms for r in results), 2),
        "step_ms_median": round(statistics.median(r.step_ms_median for r in results), 2),
    }
    print("RESULT " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
