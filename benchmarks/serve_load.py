"""A bounded load test of ``diffedit serve``: simulated editors rewriting against one server on 127.0.0.1.

Starts ``diffedit serve`` (the bundled demo model unless ``--model``) in a subprocess, warms it with one
rewrite, then runs ``--editors`` editors in threads for ``--seconds``. Each editor loops, as a person at the
editor would: pick a paragraph of a real document (this project's README and docs), rewrite it shape-true
through ``RemoteEngine`` (the streamed API, every frame received) with a fresh seed, and check the result is
a valid rewrite (the same job id and seed, every block the same Markdown shape, within its length band).
About one rewrite in five (``--stop-share``) is stopped after its first 1-3 frames by closing the stream, as
Stop does. At the deadline every rewrite still running is stopped the same way and counted apart ("cut"),
so the run is bounded.

Reported: rewrites per minute and result tokens per second over the whole run, p50/p99 of the time to the
first frame (queueing included: one engine serves every editor in turn) and of the time to the result,
errors (must be none), rewrites stopped on purpose (counted apart; the server's log says how many it
cancelled), and the load average of the machine before and during the run.

    python benchmarks/serve_load.py                          # 8 editors, 60 s, the demo model
    python benchmarks/serve_load.py --editors 2 --seconds 3 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from diffedit.document.blocks import parse_blocks
from diffedit.engine.remote import RemoteEngine
from diffedit.engine.types import Cancelled, CancelToken, Frame, GenerationSettings, RewriteJob, RewriteResult
from diffedit.rewrites import assemble_blocks, build_job

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Rewrite:
    """One rewrite an editor asked for, and what came of it."""

    editor: int
    document: str
    block: int  # 1-based, as the CLI's --block
    seed: int
    outcome: str = ""  # "done", "stopped" (on purpose), "cut" (at the deadline), "invalid", "error"
    first_frame_s: float | None = None
    result_s: float | None = None
    frames: int = 0
    tokens: int = 0
    engine_s: float | None = None  # the server's own time for the job (RewriteResult.total_s)
    step_ms: float | None = None  # its median denoising step, as the server measured it
    replacement: str = ""
    problem: str = ""


def paragraphs() -> list[tuple[str, str, int]]:
    """(document name, its text, block number) for every paragraph of 8-80 words in the project's docs (a
    typical paragraph: one or two canvases of the demo model)."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in parse_blocks(text):
            words = len(block.text(text).split())
            if block.kind == "paragraph" and 8 <= words <= 80:
                out.append((path.name, text, block.number))
    return out


def check(job: RewriteJob, result: RewriteResult, seed: int) -> str:
    """Why ``result`` is not a valid rewrite of ``job`` ("" when it is)."""
    if result.job_id != job.job_id or result.seed != seed:
        return f"job {result.job_id} seed {result.seed}, asked job {job.job_id} seed {seed}"
    try:
        assembly = assemble_blocks(job, result)
    except Exception as exc:  # a result that does not fit its job's templates
        return f"cannot be assembled: {type(exc).__name__}: {exc}"
    for report in assembly.blocks:
        if not report.same_shape or report.kept_original:
            return f"a {report.kind} lost its shape: {report.reason}"
        if not report.min_tokens <= report.tokens <= report.max_tokens:
            return (
                f"a {report.kind} of {report.tokens} tokens, outside {report.min_tokens}-{report.max_tokens}"
            )
    if not assembly.text.strip():
        return "an empty rewrite"
    return ""


class DeadlineToken(CancelToken):
    """Stop, pressed by the editor or by the end of the run."""

    def __init__(self, ending: threading.Event | None) -> None:
        super().__init__()
        self._ending = ending

    @property
    def cancelled(self) -> bool:
        return super().cancelled or (self._ending is not None and self._ending.is_set())


