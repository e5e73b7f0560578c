"""A multi-block rewrite today (block after block in one job) and what batching the blocks would buy.

Today a shape-true job writes its runs one after another: run k's canvas is decoded after runs 0..k-1 were
written and appended to the context, so a six-paragraph selection costs six canvases in sequence. This
benchmark measures that on the bundled demo model (the job as ``Engine.rewrite`` runs it: same context,
plan and options; seeds 0..reps-1), counting each run's steps, and then probes what a batch would cost: one
denoising step (decoder forward, read, draw, re-noise) at batch 1 and at batch B (B = the job's runs) on
the same encoded context, interleaved, same seed. The projection puts them together: today's steps x
step(1) against the slowest run's steps x step(B) (a batch runs until its last row settles).

The probe is not a batched rewrite: its rows share the context and carry no constraints. What batching
needs is printed at the end. Prints the machine first and one JSON line at the end.

  python benchmarks/multiblock.py [--device cpu] [--reps 5] [--blocks 6] [--probe-steps 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

import torch
from constraints_cost import PARAGRAPH, machine

from diffedit.document.blocks import parse_blocks
from diffedit.engine.decoder import CanvasDecoder, EncodedContext
from diffedit.engine.denoise import StepView, denoise
from diffedit.engine.engine import Engine
from diffedit.engine.sampling import draw_fast, next_canvas, read_step, uniform_canvas, vocab_buffers
from diffedit.engine.static_cache import StaticCanvasCache
from diffedit.engine.types import GenerationSettings
from diffedit.rewrites import build_job

NEEDS = [
    "per-row constraints: CanvasConstraints holds (position, token) pairs applied to every row "
    "(prepare_logits_, next_canvas, hold, the graphed sampler); a batch needs (row, position, token)",
    "a batch-B decoder over one batch-1 context: StaticCanvasCache buffers of batch B (the context copied "
    "or broadcast), the canvas masks and rotary tables broadcast over rows",
    "per-row warm starts and first steps (a refine enters the schedule by strength; rows alike here), "
    "and a per-row stop: a settled row freezes while the others go on, frames per row",
    "what each block reads: today run k reads runs 0..k-1 as rewritten; batched first runs read the "
    "original text instead (a different, parallel conditioning), so outputs differ from today's per seed",
    "a run longer than one canvas continues sequentially after the batch (its context then grows per row)",
    "the CUDA-graph and compiled-step paths captured at batch B (one graph per batch size)",
]


def document(blocks: int) -> str:
    words = PARAGRAPH.split()
    paragraphs = [" ".join(words[i : i + 14 + 3 * i]) + "." for i in range(blocks)]
    return "# Notes\n\n" + "\n\n".join(paragraphs) + "\n\nClosing words.\n"


def sequential(engine: Engine, text: str, blocks: int, reps: int) -> dict[str, object]:
    """Today's job, measured: wall time, steps per run, step and encode times."""
    spans = [b for b in parse_blocks(text) if b.kind == "paragraph"][:blocks]
    job = build_job(text, spans[0].start, spans[-1].end, GenerationSettings(seed=0))
    assert job.templates is not None and len(job.templates) == blocks
    fmt = engine.loaded.context_format
    budget = min(job.settings.context_tokens, fmt.context_tokens or job.settings.context_tokens)
    prompt = fmt.build(engine.tokenizer, job.request, budget).input_ids
    target_ids = list(engine.tokenizer.encode(job.request.target, add_special_tokens=False))
    plan = engine.plan(job)
    assert plan is not None
    options = engine.options_for(job, target_ids, 0.0, plan)
    walls, steps_per_run, step_s, steps_s, encode_s = [], [], [], [], []
    for seed in range(reps + 1):  # the first round warms up
        steps: dict[int, int] = defaultdict(int)

        def count(view: StepView, steps: dict[int, int] = steps) -> None:
            steps[view.canvas_index] = max(steps[view.canvas_index], view.step)

        gen = torch.Generator(device=engine.device).manual_seed(seed)
        _sync(engine)
        t = time.perf_counter()
        out = denoise(engine.model, prompt, options, gen, observe=count)
        _sync(engine)
        if seed:
            walls.append(time.perf_counter() - t)
            steps_per_run.append([steps[i] for i in sorted(steps)])
            step_s += out.step_s[1:]
            steps_s.append(sum(out.step_s))
            encode_s.append(out.encode_s)
    return {
        "runs": len(plan.runs),
        "canvases": sum(r.canvases for r in plan.runs),
        "prompt_tokens": len(prompt),
        "wall_s": statistics.median(walls),
        "steps_s": statistics.median(steps_s),  # the rest of the wall time: encoding, canvas set-up
        "steps_per_run": steps_per_run,
        "step_ms": statistics.median(step_s) * 1000,  # constrained, as the job runs
        "first_encode_ms": statistics.median(encode_s) * 1000,
        "prompt": prompt,
        "sampler": options.sampler,
    }


