"""Our denoising loop vs transformers' DiffusionGemmaForBlockDiffusion.generate, side by side in one run.

Same checkpoint, prompt, seed and settings; early stopping off so both run the same number of steps.
Each side loads the checkpoint its own way: ours through ``Engine.load`` (as the editor and the CLI do),
the reference through ``DiffusionGemmaForBlockDiffusion.from_pretrained(path)`` with transformers' defaults
(``dtype="auto"``: the dtype the checkpoint is stored in), as a user of transformers would load it;
``--reference-dtype`` overrides that. The result names each side's dtype, attention and experts kernels.
Prints per-run timings, then medians and the ratio ours / reference.

    python benchmarks/engine_vs_reference.py                      # the bundled demo model
    python benchmarks/engine_vs_reference.py --model PATH --steps 48 --context 512
    python benchmarks/engine_vs_reference.py --random tiny        # a random model of the 'tiny' shape
    python benchmarks/engine_vs_reference.py --compile            # also our loop with compiled layers
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for tests.checkpoints

from diffedit.engine.decoder import EncodedContext
from diffedit.engine.denoise import DenoiseOptions, denoise
from diffedit.engine.engine import Engine
from diffedit.engine.loader import pick_dtype
from diffedit.engine.sampling import SamplerConfig
from diffedit.engine.types import SamplingMode


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def _describe(model: Any) -> dict[str, str]:
    """The dtype and kernels a model runs with."""
    return {
        "dtype": str(model.dtype).removeprefix("torch."),
        "attention": str(model.config._attn_implementation),
        "experts": str(getattr(model.config, "_experts_implementation", None)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="checkpoint folder (default: the bundled demo model)")
    ap.add_argument("--random", choices=["tiny"], help="build a random-weight model of this shape instead")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--context", type=int, default=256, help="prompt length in tokens")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device")
    ap.add_argument("--dtype", help="our engine's dtype (default: what Engine.load picks)")
    ap.add_argument(
        "--reference-dtype",
        default="auto",
        help="the reference model's dtype (default: auto, transformers' default: as stored)",
    )
    ap.add_argument(
        "--compile", action="store_true", help="also time our fast loop with the compiled layer kernels"
    )
    args = ap.parse_args()

    if args.random:
        from tests.checkpoints import build_checkpoint  # the same builder the tests use

        path = build_checkpoint(
            Path(tempfile.mkdtemp()) / "random-tiny",
            canvas_length=128,
            hidden=256,
            layers=4,
            max_steps=args.steps,
        )
    else:
        path = args.model
    engine = Engine.load(path, device=args.device, dtype=args.dtype)
    model, device = engine.model, engine.device
    from transformers import DiffusionGemmaForBlockDiffusion

    ref_dtype = "auto" if args.reference_dtype == "auto" else pick_dtype(device, args.reference_dtype)
    ref_model = DiffusionGemmaForBlockDiffusion.from_pretrained(engine.loaded.info.path, dtype=ref_dtype)
    ref_model.to(device).eval()  # type: ignore[arg-type]
    vocab = int(model.config.text_config.vocab_size)
    g = torch.Generator().manual_seed(1234)
    prompt = torch.randint(3, vocab, (args.context,), generator=g).tolist()
    # Early stopping off on both sides: a threshold no entropy goes under.
    off = 1e-30
    cfg = SamplerConfig(
        args.steps,
        engine.defaults.entropy_bound,
        engine.defaults.t_min,
        engine.defaults.t_max,
        engine.defaults.stability_threshold,
        off,
    )
    canvas = engine.canvas_length
    ids = torch.tensor([prompt], device=device)

    def reference() -> None:
        torch.manual_seed(args.seed)
        ref_model.generate(
            ids,
            max_new_tokens=canvas,
            max_denoising_steps=args.steps,
            confidence_threshold=off,
            eos_token_id=None,
        )

    def ours(mode: SamplingMode, compile_step: bool = False) -> None:
        options = DenoiseOptions(cfg, frozenset({-1}), engine.pad_id, mode=mode, compile_step=compile_step)
        out = denoise(model, prompt, options, torch.Generator(device=device).manual_seed(args.seed))
        if compile_step and not out.compiled:
            raise SystemExit(f"the compiled step did not run: {out.compile_error}")

    # the bare model work: one prefill plus `steps` decoder forwards (transformers' forward, no sampler)
    def bare(model: Any) -> None:
        with torch.no_grad():
            context = EncodedContext(model)
            context.append(ids)
            cache, n = context.cache, ids.shape[1]
            cv = torch.randint(0, vocab, (1, canvas), device=device)
            pos = torch.arange(n, n + canvas, dtype=torch.int32, device=device)[None]
            sc = None
            for _ in range(args.steps):
                sc = model(
                    decoder_input_ids=cv, cache=cache, decoder_position_ids=pos, self_conditioning_logits=sc
                ).logits

    runs: dict[str, list[float]] = {
        "reference": [],
        "ours_fast": [],
        "ours_reference_mode": [],
        "bare_forwards": [],
        "bare_forwards_ours_model": [],
    }
    fns = {
        "reference": reference,
        "ours_fast": lambda: ours("fast"),
        "ours_reference_mode": lambda: ours("reference"),
        "bare_forwards": lambda: bare(ref_model),  # the reference model as transformers loads it
        "bare_forwards_ours_model": lambda: bare(model),  # the model as Engine.load loads it
    }
    if args.compile:
        runs["ours_fast_compiled"] = []
        fns["ours_fast_compiled"] = lambda: ours("fast", compile_step=True)
    warmup: dict[str, float] = {}
    for name, fn in fns.items():
        warmup[name] = round(_timed(fn, device), 2)  # the compiled run's includes its compilation
    print(json.dumps({"warm_up_s": warmup}), flush=True)
    for rep in range(args.reps):
        for name, fn in fns.items():  # interleaved, so drift in machine load hits all alike
            runs[name].append(_timed(fn, device))
        print(json.dumps({"rep": rep, **{k: round(v[-1], 4) for k, v in runs.items()}}), flush=True)

    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else device,
        "model": engine.name,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "reference_model": _describe(ref_model),
        "ours_model": _describe(model),
        "canvas": canvas,
        "context": args.context,
        "steps": args.steps,
        "reps": args.reps,
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "per_step_ms": {k: round(1000 * v / args.steps, 2) for k, v in med.items()},
        "ratio_ours_fast_vs_reference": round(med["ours_fast"] / med["reference"], 3),
        "ratio_ours_reference_mode_vs_reference": round(med["ours_reference_mode"] / med["reference"], 3),
        "reference_vs_bare_forwards": round(med["reference"] / med["bare_forwards"], 3),
        "ours_fast_vs_bare_forwards": round(med["ours_fast"] / med["bare_forwards"], 3),
        "ours_fast_vs_bare_forwards_ours_model": round(med["ours_fast"] / med["bare_forwards_ours_model"], 3),
        "torch": torch.__version__,
    }
    if args.compile:
        compiled_s = med["ours_fast_compiled"]
        result["ratio_ours_fast_compiled_vs_reference"] = round(compiled_s / med["reference"], 3)
        result["ratio_compiled_vs_ours_fast"] = round(med["ours_fast_compiled"] / med["ours_fast"], 3)
        result["compile_warm_up_s"] = warmup["ours_fast_compiled"]
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
