"""What int8 and int4 weights cost on trained weights, and what they do to step time, side by side.

Loads the model three times through ``Engine.load``: as stored (``quantize="none"``), int8 and int4
(diffedit/engine/quant.py). On the held-out paragraphs of the model card's sample it reports, for int8 and
int4 against the unquantised model:

* argmax agreement: the share of canvas positions where one forward's argmax is the same (the one-pass
  inputs: half the canvas re-noised, context on both sides);
* one-pass accuracy (re-noised positions restored by one forward), for all three;
* same-seed rewrites: how many rewrites are token for token the same, and the share of token positions
  that agree;
* step time: the median decoder step of the same rewrites, and its ratio to the unquantised model's,
  measured in one run with the three models interleaved rewrite by rewrite (so load on the machine hits all
  three alike).

    nice -n 5 python benchmarks/quant_accuracy.py                 # the bundled demo model, 40 paragraphs
    python benchmarks/quant_accuracy.py --model PATH --n 20
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
from diffedit.training.evaluate_demo import encode_splits, read_sample, training_budget
from diffedit.training.metrics import canvas_logits, group_by_prompt_length, one_pass_accuracy, renoise

MODES = ("none", "int8", "int4")


def argmax_agreement(base: Engine, other: Engine, examples: list, fraction: float = 0.5) -> float:  # type: ignore[type-arg]
    gen = torch.Generator().manual_seed(1234)
    vocab = base.model.config.get_text_config().vocab_size
    noised = [renoise(ex.canvas, base.pad_id, vocab, fraction, gen)[0] for ex in examples]
    same = total = 0
    with torch.no_grad():
        for batch in group_by_prompt_length(examples, 16):
            prompts = torch.tensor([examples[i].prompt for i in batch])
            canvases = torch.stack([noised[i] for i in batch])
            a = canvas_logits(base.model, prompts, canvases).argmax(-1)
            b = canvas_logits(other.model, prompts, canvases).argmax(-1)
            same += int((a == b).sum())
            total += a.numel()
    return same / max(1, total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint folder (default: the bundled demo model)")
    ap.add_argument("--n", type=int, default=40, help="paragraphs to rewrite")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    ap.add_argument("--dtype", default=None, help="bf16 or fp32 (default: the loader's choice)")
    args = ap.parse_args()

    path = Path(args.model) if args.model else default_model_path()
    engines = {m: Engine.load(path, dtype=args.dtype, quantize=m) for m in MODES}
    base = engines["none"]
    sample = read_sample(path / "heldout_sample.jsonl")
    splits = [s for s in sample if s.target.strip()][: args.n]

    tokens: dict[str, list[tuple[int, ...]]] = {m: [] for m in MODES}
    steps: dict[str, list[float]] = {m: [] for m in MODES}
    for i, split in enumerate(splits):
        job = RewriteJob(
            EditRequest(split.prefix, split.target, split.suffix),
            GenerationSettings(seed=i, steps=args.steps),
        )
        for m in MODES:  # interleaved: the same load on the machine for all three
            result = engines[m].rewrite(job)
            tokens[m].append(tuple(result.token_ids))
            steps[m].append(result.step_ms_median)

    examples = encode_splits(base.tokenizer, sample, training_budget(path), base.canvas_length)
    step_none = statistics.median(steps["none"])
    out: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "model": base.name,
        "dtype": str(base.loaded.dtype).removeprefix("torch."),
        "rewrites": len(splits),
        "one_pass_examples": len(examples),
        "torch": torch.__version__,
        "weight_bytes": {m: e.loaded.weight_bytes for m, e in engines.items()},
        "one_pass_accuracy": {
            m: round(one_pass_accuracy(e.model, examples, base.pad_id).value, 4) for m, e in engines.items()
        },
        "step_ms_median": {m: round(statistics.median(v), 2) for m, v in steps.items()},
    }
    for m in ("int8", "int4"):
        pairs = list(zip(tokens["none"], tokens[m], strict=True))
        same_pos = sum(a == b for x, y in pairs for a, b in zip(x, y, strict=False))
        positions = sum(max(len(x), len(y)) for x, y in pairs)
        out[f"{m}_vs_none"] = {
            "argmax_agreement": round(argmax_agreement(base, engines[m], examples), 4),
            "rewrites_identical": f"{sum(x == y for x, y in pairs)}/{len(pairs)}",
            "token_positions_agreeing": round(same_pos / max(1, positions), 4),
            "step_time_ratio": round(statistics.median(steps[m]) / step_none, 3),
        }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
