"""``diffedit rewrite`` and ``diffedit blocks``: the engine from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from diffedit.document.blocks import Block, first_words, parse_blocks
from diffedit.document.drafts import (
    Section,
    default_sections,
    insert_block,
    parse_section_list,
    place_block,
    sections,
)
from diffedit.document.keeps import KeepProblem, find_phrases
from diffedit.document.storage import (
    EncodingProblem,
    FileChangedOnDisk,
    LoadedDocument,
    StorageError,
    read_document,
    save_caveats,
    write_document,
)
from diffedit.engine.context import follows_instructions
from diffedit.engine.types import Cancelled, EngineError, Frame, GenerationSettings
from diffedit.inspect_cli import add_parsers as add_inspect_parsers
from diffedit.models_cli import add_parsers as add_models_parsers
from diffedit.rewrites import (
    DRAFT_LENGTHS,
    assemble_blocks,
    assemble_draft,
    build_draft_job,
    build_job,
    report_json,
)
from diffedit.serve import add_parser as add_serve_parser
from diffedit.startup import load_phase

if TYPE_CHECKING:
    from diffedit.engine.engine import Engine
    from diffedit.engine.remote import RemoteEngine


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""


def read_markdown(path: Path) -> LoadedDocument:
    """The file through the editor's own storage: same checks, and it remembers encoding and newlines."""
    try:
        return read_document(path)
    except EncodingProblem as exc:
        # Name an encoding only when it is plausible: a wrong one (latin-1 for Shift-JIS) garbles the file.
        how = (
            f"e.g. iconv -f {exc.likely} -t utf-8 {path.name}"
            if exc.likely
            else f"with iconv -f ENCODING -t utf-8 {path.name} once you know its encoding "
            "(the editor's Open previews the likely ones)"
        )
        raise UsageError(f"{path} is not UTF-8 ({exc.problem}); convert it first, {how}") from exc
    except StorageError as exc:
        raise UsageError(f"{path}: {exc.problem}") from exc


def select_blocks(blocks: list[Block], first: int, last: int | None, path: Path) -> tuple[Block, Block]:
    if not blocks:
        raise UsageError(f"{path} has no Markdown blocks to rewrite (it is empty)")
    last = first if last is None else last
    for n in (first, last):
        if not 1 <= n <= len(blocks):
            raise UsageError(
                f"block {n} is out of range: {path} has {len(blocks)} blocks (1..{len(blocks)}); "
                f"see `diffedit blocks {path}`"
            )
    if last < first:
        raise UsageError(f"--to {last} comes before --block {first}")
    return blocks[first - 1], blocks[last - 1]


class TerminalCanvas:
    """Repaints the canvas in a fixed terminal region every step, like llama.cpp's --diffusion-visual.

    Unaccepted positions are dim and struck through (noise), accepted ones plain, this step's changes
    reverse-video. Uses synchronized output so a repaint never tears; leaves the final text on screen.
    Into a pipe or a file it writes no escapes: one plain progress line per step, then the final text.
    """

    DIM, STRIKE, REVERSE, RESET = "\x1b[2m", "\x1b[9m", "\x1b[7m", "\x1b[0m"

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.lines = 0
        self.terminal = out.isatty()

    def paint(self, frame: Frame) -> None:
        if not self.terminal:
            self.out.write(f"canvas {frame.canvas_index + 1} · step {frame.step}/{frame.total_steps}\n")
            self.out.flush()
            return
        parts: list[str] = []
        for piece, ok, changed in zip(frame.pieces, frame.accepted, frame.changed, strict=True):
            if not piece:
                continue
            style = self.REVERSE if changed and frame.step > 1 else (self.DIM + self.STRIKE if not ok else "")
            shown = piece.replace("\n", "⏎\n") if not ok else piece
            parts.append(f"{style}{shown}{self.RESET}" if style else shown)
        header = (
            f"{self.DIM}canvas {frame.canvas_index + 1} · step {frame.step}/{frame.total_steps}{self.RESET}"
        )
        body = header + "\n" + "".join(parts)
        self._repaint(body)

    def finish(self, text: str) -> None:
        if self.terminal:
            self._repaint(text)
        else:
            self.out.write(text)
        self.out.write("\n")
        self.out.flush()

    def _repaint(self, body: str) -> None:
        buf = ["\x1b[?2026h"]  # begin synchronized update
        if self.lines:
            buf.append(f"\x1b[{self.lines}F")  # cursor to the region's first line
        buf.append("\x1b[J")  # clear the region
        buf.append(body)
        buf.append("\x1b[?2026l")
        self.out.write("".join(buf))
        self.out.flush()
        self.lines = body.count("\n")


