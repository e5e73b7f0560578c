"""Wall time of a whole ``diffedit rewrite`` process on the bundled demo model, native and transformers.

At most 8 denoising steps, so that the start-up, not the engine, is what the numbers show.

Runs ``python -m diffedit rewrite DOC --block 2 --json`` as a user would (a fresh process each time), once
with ``--impl native`` (diffedit's own torch-only DiffusionGemma, what ``auto`` picks for the demo) and once
with ``--impl transformers``, interleaved, ``--n`` times each. Then, in more fresh processes, times the
stages of each path in the CLI's order (inside its GC load phase, as the CLI runs them): importing the CLI,
torch, the engine's modules, the model's modules (native: diffedit.engine.native with safetensors and
tokenizers; transformers: ``import transformers`` and its DiffusionGemma modeling module), loading the
tokenizer and the weights (``Engine.load``), the engine's own time, and the exit (as the CLI ends:
``diffedit.startup.exit_now``, after the exit handlers, without the interpreter's teardown). Prints
medians, the CPU time (user+sys, less noisy than the wall time on a shared machine) and the machine with its
load average.

The child processes run with Python's bytecode caches written and read (``PYTHONDONTWRITEBYTECODE`` is
removed from their environment, and one unmeasured run writes the caches first), as an installed wheel runs.

    python benchmarks/cli_startup.py            # median of 5
    python benchmarks/cli_startup.py --n 7
    python benchmarks/cli_startup.py --importtime   # also: where transformers' modeling import goes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOC = (
    "# Notes\n\nThe river runs past the old mill and under the stone bridge before it reaches the town.\n\n"
    "- first item\n- second item\n"
)
IMPLS = ("native", "transformers")

# One fresh process that times each stage as ``diffedit rewrite`` runs it, and prints them as JSON.
STAGES = """
import json, os, sys, time
impl = sys.argv[2]
t0 = time.perf_counter()
started = time.time()
import diffedit.cli
from diffedit.startup import load_phase
t1 = time.perf_counter()
with load_phase():
    import torch
    t2 = time.perf_counter()
    from diffedit.engine.engine import Engine
    t3 = time.perf_counter()
    if impl == "native":
        import diffedit.engine.native.load, diffedit.engine.native.modeling, diffedit.engine.native.tokenizer
        import safetensors.torch, tokenizers
    else:
        import transformers
        from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion
    t4 = time.perf_counter()
    engine = Engine.load(None, impl=impl)
    t5 = time.perf_counter()
from diffedit.engine.types import GenerationSettings
from diffedit.rewrites import build_job
text = sys.argv[1]
job = build_job(text, text.index("The river"), text.index("town.") + 5, GenerationSettings(steps=8, seed=1))
engine.rewrite(job)
t6 = time.perf_counter()
cpu = sum(os.times()[:2])
print(json.dumps({"started": started, "ended": time.time(), "cpu_s": cpu,
                  "cli_s": t1 - t0, "torch_s": t2 - t1, "engine_modules_s": t3 - t2,
                  "model_modules_s": t4 - t3, "load_s": t5 - t4, "engine_s": t6 - t5,
                  "transformers": "transformers" in sys.modules}))
sys.stdout.flush()
from diffedit.startup import exit_now
exit_now(0)  # as the CLI ends (both paths: no compiled step here)
"""

STAGE_LABELS = [
    ("boot_s", "interpreter start"),
    ("cli_s", "import diffedit.cli"),
    ("torch_s", "import torch"),
    ("engine_modules_s", "diffedit's engine modules"),
    ("model_modules_s", "the model's modules"),
    ("load_s", "Engine.load (tokenizer, weights)"),
    ("engine_s", "engine rewrite (8 steps)"),
    ("exit_s", "exit"),
]

# Subtrees of ``import transformers.models.diffusion_gemma.modeling_diffusion_gemma`` (``-X importtime``).
SUBTREES = (
    "torch",
    "transformers",
    "torch.distributed.tensor",
    "torch._dynamo",
    "sympy",
    "transformers.models.gemma4",
    "transformers.modeling_utils",
)
MODELING = "transformers.models.diffusion_gemma.modeling_diffusion_gemma"


def child_env() -> dict[str, str]:
    """This environment with bytecode caches on, as an installed wheel runs."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user+sys of the child) and stdout of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=child_env())
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return took, cpu, proc.stdout


