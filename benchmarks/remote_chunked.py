"""What honest frames cost over vLLM's protocol: a canvas stepped a few steps per request vs one request.

Starts ``diffedit serve`` (the bundled demo model unless ``--model``) on 127.0.0.1 in a subprocess and
rewrites one paragraph through :class:`diffedit.engine.vllm_client.VllmEngine`, same job and seed each time:

- ``whole``: one request per canvas (``diffusion_max_steps`` = the job's steps), one frame per canvas;
- ``chunk K``: K steps per request, each answer a frame, the next request seeded with it and the settled
  positions pinned (what the client does against vLLM, which streams no steps);
- for reference, ``served frames``: the same protocol with ``diffedit serve``'s step stream (one request).

Prints the median wall time, the requests, the steps and the ratio to ``whole``, with the load average
(other jobs on the machine change the numbers).

    python benchmarks/remote_chunked.py              # demo model, 5 runs per mode
    python benchmarks/remote_chunked.py --n 9 --steps 24
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

from diffedit.document.blocks import parse_blocks
from diffedit.engine.connect import connect_server
from diffedit.engine.types import Frame, GenerationSettings
from diffedit.engine.vllm_client import VllmEngine
from diffedit.rewrites import build_job

DOC = (
    "# Notes\n\nThe editor rewrites a paragraph by denoising a canvas of tokens, step after step, until the "
    "sampler has accepted every position and the text settles.\n\nThe end.\n"
)


def start_server(model: str | None) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "diffedit", "serve", "--port", "0", "--device", "cpu"]
    if model:
        cmd += ["--model", model]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if " on http://" not in line:
        raise SystemExit(f"diffedit serve did not start: {line!r}")
    return process, line.strip().rsplit(" ", 1)[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="checkpoint folder for the server (and the client's tokenizer)")
    ap.add_argument("--n", type=int, default=5, help="runs per mode (after one warm-up run)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    process, url = start_server(args.model)
    try:
        block = parse_blocks(DOC)[1]
        job = build_job(DOC, block.start, block.end, GenerationSettings(steps=args.steps, seed=args.seed))
        load_before = os.getloadavg()
        modes: list[tuple[str, int, bool]] = [("whole", 0, False)]
        modes += [(f"chunk {k}", k, False) for k in (1, 2, 4)]
        modes += [("served frames", 0, True)]
        rows = []
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
            f"load average before {load_before[0]:.2f}"
        )
        print(f"job: one paragraph, seed {args.seed}, steps {args.steps or 'default'}, {args.n} runs/mode")
        head = ("mode", "median s", "x whole", "requests", "steps", "frames", "texts")
        print(f"{head[0]:<14}" + "".join(f"{h:>10}" for h in head[1:]), flush=True)
        for name, chunk, served in modes:
            engine = connect_server(url, "vllm", tokenizer=args.model, chunk_steps=chunk)
            assert isinstance(engine, VllmEngine)
            engine.served_frames = served
            frames: list[Frame] = []
            engine.rewrite(job, on_frame=frames.append)  # warm-up
            times, requests, steps, texts = [], [], [], set()
            for _ in range(args.n):
                frames.clear()
                t0 = time.perf_counter()
                result = engine.rewrite(job, on_frame=frames.append)
                times.append(time.perf_counter() - t0)
                requests.append(engine.last_requests)
                steps.append(result.steps)
                texts.add(result.text)
            t = statistics.median(times)
            rows.append(t)
            r, s = statistics.median(requests), statistics.median(steps)
            cells = (
                f"{t:.2f}",
                f"{t / rows[0]:.2f}",
                f"{r:.0f}",
                f"{s:.0f}",
                f"{len(frames)}",
                f"{len(texts)}",
            )
            print(f"{name:<14}" + "".join(f"{c:>10}" for c in cells), flush=True)
        print(f"load average after {os.getloadavg()[0]:.2f}")
    finally:
        process.terminate()
        process.wait(timeout=60)


if __name__ == "__main__":
    main()
