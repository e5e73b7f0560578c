"""``diffedit rewrite FILE --block N --alternatives K``: K candidates denoised as one batch, printed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from diffedit.engine.types import MAX_ALTERNATIVES, RewriteJob
from diffedit.rewrites import assemble_blocks, report_json

if TYPE_CHECKING:
    from diffedit.engine.engine import Engine
    from diffedit.engine.remote import RemoteEngine


def check_alternatives(args: argparse.Namespace) -> None:
    from diffedit.cli import UsageError

    if not 1 <= args.alternatives <= MAX_ALTERNATIVES:
        raise UsageError(f"--alternatives must be from 1 to {MAX_ALTERNATIVES}, got {args.alternatives}")
    if args.in_place:
        raise UsageError(
            "--alternatives prints the candidates and writes nothing: pick one and run it again with "
            "its --seed (and --in-place)"
        )


def print_alternatives(
    engine: Engine | RemoteEngine, job: RewriteJob, args: argparse.Namespace, demo_model: bool
) -> int:
    """Run the batch (here, or on the server with ``--server``) and print it: one JSON report (``seed``,
    ``alternatives``) or the candidates in turn."""
    out = engine.alternatives(job, args.alternatives)
    rows = []
    for candidate in out.candidates:
        assembly = assemble_blocks(job, candidate)
        rows.append({"seed": candidate.seed, "steps": candidate.steps} | report_json(job, assembly))
    if args.json:
        report = {
            "seed": out.seed,
            "original": job.request.target,
            "alternatives": [{k: v for k, v in r.items() if k != "original"} for r in rows],
            "batched_forwards": out.forwards,
            "context_encodes": out.encodes,
            "total_s": round(out.total_s, 4),
            "model": engine.name,
            "demo_model": demo_model,
        }
        print(json.dumps(report, ensure_ascii=False))
        return 0
    for i, row in enumerate(rows, 1):
        sys.stdout.write(f"--- alternative {i} (seed {row['seed']}) ---\n{row['replacement']}\n")
    return 0