def step_cost(engine: Engine, prompt: list[int], batch: int, steps: int, seed: int, sampler: object) -> float:
    """Median seconds of one unconstrained denoising step at ``batch`` rows over one encoded context."""
    model, device = engine.model, torch.device(engine.device)
    length, vocab = int(model.config.canvas_length), int(model.config.text_config.vocab_size)
    times = []
    with torch.inference_mode():
        context = EncodedContext(model)
        context.append(torch.tensor([prompt], dtype=torch.long, device=device))
        masks, positions = context.canvas_inputs(device)
        decoder = CanvasDecoder(model, masks, context.cache, positions)
        static = StaticCanvasCache(context.cache, length)
        static.keys = [k.repeat(batch, 1, 1, 1) for k in static.keys]  # the context once per row
        static.values = [v.repeat(batch, 1, 1, 1) for v in static.values]
        gen = torch.Generator(device=device).manual_seed(seed)
        out = vocab_buffers((batch, length, vocab), device)
        tokens = uniform_canvas((batch, length), vocab, gen, device)
        self_cond = None
        with static.installed(model):
            for remaining in range(steps, 0, -1):
                _sync(engine)
                t = time.perf_counter()
                logits = decoder(tokens, self_cond)
                left = torch.tensor(remaining, device=device, dtype=torch.int32)
                scored, accepted = read_step(logits, sampler, left, None, False, out)  # type: ignore[arg-type]
                drawn = draw_fast(scored, accepted, gen)
                tokens = next_canvas(accepted, drawn, uniform_canvas((batch, length), vocab, gen, device))
                self_cond = scored.logits.to(decoder.self_cond_dtype)
                _sync(engine)
                times.append(time.perf_counter() - t)
    return statistics.median(times[1:])  # the first step has no self-conditioning


def _sync(engine: Engine) -> None:
    if torch.device(engine.device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--probe-steps", type=int, default=12)
    args = parser.parse_args()
    engine = Engine.load(None, device=args.device)
    print("machine:", machine(engine))
    seq = sequential(engine, document(args.blocks), args.blocks, args.reps)
    prompt, sampler = seq.pop("prompt"), seq.pop("sampler")
    runs = int(seq["runs"])  # type: ignore[call-overload]
    one: list[float] = []
    many: list[float] = []
    for rep in range(args.reps):  # interleaved, same seed for both sizes
        one.append(step_cost(engine, prompt, 1, args.probe_steps, rep, sampler))  # type: ignore[arg-type]
        many.append(step_cost(engine, prompt, runs, args.probe_steps, rep, sampler))  # type: ignore[arg-type]
    step1, step_b = statistics.median(one), statistics.median(many)
    per_run = seq["steps_per_run"]
    total_steps = statistics.median(sum(r) for r in per_run)  # type: ignore[attr-defined]
    slowest = statistics.median(max(r) for r in per_run)  # type: ignore[attr-defined]
    result = {
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in seq.items()},
        "probe_step_ms_batch_1": round(step1 * 1000, 3),
        f"probe_step_ms_batch_{runs}": round(step_b * 1000, 3),
        "batch_step_over_single_step": round(step_b / step1, 3),
        "projected_steps_s_sequential": round(total_steps * step1, 3),
        "projected_steps_s_batched": round(slowest * step_b, 3),
    }
    print(
        f"sequential (today): {seq['wall_s']:.3f} s wall ({seq['steps_s']:.3f} s in steps), "
        f"{total_steps:g} steps over {runs} runs; probe: "
        f"step {step1 * 1000:.2f} ms at batch 1, {step_b * 1000:.2f} ms at batch {runs}; "
        f"projected steps: {total_steps * step1:.3f} s sequential vs {slowest * step_b:.3f} s batched"
    )
    print("batching the first runs would need:")
    for need in NEEDS:
        print("  -", need)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
