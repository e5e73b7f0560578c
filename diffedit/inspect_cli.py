"""``diffedit inspect FILE --block N [--to M]``: how likely the model finds each token of existing text.

One read-only pass of the denoiser (``Engine.inspect``; with ``--server URL``, on a ``diffedit serve``):
the blocks' text as the canvas, the document around it as the context a rewrite would have. Prints each
token with its probability, or with ``--json``
``{"tokens": [{"text", "start", "end", "p", "entropy", "top"}]}``, spans in the file's characters that tile
the blocks' text exactly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffedit.engine.types import EditRequest, TokenReading

if TYPE_CHECKING:
    from diffedit.engine.engine import Engine
    from diffedit.engine.remote import RemoteEngine


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("inspect", help="the model's probability of each token of blocks N..M (read only)")
    p.add_argument("file")
    p.add_argument("--block", type=int, required=True, help="first block to read (from 1; see `blocks`)")
    p.add_argument("--to", type=int, help="last block to read (default: the same block)")
    p.add_argument("--top", type=int, default=5, help="alternatives listed per token (default 5)")
    p.add_argument("--model", help="DiffusionGemma checkpoint folder (default: the bundled demo model)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    p.add_argument(
        "--quantize",
        choices=["none", "int8", "int4"],
        default="none",
        help="int8/int4 weights, quantised while loading (as for rewrite; see docs/models.md)",
    )
    p.add_argument(
        "--server",
        metavar="URL",
        help="read on a `diffedit serve` at URL (the blocks and the text around them are sent there)",
    )
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        default="DIFFEDIT_API_KEY",
        help="environment variable holding the server's API key (default DIFFEDIT_API_KEY)",
    )
    p.add_argument("--json", action="store_true", help="print the readings as JSON")
    p.set_defaults(func=cmd_inspect, trust_remote_code=False)


def cmd_inspect(args: argparse.Namespace) -> int:
    from diffedit.cli import UsageError, read_markdown, select_blocks
    from diffedit.document.blocks import parse_blocks

    path = Path(args.file)
    text = read_markdown(path).text
    first, last = select_blocks(parse_blocks(text), args.block, args.to, path)
    if not 1 <= args.top <= 100:
        raise UsageError(f"--top must be from 1 to 100, got {args.top}")

    engine = connect_server(args) if args.server else load_engine(args)
    readings = engine.inspect(EditRequest.from_document(text, first.start, last.end), top_k=args.top)
    target = text[first.start : last.end]
    if args.json:
        tokens = [r.as_json(target, first.start) for r in readings]
        print(json.dumps({"model": engine.name, "tokens": tokens}, ensure_ascii=False))
    else:
        for r in readings:
            print(line(target, r))
    return 0


def load_engine(args: argparse.Namespace) -> Engine:
    from diffedit.engine.catalog import DEMO_NOTICE, is_demo_model, resolve_model
    from diffedit.startup import load_phase

    model = resolve_model(args.model)
    if is_demo_model(model):
        print(f"diffedit: note: {DEMO_NOTICE}", file=sys.stderr)
    with load_phase():  # the imports and the load without the cyclic GC (startup.py)
        from diffedit.engine.engine import Engine

        return Engine.load(model, device=args.device, quantize=args.quantize)


def connect_server(args: argparse.Namespace) -> RemoteEngine:
    """``--server URL``: read there (``POST /v1/inspect``); the model options are the server's."""
    from diffedit.cli import connect_server as connect

    engine, _demo = connect(args)
    return engine


def line(target: str, r: TokenReading) -> str:
    """``  0.842  'quick'  (fast 0.08, slow 0.03)``: a token, its probability and the alternatives."""
    others = ", ".join(f"{t!r} {q:.2f}" for t, q in r.top if t != target[r.start : r.end])
    return f"{r.p:7.3f}  {target[r.start : r.end]!r:<20} ({others})"