def _stages(impl: str) -> dict[str, float]:
    launched = time.time()
    _, _, out = _run([sys.executable, "-c", STAGES, DOC, impl])
    gone = time.time()
    stage = json.loads(out)
    stage["boot_s"] = stage.pop("started") - launched  # the interpreter's own start, before any import
    stage["exit_s"] = gone - stage.pop("ended")  # interpreter teardown after the last line
    return stage


def _import_subtrees() -> dict[str, float]:
    """Cumulative ``-X importtime`` seconds of SUBTREES when the modeling module is imported (inflated by
    the tracing, so read them as shares)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {MODELING}"],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
    )
    found: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        if name.strip() in SUBTREES or name.strip() == MODELING:
            found[name.strip()] = int(cumulative) / 1e6
    return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--importtime", action="store_true", help="also break down transformers' modeling import")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    walls: dict[str, list[float]] = {i: [] for i in IMPLS}
    cpus: dict[str, list[float]] = {i: [] for i in IMPLS}
    engine_s: dict[str, list[float]] = {i: [] for i in IMPLS}
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "notes.md"
        doc.write_text(DOC, encoding="utf-8")
        command = [sys.executable, "-m", "diffedit", "rewrite", str(doc), "--block", "2"]
        command += ["--seed", "1", "--steps", "8", "--json"]
        texts = {}
        for impl in IMPLS:  # unmeasured: writes the bytecode caches of both paths
            texts[impl] = json.loads(_run([*command, "--impl", impl])[2])["text"]
        if texts["native"] != texts["transformers"]:
            raise SystemExit("the two implementations wrote different text: parity is broken")
        for _ in range(args.n):
            for impl in IMPLS:
                wall, cpu, out = _run([*command, "--impl", impl])
                report = json.loads(out)
                assert report["implementation"] == impl
                walls[impl].append(wall)
                cpus[impl].append(cpu)
                engine_s[impl].append(float(report["total_s"]))
        stages: dict[str, list[dict[str, float]]] = {i: [] for i in IMPLS}
        for _ in range(args.n):
            for impl in IMPLS:
                stages[impl].append(_stages(impl))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; bytecode caches written and read"
    )
    print(f"whole process `diffedit rewrite --json --impl X`, {args.n} interleaved runs each:")
    print(f"  {'':<14}{'wall median':>12}{'wall min':>10}{'CPU median':>12}{'CPU min':>10}{'engine':>9}")
    for impl in IMPLS:
        print(
            f"  {impl:<14}{statistics.median(walls[impl]):>11.2f}s{min(walls[impl]):>9.2f}s"
            f"{statistics.median(cpus[impl]):>11.2f}s{min(cpus[impl]):>9.2f}s"
            f"{statistics.median(engine_s[impl]):>8.2f}s"
        )
    ratio = statistics.median(walls["transformers"]) / statistics.median(walls["native"])
    cpu_ratio = statistics.median(cpus["transformers"]) / statistics.median(cpus["native"])
    print(f"  transformers / native: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU")
    print("stages, in separate fresh processes, in the CLI's order (medians):")
    print(f"  {'':<36}{'native':>9}{'transformers':>14}")
    median = {i: {k: statistics.median(s[k] for s in stages[i]) for k, _ in STAGE_LABELS} for i in IMPLS}
    for key, label in STAGE_LABELS:
        print(f"  {label:<36}{median['native'][key]:>8.2f}s{median['transformers'][key]:>13.2f}s")
    sums = {i: sum(median[i].values()) for i in IMPLS}
    cpu = {i: statistics.median(s["cpu_s"] for s in stages[i]) for i in IMPLS}
    print(f"  {'sum':<36}{sums['native']:>8.2f}s{sums['transformers']:>13.2f}s")
    print(f"  {'CPU user+sys':<36}{cpu['native']:>8.2f}s{cpu['transformers']:>13.2f}s")
    imported = {i: any(s["transformers"] for s in stages[i]) for i in IMPLS}
    print(f"  transformers imported: native {imported['native']}, transformers {imported['transformers']}")
    if args.importtime:
        print("importing transformers' modeling module (-X importtime, cumulative; the tracing inflates it):")
        for name, seconds in sorted(_import_subtrees().items(), key=lambda kv: -kv[1]):
            print(f"  {name:<62}{seconds:.2f} s")


if __name__ == "__main__":
    main()
