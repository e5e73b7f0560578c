"""Size, engine time and training time of a demo model shape, measured with random weights.

For each named shape of ``diffedit.training.model_config.SHAPES``: a BPE of the shape's vocabulary size
trained on (a slice of) the corpus's training documents, a randomly initialised model saved as the demo
checkpoint would be (bf16 safetensors), then

* its size on disk and parameter count;
* ``benchmarks/rewrite_latency.py`` against it (engine time of a paragraph rewrite, 2 threads). Random weights
  never settle, so every denoising step of every canvas runs: ``total_s`` is an upper bound, and the figure
  to compare between shapes is the time of one denoising step (``step_ms_median``);
* seconds per training step (``train_demo.training_step`` + backward + AdamW, batch 16, self-conditioning
  every other step, as in training) over ``--steps`` steps after two warm-up steps.

    nice -n 10 python benchmarks/demo_shape.py --shapes demo-1,demo-2 --data data --steps 20

Prints one JSON line per shape and the load average before and after each measurement (the machine is
shared: say so next to the numbers).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers import DiffusionGemmaForBlockDiffusion

from diffedit.training import corpus
from diffedit.training.checkpoint import save_checkpoint
from diffedit.training.examples import build_examples
from diffedit.training.model_config import SHAPES, build_config
from diffedit.training.tokenizer import save_tokenizer, train_bpe
from diffedit.training.train_demo import TrainArgs, batch_stream, make_optimizer, training_step

BENCH = Path(__file__).resolve().parent


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def latency(model_dir: Path, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(BENCH / "rewrite_latency.py"), "--model", str(model_dir), "--n", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line[len("RESULT ") :]))


def train_seconds_per_step(
    model: Any, examples: list[Any], steps: int, threads: int
) -> tuple[list[float], list[float]]:
    """Wall seconds and process CPU seconds (all threads) of each step after two warm-up steps. On a shared
    machine the wall time is inflated by other jobs; CPU seconds / threads is what an idle machine would
    take if the threads kept each other busy (an estimate, as stated)."""
    args = TrainArgs(out=Path("/nonexistent"), threads=threads)
    model.train()
    optimizer = make_optimizer(model, args)
    gen = torch.Generator().manual_seed(0)
    stream = batch_stream(examples, args.batch_size, 0)
    times, cpu = [], []
    for step in range(steps + 2):
        start = time.perf_counter()
        cpu_start = time.process_time()
        loss, _ = training_step(model, examples, next(stream), step % 2 == 1, gen, args)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    return times, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="demo-1,demo-2")
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/diffedit-demo-shape"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--latency-n", type=int, default=10, help="0: skip the latency measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokenizer-chars", type=int, default=3_000_000, help="corpus slice for the BPE")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    docs = corpus.read_documents(args.data / "corpus" / "train.jsonl")
    texts = [d.text for d in docs]
    sizes = itertools.accumulate(len(t) for t in texts)
    slice_ = [t for t, total in zip(texts, sizes, strict=True) if total <= args.tokenizer_chars]
    for name in args.shapes.split(","):
        shape = SHAPES[name]
        target = args.out / name
        tokenizer = save_tokenizer(train_bpe(slice_, shape.vocab_size), target)
        torch.manual_seed(0)
        model = DiffusionGemmaForBlockDiffusion(build_config(shape))
        save_checkpoint(model, tokenizer, target)
        params = sum(p.numel() for p in model.parameters())
        size_mb = (target / "model.safetensors").stat().st_size / 1e6
        row: dict[str, Any] = {
            "shape": name,
            "params_m": round(params / 1e6, 2),
            "safetensors_mb": round(size_mb, 1),
            "threads": args.threads,
        }
        if args.latency_n > 0:
            row["load_before_latency"] = load()
            row["rewrite_latency_random_weights"] = latency(target, args.latency_n)
            row["load_after_latency"] = load()
            print("LATENCY " + json.dumps(row), flush=True)
        examples = build_examples(tokenizer, slice_[:100], 192, shape.canvas_length)
        row["load_before_training"] = load()
        wall, cpu = train_seconds_per_step(model, examples, args.steps, args.threads)
        row.update(
            train_wall_s_per_step_median=round(statistics.median(wall), 3),
            train_wall_s_per_step_mean=round(statistics.fmean(wall), 3),
            train_cpu_s_per_step_median=round(statistics.median(cpu), 3),
            train_steps_timed=len(wall),
            load_after_training=load(),
        )
        print("RESULT " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