def rewrite_once(
    engine: RemoteEngine,
    rng: random.Random,
    pool: list[tuple[str, str, int]],
    number: int,
    job_id: int,
    stop_share: float,
    ending: threading.Event | None,
) -> Rewrite:
    """One rewrite of a paragraph picked at random, stopped after 1-3 frames when ``rng`` says so."""
    name, text, index = rng.choice(pool)
    block = parse_blocks(text)[index - 1]
    seed = rng.getrandbits(32)
    job = build_job(text, block.start, block.end, GenerationSettings(seed=seed))
    job = RewriteJob(job.request, job.settings, job_id, job.templates)
    record = Rewrite(number, name, index, seed)
    stop_after = rng.randint(1, 3) if rng.random() < stop_share else None
    cancel = DeadlineToken(ending)
    start = time.monotonic()

    def on_frame(frame: Frame) -> None:
        if record.first_frame_s is None:
            record.first_frame_s = time.monotonic() - start
        record.frames += 1
        if stop_after is not None and record.frames >= stop_after:
            cancel.cancel()  # Stop: the stream is closed

    try:
        result = engine.rewrite(job, on_frame=on_frame, cancel=cancel)
    except Cancelled:
        stopped = stop_after is not None and record.frames >= stop_after
        record.outcome = "stopped" if stopped else "cut"
        record.result_s = time.monotonic() - start  # how long it had run (or waited)
    except Exception as exc:  # every failure is counted and reported, none ends the run
        record.outcome, record.problem = "error", f"{type(exc).__name__}: {exc}"
    else:
        record.result_s = time.monotonic() - start
        record.tokens = len(result.token_ids)
        record.engine_s, record.step_ms = result.total_s, result.step_ms_median
        record.problem = check(job, result, seed)
        record.outcome = "invalid" if record.problem else "done"
        record.replacement = "" if record.problem else assemble_blocks(job, result).text
    return record


def editor(
    number: int,
    url: str,
    pool: list[tuple[str, str, int]],
    stop_share: float,
    ending: threading.Event,
    out: list[Rewrite],
    at_least: int = 0,
) -> None:
    """An editor rewriting paragraph after paragraph until the run ends (``ending``: its last one is cut),
    but not before ``at_least`` of its rewrites ran to an end, valid or not (those are never cut)."""
    rng = random.Random(number)
    try:
        engine = RemoteEngine.connect(url)
    except Exception as exc:
        out.append(Rewrite(number, "", 0, 0, "error", problem=f"connect: {exc}"))
        return
    job_id = number * 1_000_000
    done = 0
    while done < at_least or not ending.is_set():
        job_id += 1
        record = rewrite_once(
            engine, rng, pool, number, job_id, stop_share, ending if done >= at_least else None
        )
        done += record.outcome in ("done", "invalid", "error")
        out.append(record)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)]


@dataclass
class Report:
    editors: int
    seconds: float
    wall_s: float
    machine: dict[str, object]
    load_before: tuple[float, float, float]
    load_during: list[float] = field(default_factory=list)  # 1-minute load average, sampled every 5 s
    rewrites: list[Rewrite] = field(default_factory=list)
    server_cancelled: int = 0  # "cancelled: the client closed the stream" lines in the server's log
    server_idle: bool = False  # after the run: nothing running, nothing waiting

    def summary(self) -> dict[str, object]:
        done = [r for r in self.rewrites if r.outcome == "done"]
        first = [r.first_frame_s for r in self.rewrites if r.first_frame_s is not None]
        result = [r.result_s for r in done if r.result_s is not None]
        tokens = sum(r.tokens for r in done)

        def ms(v: float | None) -> int | None:
            return None if v is None else round(v * 1000)

        return {
            "editors": self.editors,
            "seconds": self.seconds,
            "wall_s": round(self.wall_s, 1),
            "rewrites_done": len(done),
            "rewrites_per_min": round(len(done) / self.wall_s * 60, 1),
            "result_tokens_per_s": round(tokens / self.wall_s, 1),
            "first_frame_ms": {"p50": ms(percentile(first, 50)), "p99": ms(percentile(first, 99))},
            "result_ms": {"p50": ms(percentile(result, 50)), "p99": ms(percentile(result, 99))},
            "engine_s_median": median([r.engine_s for r in done if r.engine_s is not None]),
            "step_ms_median": median([r.step_ms for r in done if r.step_ms is not None]),
            "stopped_on_purpose": sum(r.outcome == "stopped" for r in self.rewrites),
            "cut_at_the_deadline": sum(r.outcome == "cut" for r in self.rewrites),
            "cut_before_a_frame": sum(r.outcome == "cut" and r.first_frame_s is None for r in self.rewrites),
            "longest_wait_cut_s": max(
                (
                    round(r.result_s or 0, 1)
                    for r in self.rewrites
                    if r.outcome == "cut" and r.first_frame_s is None
                ),
                default=None,
            ),
            "server_cancelled": self.server_cancelled,
            "server_idle_after": self.server_idle,
            "invalid": [asdict(r) for r in self.rewrites if r.outcome == "invalid"],
            "errors": [asdict(r) for r in self.rewrites if r.outcome == "error"],
            "load_before": self.load_before,
            "load_during": {
                "mean": round(statistics.fmean(self.load_during), 2) if self.load_during else None,
                "max": max(self.load_during, default=None),
            },
            "machine": self.machine,
        }