def what_changed(path: Path, blocks: list[Block], old: str, new: str) -> str:
    """e.g. ``notes.md: rewrote block 3 (paragraph), 412 -> 398 characters``."""
    first, last = blocks[0], blocks[-1]
    if first is last:
        which = f"block {first.number} ({first.kind})"
    else:
        which = f"blocks {first.number}-{last.number} ({', '.join(b.kind for b in blocks)})"
    return f"{path}: rewrote {which}, {len(old)} -> {len(new)} characters"


def cmd_blocks(args: argparse.Namespace) -> int:
    path = Path(args.file)
    text = read_markdown(path).text
    blocks = parse_blocks(text)
    if not blocks:
        print(f"{path} has no Markdown blocks (it is empty)")
    for b in blocks:
        lines = f"{b.first_line}" if b.first_line == b.last_line else f"{b.first_line}-{b.last_line}"
        print(f"{b.number:>4}  {b.kind:<10} lines {lines:<8} {first_words(b.text(text))}")
    return 0


def check_seed_and_steps(args: argparse.Namespace) -> None:
    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be at least 1, got {args.steps}")
    if args.seed is not None and not -(2**63) <= args.seed < 2**64:
        raise UsageError(f"--seed {args.seed} is out of range: use a whole number from 0 to {2**64 - 1}")


def load_engine(args: argparse.Namespace) -> tuple[Engine | RemoteEngine, bool]:
    """The engine the options ask for (a served one with ``--server``), and whether it is the bundled demo
    model (said once, on stderr)."""
    if getattr(args, "server", None):
        return connect_server(args)
    return load_local_engine(args)


def connect_server(args: argparse.Namespace) -> tuple[RemoteEngine, bool]:
    """``--server URL``: the only way anything leaves this machine. The key comes from ``--api-key-env``'s
    variable (default DIFFEDIT_API_KEY), is sent as a Bearer header and written nowhere."""
    import os

    from diffedit.engine.catalog import DEMO_NOTICE

    if (
        args.model
        or args.device
        or getattr(args, "fp8", False)
        or getattr(args, "compile", False)
        or args.quantize != "none"
        or getattr(args, "offload", "auto") != "auto"
    ):
        raise UsageError(
            "--server runs the server's model: --model, --device, --fp8, --compile, --quantize and --offload "
            "are options of `diffedit serve` there"
        )
    engine = connect_to(args, os.environ.get(args.api_key_env) or None)
    if engine.loaded.demo_model:
        print(f"diffedit: note: (on {engine.url}) {DEMO_NOTICE}", file=sys.stderr)
    return engine, engine.loaded.demo_model


def connect_to(args: argparse.Namespace, key: str | None) -> RemoteEngine:
    """The served engine in the protocol ``--protocol`` names (auto: the server's /v1/models decides)."""
    from diffedit.engine.connect import connect_server as connect

    protocol: Any = getattr(args, "protocol", "auto")
    tokenizer = getattr(args, "tokenizer", None)
    if tokenizer and protocol == "diffedit":
        raise UsageError("--tokenizer is for --protocol vllm: diffedit's own protocol tokenizes there")
    chunk = getattr(args, "chunk_steps", None)
    if chunk is not None and chunk < 0:
        raise UsageError(f"--chunk-steps must be 0 or more, got {chunk}")
    return connect(args.server, protocol, key, args.api_key_env, tokenizer, chunk)


