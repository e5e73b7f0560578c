"""What FP8 experts cost in accuracy on trained weights: the same rewrites, same seeds, bf16 vs FP8 experts.

Loads the model three times through ``Engine.load``: as it runs by default, with ``fp8=True`` (the experts in
float8 e4m3, one scale per row), and in fp32 (for scale: how far a mere change of dtype moves the output).
Rewrites held-out paragraphs (the model card's sample) with each, seed by seed, and reports

* the share of rewrites whose final tokens differ from the default's, and the share of token positions that
  agree, for FP8 and for fp32;
* one-pass accuracy on the same sample (re-noised positions restored by one forward), for all three.

On a CPU the FP8 products run through the dequantising reference (the same quantised numbers as the
Hopper kernel, slower), so the accuracy measured here is the one a GPU would give.

    python benchmarks/fp8_accuracy.py                       # the bundled demo model, 40 paragraphs
    python benchmarks/fp8_accuracy.py --model PATH --n 20
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from diffedit.engine.engine import Engine
from diffedit.engine.loader import default_model_path
from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob
from diffedit.training.evaluate_demo import encode_splits, read_sample, training_budget
from diffedit.training.metrics import one_pass_accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint folder (default: the bundled demo model)")
    ap.add_argument("--n", type=int, default=40, help="paragraphs to rewrite")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    args = ap.parse_args()

    path = Path(args.model) if args.model else default_model_path()
    engines = {
        "default": Engine.load(path),
        "fp8": Engine.load(path, fp8=True),
        "fp32": Engine.load(path, dtype="fp32"),
    }
    base = engines["default"]
    sample = read_sample(path / "heldout_sample.jsonl")
    splits = [s for s in sample if s.target.strip()][: args.n]

    tokens: dict[str, list[tuple[int, ...]]] = {name: [] for name in engines}
    for i, split in enumerate(splits):
        request = EditRequest(split.prefix, split.target, split.suffix)
        job = RewriteJob(request, GenerationSettings(seed=i, steps=args.steps))
        for name, engine in engines.items():
            tokens[name].append(engine.rewrite(job).token_ids)

    result: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "model": base.name,
        "default_dtype": str(base.model.dtype).removeprefix("torch."),
        "fp8_fused_kernel": bool(engines["fp8"].fp8 and engines["fp8"].fp8.fused),
        "rewrites": len(splits),
        "torch": torch.__version__,
    }
    for name in ("fp8", "fp32"):
        pairs = list(zip(tokens["default"], tokens[name], strict=True))
        same_pos = sum(a == b for x, y in pairs for a, b in zip(x, y, strict=False))
        positions = sum(max(len(x), len(y)) for x, y in pairs)
        result[f"{name}_vs_default"] = {
            "rewrites_differing": f"{sum(x != y for x, y in pairs)}/{len(pairs)}",
            "token_positions_agreeing": round(same_pos / max(1, positions), 4),
        }

    tokenizer = base.tokenizer
    examples = encode_splits(tokenizer, sample, training_budget(path), base.canvas_length)
    result["one_pass_accuracy"] = {
        name: round(one_pass_accuracy(engine.model, examples, base.pad_id).value, 4)
        for name, engine in engines.items()
    }
    result["one_pass_examples"] = len(examples)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
