"""What shape-true rewrites cost: the denoising step under canvas constraints against the same step without,
and a six-block rewrite's wall time, on the bundled demo model.

Per-step: one canvas, a fixed number of steps (the early stop off), the same prompt and seed, constrained (a
list item: held marker, a paragraph slot forbidding newlines and line-start tokens, its end band) and
unconstrained runs interleaved; medians of the per-step times and their ratio. Then a six-block selection
(heading, paragraph, two list items, quote, fenced code) rewritten shape-true, block after block in one job,
against the same selection free form. Prints the machine first and one JSON line at the end.

  python benchmarks/constraints_cost.py [--device cpu] [--reps 5] [--steps 24]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from diffedit.document.blocks import parse_blocks
from diffedit.engine.constraints import TokenClasses, compile_templates
from diffedit.engine.denoise import DenoiseOptions, denoise
from diffedit.engine.engine import Engine
from diffedit.engine.sampling import SamplerConfig
from diffedit.engine.types import BlockTemplate, FreeText, GenerationSettings, HeldText
from diffedit.rewrites import assemble_blocks, build_job

DOC = """# Working with paths

The module provides functions for working with paths, reading and writing files, and listing folders.

- Open the file and read its contents.
- Close it when you are done.

> The standard library covers most of what a script needs.

```bash
python -m venv .venv
pip install diffedit
```

Closing words of the document.
"""
PARAGRAPH = (
    "The module provides functions for working with paths. Each function takes a path and returns a new one, "
    "so calls can be chained; none of them touches the file system unless its name says so. "
)
STARTS = (r"[ \t]", r"#", r"`{3}|~{3}", r">", r"[-+*](?:[ \t]|\n|\Z)", r"\d{1,9}[.)](?:[ \t]|\n|\Z)")


def machine(engine: Engine) -> str:
    cpu = platform.processor() or platform.machine()
    device = torch.device(engine.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    return (
        f"{platform.platform()}, {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {engine.device} ({gpu})"
    )


def step_times(engine: Engine, steps: int, reps: int) -> dict[str, float]:
    tok, model = engine.tokenizer, engine.model
    eos = next(iter(sorted(engine.eos_ids)))
    length = int(model.config.canvas_length)
    vocab = int(model.config.text_config.vocab_size)
    t = time.perf_counter()
    classes = TokenClasses(tok, vocab, engine.end_ids)
    classes_s = time.perf_counter() - t
    # an original of about 0.6 canvas, so the band's end (1.5x) lies inside the one canvas
    original = tok.decode(tok.encode(PARAGRAPH * 4, add_special_tokens=False)[: int(length * 0.6)])
    template = BlockTemplate(
        "list item", (HeldText("- "), FreeText("paragraph", original, frozenset("\n"), STARTS))
    )
    t = time.perf_counter()
    plan = compile_templates([template], tok, classes, length, eos, engine.pad_id)
    compile_s = time.perf_counter() - t
    assert len(plan.runs) == 1 and plan.runs[0].canvases == 1
    cfg = SamplerConfig(steps, 0.1, 0.4, 0.8, 1, 1e-30)  # no early stop: every run takes ``steps`` steps
    prompt = [tok.bos_token_id, *tok.encode(DOC, add_special_tokens=False)]
    plain = DenoiseOptions(cfg, engine.eos_ids, engine.pad_id)
    constrained = DenoiseOptions(cfg, engine.eos_ids, engine.pad_id, runs=tuple(plan.runs))
    times: dict[str, list[float]] = {"plain": [], "constrained": []}
    for rep in range(reps + 1):  # the first round warms up
        for name, options in (("plain", plain), ("constrained", constrained)):
            gen = torch.Generator(device=engine.device).manual_seed(rep)
            out = denoise(model, prompt, options, gen)
            if rep:
                times[name] += out.step_s[1:]  # the first step has no self-conditioning
    plain_ms = statistics.median(times["plain"]) * 1000
    constrained_ms = statistics.median(times["constrained"]) * 1000
    return {
        "token_classes_s": round(classes_s, 3),
        "compile_templates_ms": round(compile_s * 1000, 2),
        "step_ms_plain": round(plain_ms, 3),
        "step_ms_constrained": round(constrained_ms, 3),
        "step_ratio": round(constrained_ms / plain_ms, 3),
    }


def six_blocks(engine: Engine, reps: int) -> dict[str, float]:
    blocks = parse_blocks(DOC)[:6]
    start, end = blocks[0].start, blocks[-1].end
    out: dict[str, list[float]] = {"shape_true": [], "free_form": []}
    forwards: dict[str, int] = {}
    for rep in range(reps):
        for name in out:
            job = build_job(DOC, start, end, GenerationSettings(seed=rep), free_form=name == "free_form")
            t = time.perf_counter()
            result = engine.rewrite(job)
            assemble_blocks(job, result)
            out[name].append(time.perf_counter() - t)
            forwards[name] = forwards.get(name, 0) + result.steps
    return {
        "six_blocks_shape_true_s": round(statistics.median(out["shape_true"]), 3),
        "six_blocks_free_form_s": round(statistics.median(out["free_form"]), 3),
        "six_blocks_shape_true_forwards": forwards["shape_true"] / reps,
        "six_blocks_free_form_forwards": forwards["free_form"] / reps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=24)
    args = parser.parse_args()
    engine = Engine.load(None, device=args.device)
    print("machine:", machine(engine))
    result = {**step_times(engine, args.steps, args.reps), **six_blocks(engine, max(1, args.reps // 2))}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
