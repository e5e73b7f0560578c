"""What splitting a model costs per denoising step, measured where this machine can: on the CPU.

A split model (diffedit/engine/placement.py) keeps some decoder layers off the device that runs them and has
accelerate's hooks bring each one's weights in for every forward. On a GPU the cost is the copy from RAM
over the bus; this machine has no GPU, so this script measures the two CPU-runnable stand-ins, side by
side with the plain load, the loads interleaved rewrite by rewrite (load on the machine hits all alike):

* ``bf16 disk``: the demo model loaded with transformers' ``from_pretrained(device_map=...)``, the last
  layers offloaded to disk (accelerate reads them from safetensors files for every forward);
* ``int8 hooks``: the int8 model with the last layers behind diffedit's per-layer hooks, their weights
  "copied in" from RAM to the CPU (no copy: this measures the hooks' own bookkeeping, which a GPU pays too).

Same seed, same job: the script also checks that the split loads write the same tokens as the plain ones.

    nice -n 5 python benchmarks/placement_step.py --offloaded 3 --rewrites 6
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics

from diffedit.engine.engine import Engine
from diffedit.engine.loader import default_model_path, inspect_checkpoint, load_model
from diffedit.engine.placement import Placement, model_parts
from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob

DOC = (
    "# Notes\n\nThe editor rewrites a paragraph by diffusion. Select some text and watch it settle.\n\n"
    "Paragraphs are separated by blank lines, and each one is a block of its own.\n\nEnd.\n"
)


def job(seed: int, steps: int) -> RewriteJob:
    start, end = DOC.index("Paragraphs"), DOC.index("\n\nEnd.")
    return RewriteJob(EditRequest.from_document(DOC, start, end), GenerationSettings(seed=seed, steps=steps))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--offloaded", type=int, default=3, help="layers kept off the running device")
    ap.add_argument("--rewrites", type=int, default=6)
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    info = inspect_checkpoint(default_model_path())
    layers = int(json.loads((info.path / "config.json").read_text())["text_config"]["num_hidden_layers"])
    keep = layers - args.offloaded
    engines: dict[str, Engine] = {}
    for name, mode, where in (
        ("bf16 plain", "none", None),
        ("bf16 disk", "none", "disk"),
        ("int8 plain", "int8", None),
        ("int8 hooks", "int8", "cpu"),
    ):
        plan = None
        if where is not None:
            plan = Placement("cpu", keep, model_parts(info.weight_files, mode, 2, layers), offload_to=where)
        engines[name] = Engine(load_model(None, device="cpu", dtype="bf16", quantize=mode, placement=plan))
    steps: dict[str, list[float]] = {k: [] for k in engines}
    same: dict[str, int] = {k: 0 for k in engines}
    for seed in range(args.rewrites):
        results = {k: e.rewrite(job(seed, args.steps)) for k, e in engines.items()}
        for k, r in results.items():
            steps[k].append(r.step_ms_median)
            base = results["bf16 plain" if k.startswith("bf16") else "int8 plain"]
            same[k] += r.token_ids == base.token_ids
    medians = {k: statistics.median(v) for k, v in steps.items()}
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "layers": layers,
        "offloaded_layers": args.offloaded,
        "step_ms_median": medians,
        "ratio_to_plain": {
            "bf16 disk": medians["bf16 disk"] / medians["bf16 plain"],
            "int8 hooks": medians["int8 hooks"] / medians["int8 plain"],
        },
        "same_tokens_as_plain": {k: f"{v}/{args.rewrites}" for k, v in same.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
