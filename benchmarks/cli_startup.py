"""Wall time of a whole ``diffedit rewrite`` process on the bundled demo model, and where it goes.

At most 8 denoising steps, so that the start-up, not the engine, is what the numbers show.

Runs ``python -m diffedit rewrite DOC --block 2 --json`` as a user would (a fresh process each time), and
separately, in one more fresh process, times the stages: importing torch, importing transformers, loading
the model, and the engine's own time. Prints medians of ``--n`` runs and the machine.

    python benchmarks/cli_startup.py            # median of 5
    python benchmarks/cli_startup.py --n 9
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
import json, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import transformers
t2 = time.perf_counter()
from diffedit.engine.engine import Engine
from diffedit.engine.types import GenerationSettings
from diffedit.rewrites import build_job
t3 = time.perf_counter()
engine = Engine.load(None)
t4 = time.perf_counter()
text = sys.argv[1]
job = build_job(text, text.index("The river"), text.index("town.") + 5, GenerationSettings(steps=8, seed=1))
engine.rewrite(job)
t5 = time.perf_counter()
print(json.dumps({"torch_s": t1 - t0, "transformers_s": t2 - t1, "diffedit_s": t3 - t2,
                  "load_s": t4 - t3, "engine_s": t5 - t4}))
"""


def _run(argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return took, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "notes.md"
        doc.write_text(DOC, encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "diffedit",
            "rewrite",
            str(doc),
            "--block",
            "2",
            "--seed",
            "1",
            "--steps",
            "8",
            "--json",
        ]
        walls, engine_s = [], []
        for _ in range(args.n):
            wall, out = _run(command)
            walls.append(wall)
            engine_s.append(float(json.loads(out)["total_s"]))
        stages = [json.loads(_run([sys.executable, "-c", STAGES, DOC])[1]) for _ in range(args.n)]
    median = {key: statistics.median(s[key] for s in stages) for key in stages[0]}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        f"whole process `diffedit rewrite --json`: median {statistics.median(walls):.2f} s of {args.n} "
        f"(min {min(walls):.2f}, max {max(walls):.2f})"
    )
    print(f"  engine time in that process (report's total_s): median {statistics.median(engine_s):.2f} s")
    print("stages, in a separate fresh process (medians):")
    for key, label in [
        ("torch_s", "import torch"),
        ("transformers_s", "import transformers"),
        ("diffedit_s", "import diffedit engine"),
        ("load_s", "load the model"),
        ("engine_s", "engine rewrite"),
    ]:
        print(f"  {label:<24}{median[key]:.2f} s")
    print(f"  {'sum':<24}{sum(median.values()):.2f} s")


if __name__ == "__main__":
    main()