def load_local_engine(args: argparse.Namespace) -> tuple[Engine, bool]:
    """The in-process engine the options ask for, and whether it is the bundled demo model."""
    if args.trust_remote_code:
        where = args.model or "the model"
        print(
            f"diffedit: warning: --trust-remote-code lets Python code shipped in {where} run on this "
            "machine with your permissions; use it only for a model you trust",
            file=sys.stderr,
        )
    # The bundled demo is said to be one, once per run; --model also takes a repo id from the hub cache.
    from diffedit.engine.catalog import DEMO_NOTICE, is_demo_model, resolve_model

    model = resolve_model(args.model)
    demo_model = is_demo_model(model)
    if demo_model:
        print(f"diffedit: note: {DEMO_NOTICE}", file=sys.stderr)
    # torch, transformers and the model: most of the process's time, and no cyclic GC needed (startup.py)
    with load_phase():
        from diffedit.engine.engine import Engine

        engine = Engine.load(
            model,
            device=args.device,
            trust_remote_code=args.trust_remote_code,
            fp8=args.fp8,
            compile_step=args.compile,
            quantize=args.quantize,
            impl=implementation(args),
            offload=args.offload,
        )
    if engine.loaded.placement is not None:
        print(
            f"diffedit: note: {engine.name} does not fit the GPU whole, so it runs split: "
            f"{engine.loaded.placement.describe()}",
            file=sys.stderr,
        )
    return engine, demo_model


def implementation(args: argparse.Namespace) -> str:
    """Which DiffusionGemma runs the model: ``auto`` (diffedit's own torch-only one where it applies, else
    transformers'), as ``--impl`` says; reference sampling and ``--compile`` are transformers' own."""
    impl = getattr(args, "impl", None) or "transformers"  # `diffedit serve` keeps transformers
    transformers_only = [
        flag
        for flag, on in (
            ("--sampling reference", getattr(args, "sampling", "fast") == "reference"),
            ("--compile", args.compile),
        )
        if on
    ]
    if transformers_only and impl == "native":
        raise UsageError(f"--impl native does not run with {' or '.join(transformers_only)}; drop one")
    return "transformers" if transformers_only else impl


def write_in_place(path: Path, new_text: str, loaded: LoadedDocument, what: str) -> None:
    """Atomic, in the file's own encoding, BOM and line endings, and only over the version that was read."""
    for caveat in save_caveats(path):
        print(f"diffedit: warning: {caveat}", file=sys.stderr)
    try:
        write_document(path, new_text, like=loaded, expect=loaded)
    except FileChangedOnDisk as exc:
        how = "was deleted" if "deleted" in exc.problem else "changed on disk"
        raise UsageError(
            f"{path} {how} while the {what} ran; nothing was written, so the other change is kept: "
            f"run the {what} again"
        ) from exc
    except StorageError as exc:
        raise UsageError(f"{path}: {exc.problem}; nothing was written, the file is as it was") from exc


def cmd_rewrite(args: argparse.Namespace) -> int:
    path = Path(args.file)
    loaded = read_markdown(path)
    text = loaded.text
    blocks = parse_blocks(text)
    first, last = select_blocks(blocks, args.block, args.to, path)
    if not 0.0 < args.strength <= 1.0:
        raise UsageError(f"--strength must be in (0, 1], got {args.strength}")
    if args.alternatives is not None:
        from diffedit.alternatives_cli import check_alternatives

        check_alternatives(args)
    check_seed_and_steps(args)
    if args.polish is not None and not 0.0 < args.polish < 1.0:
        raise UsageError(f"--polish must be a probability between 0 and 1, got {args.polish}")
    try:  # kept phrases, in order, inside the blocks: refused here, before the model loads
        keeps = find_phrases(text, args.keep, first.start, last.end)
    except KeepProblem as exc:
        raise UsageError(f"--keep: {exc} (blocks {first.number}-{last.number})") from exc
    settings = GenerationSettings(
        steps=args.steps, strength=args.strength, seed=args.seed, sampling=args.sampling
    )
    job = build_job(  # before the model loads: a kept phrase it cannot hold is refused here
        text,
        first.start,
        last.end,
        settings,
        args.instruction or "",
        free_form=args.free_form,
        keeps=keeps,
        polish=args.polish,
    )
    engine, demo_model = load_engine(args)
    canvas = (
        TerminalCanvas(sys.stderr if args.json or not args.in_place else sys.stdout) if args.visual else None
    )
    instruction_followed = follows_instructions(engine) if args.instruction else None
    if instruction_followed is False:
        print(
            f"diffedit: note: {engine.name} cannot follow an instruction (it fills the block from the text "
            f"around it), so “{args.instruction}” is ignored; use an instruct model with --model",
            file=sys.stderr,
        )
    if args.alternatives is not None:  # candidates side by side: printed, never written
        from diffedit.alternatives_cli import print_alternatives

        return print_alternatives(engine, job, args, demo_model)
    result = engine.rewrite(job, on_frame=canvas.paint if canvas else None)
    assembly = assemble_blocks(job, result)
    if canvas:
        canvas.finish(assembly.text)
    if engine.compile_error is not None:
        print(f"diffedit: warning: --compile: {engine.compile_error}; ran uncompiled", file=sys.stderr)
    for block in assembly.blocks:
        if block.kept_original:  # the constraints should prevent it; never write a block of another shape
            print(f"diffedit: warning: a {block.kind} kept as it was: {block.reason}", file=sys.stderr)
    new_text = text[: first.start] + assembly.text + text[last.end :]
    if args.in_place:
        write_in_place(path, new_text, loaded, "rewrite")
        # One line saying what changed; on stderr under --json, whose stdout is the report alone.
        print(
            what_changed(path, blocks[first.number - 1 : last.number], job.request.target, assembly.text),
            file=sys.stderr if args.json else sys.stdout,
        )
    if args.json:
        report = (
            result.as_json(new_text)
            | report_json(job, assembly)
            | {
                "demo_model": demo_model,
                "quantization": engine.loaded.quantization,
                "implementation": getattr(engine.loaded, "implementation", "transformers"),
                "weight_bytes": engine.loaded.weight_bytes,
                "placement": placement_report(engine),
                "instruction": args.instruction or "",
                "instruction_followed": instruction_followed,
            }
        )
        print(json.dumps(report, ensure_ascii=False))
    elif not args.in_place:
        sys.stdout.write(new_text.replace("\n", loaded.newline))
    return 0


