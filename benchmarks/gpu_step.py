"""Decoder step, prefill and whole-canvas time: transformers' generate vs our loop, in one process.

Builds DiffusionGemma of a given shape with random weights (on meta, then each shared tensor materialised
once, so encoder and decoder share storage as in a real checkpoint), then for each context length times:
  * transformers' ``generate`` (one canvas, fixed steps, early stop off),
  * our loop in fast mode (same model, seed, steps),
  * one bare decoder forward (min / median) and the prefill.
Prints one JSON line per context and a final ``RESULT {...}`` line.

  GPU (one call, ~5 min on an H100):  python benchmarks/gpu_step.py --preset 26b --ctx 512 4096 --steps 48
  CPU check of the script itself:     python benchmarks/gpu_step.py --preset tiny --ctx 128 --steps 8 --reps 2
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch
import transformers
from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion, DiffusionGemmaTextConfig
from transformers.cache_utils import DynamicCache

from diffedit.training.model_config import TINY_VISION

PRESETS = {
    "tiny": dict(
        vocab_size=8192,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        global_head_dim=64,
        num_experts=4,
        top_k_experts=2,
        moe_intermediate_size=128,
    ),
    "26b": dict(
        vocab_size=262144,
        hidden_size=2816,
        intermediate_size=2112,
        num_hidden_layers=30,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=256,
        global_head_dim=512,
        num_global_key_value_heads=2,
        attention_k_eq_v=True,
        num_experts=128,
        top_k_experts=8,
        moe_intermediate_size=704,
        sliding_window=1024,
        enable_moe_block=True,
    ),
}


def build(preset: str, device: str, dtype: torch.dtype) -> DiffusionGemmaForBlockDiffusion:
    fields = DiffusionGemmaTextConfig.__dataclass_fields__
    kw = {
        k: v
        for k, v in PRESETS[preset].items()
        if k in fields or k in ("global_head_dim", "num_global_key_value_heads")
    }
    text = DiffusionGemmaTextConfig(max_position_embeddings=32768, pad_token_id=0, eos_token_id=1, **kw)
    cfg = DiffusionGemmaConfig(text_config=text.to_dict(), vision_config=TINY_VISION, canvas_length=256)
    torch.set_default_dtype(dtype)
    with torch.device("meta"):
        model = DiffusionGemmaForBlockDiffusion._from_config(cfg, dtype=dtype).eval()
    torch.set_default_dtype(torch.float32)
    made: dict[int, torch.Tensor] = {}
    for mod in model.modules():
        for slot in (mod._parameters, mod._buffers):
            for name, t in list(slot.items()):
                if t is None:
                    continue
                if id(t) not in made:
                    e = torch.empty_like(t, device=device)
                    made[id(t)] = (
                        torch.nn.Parameter(e, requires_grad=False) if isinstance(t, torch.nn.Parameter) else e
                    )
                slot[name] = made[id(t)]  # type: ignore[assignment]
    with torch.no_grad():
        for mod in model.modules():
            for _, prm in mod.named_parameters(recurse=False):
                prm.normal_(0.0, 0.02)
            with contextlib.suppress(KeyError):  # the unused vision tower's axial rope
                model._init_weights(mod)
        for bn, b in model.named_buffers():
            if bn.endswith("layer_scalar"):
                b.fill_(1.0)
    return model


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def measure(
    model: DiffusionGemmaForBlockDiffusion, ctx: int, steps: int, reps: int, dev: str
) -> dict[str, object]:
    from diffedit.engine.denoise import denoise, encoder_pass
    from diffedit.engine.sampling import DenoiseConfig

    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    vocab = model.config.text_config.vocab_size
    off = 1e-30  # early stop off: random weights never settle, and both sides run the same steps
    cfg = DenoiseConfig(steps, 0.1, 0.4, 0.8, 1, off)
    prompt = torch.randint(3, vocab, (1, ctx), device=dev)
    plist = prompt[0].tolist()

    def reference() -> None:
        torch.manual_seed(0)
        model.generate(
            prompt, max_new_tokens=256, max_denoising_steps=steps, confidence_threshold=off, eos_token_id=None
        )

    def ours() -> None:
        denoise(
            model,
            plist,
            cfg,
            max_canvases=1,
            eos_ids={-1},
            pad_id=0,
            generator=torch.Generator(device=dev).manual_seed(0),
            mode="fast",
        )

    reference()
    ours()
    ref_t = [_timed(reference, sync) for _ in range(reps)]
    our_t = [_timed(ours, sync) for _ in range(reps)]
    with torch.no_grad():
        mask = torch.ones((1, ctx), dtype=torch.bool, device=dev)
        pos = torch.arange(ctx, dtype=torch.int32, device=dev)[None]
        pre = []
        for _ in range(reps):
            cache = DynamicCache(config=model.config.get_text_config(decoder=True))
            pre.append(_timed(partial(encoder_pass, model, prompt, mask, pos, cache), sync))
        canvas = torch.randint(0, vocab, (1, 256), device=dev)
        dpos = torch.arange(ctx, ctx + 256, dtype=torch.int32, device=dev)[None]
        sc = model(decoder_input_ids=canvas, cache=cache, decoder_position_ids=dpos).logits.to(model.dtype)
        step = partial(
            model,
            decoder_input_ids=canvas,
            cache=cache,
            decoder_position_ids=dpos,
            self_conditioning_logits=sc,
        )
        st = [_timed(step, sync) for _ in range(3 * reps)]
    ours_s, ref_s = statistics.median(our_t), statistics.median(ref_t)
    return {
        "ctx": ctx,
        "steps": steps,
        "reference_canvas_s_median": round(ref_s, 4),
        "ours_canvas_s_median": round(ours_s, 4),
        "ratio_ours_vs_reference": round(ours_s / ref_s, 3),
        "ours_step_ms": round(1000 * ours_s / steps, 2),
        "decoder_forward_ms_min": round(1000 * min(st), 2),
        "decoder_forward_ms_median": round(1000 * statistics.median(st), 2),
        "prefill_ms_median": round(1000 * statistics.median(pre), 2),
        "ours_tok_per_s": round(256 / ours_s, 1),
        "reference_tok_per_s": round(256 / ref_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--ctx", type=int, nargs="+", default=[512, 4096])
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    t0 = time.time()
    model = build(a.preset, dev, dtype)
    runs: list[dict[str, object]] = []
    res: dict[str, object] = {
        "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
        "preset": a.preset,
        "params_B": round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        "init_s": round(time.time() - t0, 1),
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "runs": runs,
    }
    print(json.dumps(res), flush=True)
    for ctx in a.ctx:
        try:
            r = measure(model, ctx, a.steps, a.reps, dev)
        except Exception as exc:  # report and go on to the next context
            r = {"ctx": ctx, "error": repr(exc)[:300]}
            if dev == "cuda":
                torch.cuda.empty_cache()
        print(json.dumps(r), flush=True)
        runs.append(r)
    if dev == "cuda":
        res["max_mem_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