def start_server(log: Path, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "diffedit", "serve", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=log.open("w", encoding="utf-8"),
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if " on http://" not in line:
        process.kill()
        raise SystemExit(f"diffedit serve did not start:\n{log.read_text(encoding='utf-8')}")
    return process, line.strip().rsplit(" ", 1)[1]


def run(editors: int, seconds: float, stop_share: float, server_args: list[str], at_least: int = 0) -> Report:
    pool = paragraphs()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        process, url = start_server(log, server_args)
        try:
            warm = RemoteEngine.connect(url)
            _, text, index = pool[0]
            block = parse_blocks(text)[index - 1]
            warm.rewrite(build_job(text, block.start, block.end, GenerationSettings(seed=0)))
            report = Report(editors, seconds, 0.0, machine(warm), os.getloadavg())
            deadline = time.monotonic() + seconds
            ending = threading.Event()
            start = time.monotonic()
            threads = [
                threading.Thread(
                    target=editor,
                    args=(n, url, pool, stop_share, ending, report.rewrites, at_least),
                    daemon=True,
                )
                for n in range(editors)
            ]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(5.0 / editors)
                if time.monotonic() >= deadline:
                    ending.set()  # every rewrite still running is stopped
                if time.monotonic() - start >= 5 * (len(report.load_during) + 1):
                    report.load_during.append(os.getloadavg()[0])
            report.wall_s = time.monotonic() - start
            report.server_idle = wait_idle(url)
        finally:
            process.terminate()
            process.wait(timeout=60)
        report.server_cancelled = log.read_text(encoding="utf-8").count(
            "cancelled: the client closed the stream"
        )
    return report


def wait_idle(url: str, limit_s: float = 60.0) -> bool:
    """Whether the server's queue drained (nothing running or waiting) within ``limit_s`` after the run: a
    stopped job ends at its next step."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        with urllib.request.urlopen(url + "/health", timeout=30) as answer:
            jobs = json.loads(answer.read())["jobs"]
        if jobs["running"] == 0 and jobs["waiting"] == 0:
            return True
        time.sleep(0.1)
    return False


def machine(engine: RemoteEngine) -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "model": engine.name,
        "canvas": engine.loaded.canvas_length,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--editors", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--stop-share", type=float, default=0.2, help="share of rewrites stopped mid-run")
    ap.add_argument("--model", help="checkpoint folder for the server (default: the bundled demo model)")
    ap.add_argument("--device", default="cpu", help="the server's device (default cpu)")
    ap.add_argument(
        "--at-least", type=int, default=0, help="rewrites each editor finishes before it may stop"
    )
    ap.add_argument("--json", action="store_true", help="one JSON object: the summary and every rewrite")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    server_args = ["--device", args.device, *(["--model", args.model] if args.model else [])]
    report = run(args.editors, args.seconds, args.stop_share, server_args, args.at_least)
    summary = report.summary()
    if args.json:
        print(json.dumps(summary | {"rewrites": [asdict(r) for r in report.rewrites]}, ensure_ascii=False))
    else:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("invalid", "errors")}, indent=1))
        for problem in [*summary["invalid"], *summary["errors"]]:  # type: ignore[misc]
            print("PROBLEM", json.dumps(problem, ensure_ascii=False))
    bad = summary["invalid"] or summary["errors"] or not summary["server_idle_after"]
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