def placement_report(engine: Engine | RemoteEngine) -> dict[str, object] | None:
    """The ``--json`` report's ``placement``: layers and bytes per device where the model is split."""
    placement = getattr(getattr(engine, "loaded", None), "placement", None)
    return placement.summary() if placement is not None else None


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """The options ``rewrite`` and ``draft`` share: the model, the sampler, and where the result goes."""
    p.add_argument("--steps", type=int, help="maximum denoising steps (default: the model's)")
    p.add_argument("--seed", type=int, help="random seed, for a reproducible result")
    p.add_argument("--model", help="DiffusionGemma checkpoint folder (default: the bundled demo model)")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let code shipped with this model run (off by default; DiffusionGemma never needs it)",
    )
    p.add_argument(
        "--sampling",
        choices=["fast", "reference"],
        default="fast",
        help="reference makes transformers' exact random draws (slower)",
    )
    p.add_argument(
        "--fp8",
        action="store_true",
        help="MoE expert weights in FP8 (about half the memory traffic; fastest on Hopper GPUs; "
        "changes the output slightly, see docs/benchmarks.md)",
    )
    p.add_argument(
        "--quantize",
        choices=["none", "int8", "int4"],
        default="none",
        help="int8/int4 weights for the experts and large linear layers, quantised while loading: about "
        "1/2 or 1/4 of bf16's memory (see docs/models.md)",
    )
    p.add_argument(
        "--offload",
        choices=["auto", "none"],
        default="auto",
        help="auto: where the weights do not fit the GPU but fit the GPU and RAM together, keep some layers "
        "in RAM and copy them in for each step (accelerate; slower: docs/models.md); none: refuse instead",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="run the decoder layers as compiled fused kernels (torch.compile; a first-run compilation "
        "of seconds to a minute, then faster steps on GPUs; see docs/benchmarks.md)",
    )
    p.add_argument(
        "--alternatives",
        type=int,
        metavar="K",
        help="K candidates denoised as one batch, printed side by side (with --json: each with its seed)",
    )
    p.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="PHRASE",
        help="words of the blocks to keep verbatim, in order (repeatable); the rest re-forms around them",
    )
    p.add_argument(
        "--polish",
        type=float,
        metavar="P",
        help="rewrite only the tokens the model finds less likely than P (0-1); the rest stays byte for byte",
    )
    p.add_argument(
        "--server",
        metavar="URL",
        help="rewrite on a `diffedit serve` at URL (the document context is sent there; nothing is sent "
        "anywhere without this option)",
    )
    p.add_argument(
        "--api-key-env",
        metavar="VAR",
        default="DIFFEDIT_API_KEY",
        help="environment variable holding the server's API key, sent as a Bearer header "
        "(default DIFFEDIT_API_KEY)",
    )
    p.add_argument(
        "--impl",
        choices=["auto", "native", "transformers"],
        default="auto",
        help="the model's implementation: auto (default) runs diffedit's own torch-only DiffusionGemma "
        "where it applies (an unquantised infill checkpoint on the CPU: the same results, a faster start), "
        "else transformers'",
    )
    p.add_argument(
        "--protocol",
        choices=["auto", "diffedit", "vllm"],
        default="auto",
        help="how to talk to --server: diffedit's own (`diffedit serve`), vLLM's completions with its "
        "diffusion fields, or auto (the server's /v1/models decides; default)",
    )
    p.add_argument(
        "--tokenizer",
        metavar="DIR",
        help="--protocol vllm: the served model's folder here (tokenizer and config; weights not needed), "
        "to build the prompt and canvases (default: the bundled demo model's)",
    )
    p.add_argument(
        "--chunk-steps",
        type=int,
        metavar="K",
        help="--protocol vllm with --visual: denoising steps per request, each frame a real canvas "
        "(default 4; 0: one request per canvas, progress only)",
    )
    p.add_argument("--visual", action="store_true", help="animate the canvas in the terminal as it denoises")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of the document")
    p.add_argument("--in-place", action="store_true", help="write the result back to FILE atomically")


