"""Wall time of a whole ``diffedit rewrite`` process on the bundled demo model, and where it goes.

At most 8 denoising steps, so that the start-up, not the engine, is what the numbers show.

Runs ``python -m diffedit rewrite DOC --block 2 --json`` as a user would (a fresh process each time), and
separately, in more fresh processes, times the stages in the CLI's order (inside its GC load phase, as the
CLI runs them): importing the CLI, torch, transformers with diffedit's engine modules, transformers'
DiffusionGemma modeling module, loading the tokenizer and the weights, the engine's own time, and the exit.
Prints medians of ``--n`` runs, the CPU time (user+sys, less noisy than the wall time on a shared machine),
where the modeling module's import time goes (``-X importtime``), and the machine.

    python benchmarks/cli_startup.py            # median of 5
    python benchmarks/cli_startup.py --n 9
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

# One fresh process that times each stage as ``diffedit rewrite`` runs it, and prints them as JSON.
STAGES = """
import json, os, sys, time
t0 = time.perf_counter()
started = time.time()
import diffedit.cli
from diffedit.startup import load_phase
t1 = time.perf_counter()
with load_phase():
    import torch
    t2 = time.perf_counter()
    import transformers
    from diffedit.engine.engine import Engine
    t3 = time.perf_counter()
    from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion
    t4 = time.perf_counter()
    from diffedit.engine.loader import default_model_path
    AutoTokenizer.from_pretrained(default_model_path(), local_files_only=True)  # cold: the CLI's first
    t5 = time.perf_counter()
    engine = Engine.load(None)
    t6 = time.perf_counter()
from diffedit.engine.types import GenerationSettings
from diffedit.rewrites import build_job
text = sys.argv[1]
job = build_job(text, text.index("The river"), text.index("town.") + 5, GenerationSettings(steps=8, seed=1))
engine.rewrite(job)
t7 = time.perf_counter()
cpu = sum(os.times()[:2])
print(json.dumps({"started": started, "ended": time.time(), "cpu_s": cpu,
                  "cli_s": t1 - t0, "torch_s": t2 - t1, "transformers_s": t3 - t2, "modeling_s": t4 - t3,
                  "tokenizer_s": t5 - t4, "load_s": t6 - t5, "engine_s": t7 - t6}))
sys.stdout.flush()
"""

# Subtrees of ``import transformers.models.diffusion_gemma.modeling_diffusion_gemma`` (``-X importtime``):
# what the modeling module pulls in, whoever first imports it.
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


def _run(argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user+sys of the child) and stdout of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return took, cpu, proc.stdout


def _stages() -> dict[str, float]:
    launched = time.time()
    _, _, out = _run([sys.executable, "-c", STAGES, DOC])
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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "notes.md"
        doc.write_text(DOC, encoding="utf-8")
        command = [sys.executable, "-m", "diffedit", "rewrite", str(doc), "--block", "2"]
        command += ["--seed", "1", "--steps", "8", "--json"]
        walls, cpus, engine_s = [], [], []
        for _ in range(args.n):
            wall, cpu, out = _run(command)
            walls.append(wall)
            cpus.append(cpu)
            engine_s.append(float(json.loads(out)["total_s"]))
        stages = [_stages() for _ in range(args.n)]
        floor = [_run([sys.executable, "-c", f"import {MODELING}"])[:2] for _ in range(args.n)]
    median = {key: statistics.median(s[key] for s in stages) for key in stages[0]}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"whole process `diffedit rewrite --json`: median {statistics.median(walls):.2f} s of {args.n} "
        f"(min {min(walls):.2f}, max {max(walls):.2f}); CPU user+sys median {statistics.median(cpus):.2f} s"
    )
    print(f"  engine time in that process (report's total_s): median {statistics.median(engine_s):.2f} s")
    floor_wall, floor_cpu = statistics.median(w for w, _ in floor), statistics.median(c for _, c in floor)
    print(
        f"a process that only imports the modeling module: median {floor_wall:.2f} s wall, {floor_cpu:.2f} s "
        "CPU (the floor while transformers' classes build the model)"
    )
    print("stages, in a separate fresh process, in the CLI's order (medians):")
    for key, label in [
        ("boot_s", "interpreter start"),
        ("cli_s", "import diffedit.cli"),
        ("torch_s", "import torch"),
        ("transformers_s", "transformers + engine"),
        ("modeling_s", "DiffusionGemma modeling"),
        ("tokenizer_s", "load the tokenizer"),
        ("load_s", "Engine.load"),
        ("engine_s", "engine rewrite"),
        ("exit_s", "exit"),
    ]:
        print(f"  {label:<26}{median[key]:.2f} s")
    total = sum(v for k, v in median.items() if k != "cpu_s")
    print(f"  {'sum':<26}{total:.2f} s (CPU {median['cpu_s']:.2f} s)")
    print("importing the modeling module (-X importtime, cumulative; shares, the tracing inflates them):")
    for name, seconds in sorted(_import_subtrees().items(), key=lambda kv: -kv[1]):
        print(f"  {name:<62}{seconds:.2f} s")


if __name__ == "__main__":
    main()
