"""``diffedit models``: list the checkpoints on this machine; ``diffedit models pull REPO``: download one."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from diffedit.engine.catalog import (
    LOAD_MODES,
    CatalogEntry,
    MachineMemory,
    find_checkpoints,
    hf_cache_dir,
    machine_memory,
)
from diffedit.engine.types import Cancelled, CancelToken
from diffedit.units import human_bytes, human_count


def add_parsers(sub: Any) -> None:
    """Register ``models`` (with ``list`` and ``pull``) and ``download`` (``models pull``'s old name)."""
    p = sub.add_parser(
        "models", help="list the checkpoints on this machine; `models pull REPO` downloads one"
    )
    _list_arguments(p)
    msub = p.add_subparsers(dest="models_command", metavar="{list,pull}")
    _list_arguments(msub.add_parser("list", help="list checkpoints (the default)"))
    _pull_arguments(msub.add_parser("pull", help="download a checkpoint into the Hugging Face cache"))
    _pull_arguments(sub.add_parser("download", help="the same as `diffedit models pull`"))


def _list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument(
        "--folder", action="append", default=[], help="also look in this folder for checkpoints (repeatable)"
    )
    p.set_defaults(func=cmd_list)


def _pull_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("repo", help="model id, e.g. google/diffusiongemma-26B-A4B-it")
    p.add_argument("--revision", default="main", help="branch, tag or commit (default: main)")
    p.set_defaults(func=cmd_pull)


def user_model_folders() -> list[str]:
    """The folders the user added in the settings file (``model_folders``), where the settings have them."""
    from diffedit.settings import Settings

    folders = Settings.load().model_folders
    return [str(f) for f in folders] if isinstance(folders, list) else []


def cmd_list(args: argparse.Namespace) -> int:
    machine = machine_memory()
    entries = find_checkpoints([*args.folder, *user_model_folders()], machine)
    if args.json:
        report = {
            "machine": dataclasses.asdict(machine),
            "hf_cache": str(hf_cache_dir()),
            "models": [e.as_json() for e in entries],
        }
        print(json.dumps(report, indent=2))
    else:
        print(format_table(entries, machine))
    return 0


def format_table(entries: list[CatalogEntry], machine: MachineMemory) -> str:
    gpu = f"{machine.gpu}, {human_bytes(machine.gpu_free)} free" if machine.gpu else "no CUDA GPU"
    ram = f"{human_bytes(machine.ram_available)} RAM free of {human_bytes(machine.ram_total)}"
    lines = [f"this machine: {ram}; {gpu}"]
    lines.append("memory needed to run (estimate; ok = fits now, -- = does not):")
    header = ("NAME", "FAMILY", "PARAMS", "SIZE", "DTYPE", "BF16", "INT8", "INT4", "OFFLOADED")
    rows: list[tuple[str, ...]] = [header]
    for e in entries:
        name = f"{e.name} (demo)" if e.demo else e.name
        if not e.usable:
            rows.append((name, e.family or "?", "", human_bytes(e.size_bytes), "", "unusable", "", "", ""))
            continue
        loads = {ld.mode: f"{human_bytes(ld.bytes)} {'ok' if ld.fits else '--'}" for ld in e.loads}
        rows.append(
            (
                name,
                e.family,
                human_count(e.parameters),
                human_bytes(e.size_bytes),
                e.dtype,
                *(loads[m] for m in LOAD_MODES),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for e in entries:
        lines.append(f"  {e.name}: {e.path}" if e.usable else f"  {e.name}: unusable: {e.reason}")
    return "\n".join(lines)


def cmd_pull(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from diffedit.engine.download import pull_model

    cancel = CancelToken()
    bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024, desc=args.repo, file=sys.stderr)

    def progress(done: int, total: int, rate: float) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        with _ctrl_c_cancels(cancel):
            folder = pull_model(args.repo, args.revision, progress=progress, cancel=cancel)
    except Cancelled:
        bar.close()
        print(
            f"diffedit: pull cancelled; the files finished so far stay in {hf_cache_dir()}: "
            f"run `diffedit models pull {args.repo}` again to fetch the rest",
            file=sys.stderr,
        )
        return 130
    finally:
        bar.close()
    use = args.repo if args.revision == "main" else folder
    print(f"pulled {args.repo} into {folder}; use it with --model {use}", file=sys.stderr)
    print(folder)
    return 0


@contextmanager
def _ctrl_c_cancels(cancel: CancelToken) -> Iterator[None]:
    """Ctrl+C sets the token, so the download threads stop at their next chunk instead of running on."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