def list_sections(found: list[Section]) -> None:
    for sec in found:
        state = (
            "drafted by default" if sec.drafted_by_default else "container" if sec.container else "has text"
        )
        if sec.empty and not sec.container and sec.blocks:
            state += f" ({len(sec.blocks)} note{'s' if len(sec.blocks) > 1 else ''})"
        print(f"{sec.number:>4}  {'#' * sec.level:<6} {sec.title:<40} {state}")


def cmd_draft(args: argparse.Namespace) -> int:
    path = Path(args.file)
    loaded = read_markdown(path)
    text = loaded.text
    found = sections(text)
    if not found:
        raise UsageError(
            f"{path} has no headings: an outline is a document of headings, with notes under each"
        )
    if args.list:
        list_sections(found)
        return 0
    try:
        chosen = parse_section_list(args.sections, len(found)) if args.sections else default_sections(found)
    except ValueError as exc:
        raise UsageError(f"--sections: {exc}") from exc
    if not chosen:
        raise UsageError(
            f"{path} has no empty section to draft; name sections with --sections "
            "(see `diffedit draft --list`)"
        )
    if args.blocks < 1:
        raise UsageError(f"--blocks must be at least 1, got {args.blocks}")
    check_seed_and_steps(args)
    engine, demo_model = load_engine(args)
    out = sys.stderr if args.json or not args.in_place else sys.stdout
    report: list[dict[str, object]] = []
    drafted = 0
    stopped = False
    started = time.perf_counter()
    try:
        for number in chosen:
            section = found[number - 1]
            done: list[dict[str, object]] = []
            report.append({"number": number, "title": section.title, "level": section.level, "blocks": done})
            for i in range(args.blocks):
                placement = place_block(text, number, section.title, i, args.blocks)
                seed = None if args.seed is None else args.seed + drafted
                settings = GenerationSettings(steps=args.steps, seed=seed, sampling=args.sampling)
                job = build_draft_job(placement, settings, args.length)
                canvas = TerminalCanvas(out) if args.visual else None
                if canvas:
                    print(f"{'#' * section.level} {section.title} · block {i + 1} of {args.blocks}", file=out)
                result = engine.rewrite(job, on_frame=canvas.paint if canvas else None)
                assembly = assemble_draft(job, result)
                if canvas:
                    canvas.finish(assembly.text.strip())
                if not assembly.text:  # the constraints should prevent it; never insert something else
                    print(f"diffedit: warning: {section.title}: {assembly.blocks[0].reason}", file=sys.stderr)
                    continue
                paragraph = assembly.text.lstrip("\n")
                text = insert_block(text, placement, paragraph)
                drafted += 1
                block = assembly.blocks[0]
                done.append(
                    {
                        "text": paragraph,
                        "seed": result.seed,
                        "steps": result.steps,
                        "canvases": result.canvases,
                        "tokens": block.tokens,
                        "band": [block.min_tokens, block.max_tokens],
                        "tokens_per_forward": round(result.tokens_per_forward, 3),
                        "total_s": round(result.total_s, 4),
                    }
                )
    except (Cancelled, KeyboardInterrupt):
        stopped = True
        print(
            f"diffedit: stopped; the {drafted} block(s) drafted before are kept, the running one is not",
            file=sys.stderr,
        )
    if engine.compile_error is not None:
        print(f"diffedit: warning: --compile: {engine.compile_error}; ran uncompiled", file=sys.stderr)
    if args.in_place and drafted:
        write_in_place(path, text, loaded, "draft")
        names = ", ".join(str(r["number"]) for r in report if r["blocks"])
        print(
            f"{path}: drafted {drafted} block(s) in section(s) {names}, "
            f"{len(loaded.text)} -> {len(text)} characters",
            file=sys.stderr if args.json else sys.stdout,
        )
    if args.json:
        summary = {
            "text": text,
            "sections": report,
            "drafted_blocks": drafted,
            "stopped": stopped,
            "length": args.length,
            "blocks_per_section": args.blocks,
            "total_s": round(time.perf_counter() - started, 4),
            "model": engine.name,
            "demo_model": demo_model,
        }
        print(json.dumps(summary, ensure_ascii=False))
    elif not args.in_place:
        sys.stdout.write(text.replace("\n", loaded.newline))
    return 130 if stopped else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffedit", description="Rewrite Markdown blocks by diffusion.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_blocks = sub.add_parser("blocks", help="list a file's Markdown blocks with their numbers")
    p_blocks.add_argument("file")
    p_blocks.set_defaults(func=cmd_blocks)

    p = sub.add_parser("rewrite", help="rewrite blocks N..M of a Markdown file")
    p.add_argument("file")
    p.add_argument("--block", type=int, required=True, help="first block to rewrite (from 1; see `blocks`)")
    p.add_argument("--to", type=int, help="last block to rewrite (default: the same block)")
    p.add_argument("--instruction", help="what to do, e.g. 'shorter' (instruct models)")
    p.add_argument(
        "--free-form",
        action="store_true",
        help="let the model restructure the blocks (default: each block keeps its kind and length band)",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="1 writes afresh; lower values refine the original text (default 1)",
    )
    add_engine_options(p)
    p.set_defaults(func=cmd_rewrite)

    p = sub.add_parser(
        "draft",
        help="fill the empty sections of an outline, one block at a time",
        description="Draft the body of an outline's sections in document order, one paragraph at a time; "
        "each reads the document so far and the rest of the outline. Headings and notes stay as they are. "
        "Ctrl+C stops: the blocks drafted so far are kept (written with --in-place), the running one is not.",
    )
    p.add_argument("file")
    p.add_argument(
        "--sections", help="which sections, by number: e.g. 2,4-5 (default: the empty ones; see --list)"
    )
    p.add_argument("--list", action="store_true", help="list the outline's sections with their numbers")
    p.add_argument("--blocks", type=int, default=1, help="paragraphs to draft per section (default 1)")
    p.add_argument(
        "--length",
        choices=list(DRAFT_LENGTHS),
        default="medium",
        help="how long each block is: "
        + ", ".join(f"{k} ~{v} tokens" for k, v in DRAFT_LENGTHS.items())
        + " (a block longer than a canvas is written canvas after canvas; default medium)",
    )
    add_engine_options(p)
    p.set_defaults(func=cmd_draft)

    add_models_parsers(sub)  # `models`, `models pull`, and `download` (its old name)
    add_inspect_parsers(sub)  # `inspect`: the model's probability of each token
    add_serve_parser(sub)  # `serve`: the engine over HTTP, for --server
    return parser


def main(argv: list[str] | None = None) -> int:
    """The CLI; run as a program (``argv`` None: the console script, ``python -m diffedit``), a command that
    loaded a model ends the process at once when it is done (:func:`diffedit.startup.exit_now`)."""
    code = run_command(argv)
    if argv is None:
        from diffedit.startup import exit_now

        exit_now(code)
    return code


def run_command(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"diffedit: {exc}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"diffedit: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("diffedit: cancelled; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
