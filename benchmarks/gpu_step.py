"""Decoder step, prefill and whole-canvas time: transformers' generate vs our loop, in one process.

Builds DiffusionGemma of a given shape with random weights (on meta, then each shared tensor materialised
once, so encoder and decoder share storage as in a real checkpoint), then for each context length times:
  * transformers' ``generate`` (one canvas, fixed steps, early stop off),
  * our loop in fast mode, eager and with the step captured as a CUDA graph (same model, seed, steps),
  * the graphed loop again with the decoder layers as compiled fused kernels (``compile_step``; the
    first call's compilation is reported apart),
  * one bare decoder forward (min / median; also through the compiled layers), the graphed step (median of
    replays) and the prefill;
then quantises the experts to FP8 and times the graphed loop again, with its accuracy cost: the share of
canvases whose final tokens differ from bf16 on the same seed, and one forward's logits against bf16.
Prints one JSON line per measurement and a final ``RESULT {...}`` line (also written to --out).

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

from diffedit.engine import denoise as denoise_mod
from diffedit.engine.decoder import EncodedContext
from diffedit.engine.denoise import DenoiseOptions, DenoiseOutcome, denoise
from diffedit.engine.fused_step import FusedCanvasDecoder, compiled_kernels
from diffedit.engine.sampling import SamplerConfig
from diffedit.engine.static_cache import StaticCanvasCache
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
    # The 26B-A4B layer structure (30 layers, sliding and full, values equal to keys on the full ones, top-8
    # routing) at the tiny width: what benchmarks/step_ops.py counts operations on.
    "26b-layers": dict(
        vocab_size=8192,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=30,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=64,
        global_head_dim=128,
        num_global_key_value_heads=1,
        attention_k_eq_v=True,
        num_experts=16,
        top_k_experts=8,
        moe_intermediate_size=128,
        enable_moe_block=True,
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


class Bench:
    def __init__(
        self, model: DiffusionGemmaForBlockDiffusion, steps: int, reps: int, dev: str, compile: bool = True
    ) -> None:
        self.model = model
        self.compile = compile
        self.steps = steps
        self.reps = reps
        self.dev = dev
        self.sync: Callable[[], None] = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        self.vocab = model.config.text_config.vocab_size
        self.off = 1e-30  # early stop off: random weights never settle, and every run does the same steps
        self.cfg = SamplerConfig(steps, 0.1, 0.4, 0.8, 1, self.off)

    def prompt(self, ctx: int, seed: int = 0) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(3, self.vocab, (1, ctx), generator=gen).to(self.dev)

    def reference(self, prompt: torch.Tensor) -> None:
        torch.manual_seed(0)
        self.model.generate(
            prompt,
            max_new_tokens=256,
            max_denoising_steps=self.steps,
            confidence_threshold=self.off,
            eos_token_id=None,
        )

    def ours(
        self, prompt: torch.Tensor, graphs: bool, seed: int = 0, compile_step: bool = False
    ) -> DenoiseOutcome:
        options = DenoiseOptions(self.cfg, frozenset({-1}), 0, compile_step=compile_step)
        generator = torch.Generator(device=self.dev).manual_seed(seed)
        if graphs:
            return denoise(self.model, prompt[0].tolist(), options, generator)
        # The eager loop on a GPU: the loop's own test of the device, answered no for this run.
        supported = denoise_mod.graphs_supported
        denoise_mod.graphs_supported = lambda device: False
        try:
            return denoise(self.model, prompt[0].tolist(), options, generator)
        finally:
            denoise_mod.graphs_supported = supported

    def timed_ours(self, prompt: torch.Tensor, graphs: bool, compile_step: bool = False) -> dict[str, object]:
        self.sync()
        t = time.perf_counter()
        first = self.ours(prompt, graphs, compile_step=compile_step)  # warm-up (and compilation)
        self.sync()
        first_s = time.perf_counter() - t
        times, steps, graphed = [], [], graphs
        for _ in range(self.reps):
            self.sync()
            t = time.perf_counter()
            out = self.ours(prompt, graphs, compile_step=compile_step)
            self.sync()
            times.append(time.perf_counter() - t)
            steps.extend(out.step_s[2:])  # steady state: after the eager first step and the warm-up/capture
            graphed = graphed and out.graphed is True
        r: dict[str, object] = {
            "canvas_s_median": round(statistics.median(times), 4),
            "step_ms_median": round(1000 * statistics.median(steps), 2) if steps else None,
            "step_ms_min": round(1000 * min(steps), 2) if steps else None,
            "graphed": graphed,
            "first_call_s": round(first_s, 2),
        }
        if compile_step:
            r["compiled"] = first.compiled is True and out.compiled is True
            r["compile_error"] = first.compile_error or out.compile_error
        return r

    def forward_and_prefill(self, prompt: torch.Tensor) -> dict[str, object]:
        ctx = prompt.shape[1]
        dev = self.dev
        with torch.inference_mode():  # as denoise: the compiled step is shared
            pre = []
            for _ in range(self.reps + 1):
                context = EncodedContext(self.model)
                pre.append(_timed(partial(context.append, prompt), self.sync))
            cache = context.cache
            canvas = torch.randint(0, self.vocab, (1, 256), device=dev)
            dpos = torch.arange(ctx, ctx + 256, dtype=torch.int32, device=dev)[None]
            sc = self.model(decoder_input_ids=canvas, cache=cache, decoder_position_ids=dpos).logits
            step = partial(
                self.model,
                decoder_input_ids=canvas,
                cache=cache,
                decoder_position_ids=dpos,
                self_conditioning_logits=sc.to(self.model.dtype),
            )
            st = [_timed(step, self.sync) for _ in range(3 * self.reps)]
            r: dict[str, object] = {
                "decoder_forward_ms_min": round(1000 * min(st), 2),
                "decoder_forward_ms_median": round(1000 * statistics.median(st), 2),
                "prefill_ms_median": round(1000 * statistics.median(pre[1:]), 2),
            }
            if self.compile:
                masks, _ = context.canvas_inputs(torch.device(dev))
                fused = FusedCanvasDecoder(self.model, masks, cache, dpos, compiled_kernels())
                sc_in = sc.to(self.model.dtype)
                with StaticCanvasCache(cache, 256).installed(self.model):
                    fused(canvas, sc_in)  # compiled by the loop runs before: this call only checks guards
                    ft = [_timed(partial(fused, canvas, sc_in), self.sync) for _ in range(3 * self.reps)]
                r["fused_forward_ms_min"] = round(1000 * min(ft), 2)
                r["fused_forward_ms_median"] = round(1000 * statistics.median(ft), 2)
                r["fused_forward_compiled"] = fused.kernels.compiled
        return r

    def context_run(self, ctx: int, label: str, with_reference: bool) -> dict[str, object]:
        prompt = self.prompt(ctx)
        r: dict[str, object] = {"ctx": ctx, "weights": label, "steps": self.steps}
        if with_reference:
            self.reference(prompt)
            ref = [_timed(partial(self.reference, prompt), self.sync) for _ in range(self.reps)]
            r["reference_canvas_s_median"] = round(statistics.median(ref), 4)
            r["reference_tok_per_s"] = round(256 / statistics.median(ref), 1)
            eager = self.timed_ours(prompt, graphs=False)
            r["ours_eager"] = eager
        graphed = self.timed_ours(prompt, graphs=True)
        r["ours_graphed"] = graphed
        r["ours_tok_per_s"] = round(256 / float(graphed["canvas_s_median"]), 1)  # type: ignore[arg-type]
        if self.compile:
            fused = self.timed_ours(prompt, graphs=True, compile_step=True)
            r["ours_graphed_compiled"] = fused
            r["ours_compiled_tok_per_s"] = round(256 / float(fused["canvas_s_median"]), 1)  # type: ignore[arg-type]
        r.update(self.forward_and_prefill(prompt))
        if with_reference:
            ref_s = float(r["reference_canvas_s_median"])  # type: ignore[arg-type]
            r["ratio_graphed_vs_reference"] = round(float(graphed["canvas_s_median"]) / ref_s, 3)  # type: ignore[arg-type]
            r["ratio_eager_vs_reference"] = round(float(eager["canvas_s_median"]) / ref_s, 3)  # type: ignore[arg-type]
            if self.compile:
                r["ratio_compiled_vs_reference"] = round(float(fused["canvas_s_median"]) / ref_s, 3)  # type: ignore[arg-type]
        return r

    def canvases(self, ctx: int, seeds: int) -> list[list[int]]:
        prompt = self.prompt(ctx, seed=1)
        return [self.ours(prompt, graphs=True, seed=s).tokens for s in range(seeds)]

    def probe_logits(self, ctx: int) -> torch.Tensor:
        prompt = self.prompt(ctx, seed=2)
        canvas = torch.randint(0, self.vocab, (1, 256), generator=torch.Generator().manual_seed(3)).to(
            self.dev
        )
        cache = DynamicCache(config=self.model.config.get_text_config(decoder=True))
        with torch.no_grad():
            return self.model(input_ids=prompt, cache=cache, decoder_input_ids=canvas).logits.float()


def profile_step(bench: Bench, ctx: int, path: str, compile_step: bool = False) -> None:
    """Where one eager decoder step spends its device time: the top kernels, for the next round of work."""
    from torch.profiler import ProfilerActivity, profile

    prompt = bench.prompt(ctx)
    bench = Bench(bench.model, 4, 1, bench.dev)  # four steps are plenty, and keep the trace small
    bench.ours(prompt, graphs=False, compile_step=compile_step)  # compiled and warm before the trace
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if bench.dev == "cuda" else [])
    with profile(activities=acts) as prof:
        bench.ours(prompt, graphs=False, compile_step=compile_step)
    key = "cuda_time_total" if bench.dev == "cuda" else "cpu_time_total"
    with open(path, "w", encoding="utf-8") as f:
        f.write(prof.key_averages().table(sort_by=key, row_limit=30))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--ctx", type=int, nargs="+", default=[512, 4096])
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--accuracy-seeds", type=int, default=4)
    ap.add_argument("--no-fp8", action="store_true")
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled-layers runs")
    ap.add_argument("--out", default=None, help="folder for result.json and profile.txt")
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
        "experts_implementation": model.config.text_config._experts_implementation,
        "runs": runs,
    }
    print(json.dumps(res), flush=True)
    out_dir = a.out

    def save() -> None:
        if dev == "cuda":
            res["max_mem_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 1)
        if out_dir:
            with open(f"{out_dir}/result.json", "w", encoding="utf-8") as f:
                json.dump(res, f, indent=1)

    bench = Bench(model, a.steps, a.reps, dev, compile=not a.no_compile)

    def attempt(what: str, fn: Callable[[], dict[str, object]]) -> dict[str, object] | None:
        try:
            r = fn()
        except Exception as exc:  # report it and go on with the rest
            r = {"what": what, "error": repr(exc)[:500]}
            if dev == "cuda":
                torch.cuda.empty_cache()
        print(json.dumps(r), flush=True)
        runs.append(r)
        save()
        return None if "error" in r else r

    for ctx in a.ctx:
        attempt(f"bf16 ctx {ctx}", partial(bench.context_run, ctx, "bf16", True))
    if out_dir:
        attempt(
            "profile", lambda: (profile_step(bench, a.ctx[0], f"{out_dir}/profile.txt"), {"profile": "ok"})[1]
        )
        if not a.no_compile:
            attempt(
                "profile compiled",
                lambda: (
                    profile_step(bench, a.ctx[0], f"{out_dir}/profile_compiled.txt", compile_step=True),
                    {"profile compiled": "ok"},
                )[1],
            )
    if a.no_fp8:
        print("RESULT " + json.dumps(res), flush=True)
        return

    ctx0 = a.ctx[0]
    base: dict[str, object] = {}

    def bf16_reference_outputs() -> dict[str, object]:
        base["canvases"] = bench.canvases(ctx0, a.accuracy_seeds)
        base["logits"] = bench.probe_logits(ctx0)
        return {"what": "bf16 canvases recorded", "seeds": a.accuracy_seeds}

    attempt("bf16 outputs", bf16_reference_outputs)

    def quantize() -> dict[str, object]:
        from diffedit.engine.fp8 import quantize_experts

        t = time.time()
        rep = quantize_experts(model)
        if dev == "cuda":
            torch.cuda.empty_cache()
        return {
            "what": "fp8 quantise",
            "seconds": round(time.time() - t, 1),
            "fused_kernel": rep.fused,
            "experts_GB_before": round(rep.bytes_before / 1e9, 2),
            "experts_GB_after": round(rep.bytes_after / 1e9, 2),
        }

    if attempt("fp8 quantise", quantize) is None:
        print("RESULT " + json.dumps(res), flush=True)
        return
    for ctx in a.ctx:
        attempt(f"fp8 ctx {ctx}", partial(bench.context_run, ctx, "fp8-experts", False))

    def accuracy() -> dict[str, object]:
        got = bench.canvases(ctx0, a.accuracy_seeds)
        want = base["canvases"]
        assert isinstance(want, list)
        differ = sum(g != w for g, w in zip(got, want, strict=True))
        same_pos = sum(x == y for g, w in zip(got, want, strict=True) for x, y in zip(g, w, strict=False))
        total_pos = sum(len(w) for w in want)
        ref = base["logits"]
        assert isinstance(ref, torch.Tensor)
        new = bench.probe_logits(ctx0)
        return {
            "what": "fp8 accuracy vs bf16 (same seeds)",
            "canvases_differing": f"{differ}/{len(want)}",
            "final_token_agreement": round(same_pos / max(1, total_pos), 4),
            "one_forward_top1_agreement": round(float((new.argmax(-1) == ref.argmax(-1)).float().mean()), 4),
            "one_forward_logits_rel_err": round(float((new - ref).norm() / ref.norm()), 5),
        }

    if base:
        attempt("fp8 accuracy", accuracy)
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
