"""Find checkpoints already on this machine and say what each needs to run here. No network, no weights read.

Three places are looked in: the Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, read when
asked, not at import), folders the user added, and the bundled demo. Parameters and dtypes come from the
safetensors headers alone; the memory each way of loading needs is an estimate from the parameter count
(weight bytes plus :data:`RUNTIME_BASE_BYTES` and the canvas logits), compared with this machine's free
RAM and GPU memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from diffedit.engine.loader import SUPPORTED_MODEL_TYPES, default_model_path, inspect_checkpoint
from diffedit.engine.types import ModelLoadError

Source = Literal["hf-cache", "folder", "demo"]
LoadMode = Literal["bf16", "int8", "int4", "offloaded"]
LOAD_MODES: tuple[LoadMode, ...] = ("bf16", "int8", "int4", "offloaded")
REAL_MODEL_REPO = "google/diffusiongemma-26B-A4B-it"

# Bytes per parameter of the large linear/expert weights in each mode (diffedit/engine/quant.py); everything
# else stays bf16. int8: one float32 scale per row (rows are thousands long: ~0); int4: a bf16 scale and
# minimum per group of 64.
INT8_BYTES_PER_PARAM = 1
INT4_BYTES_PER_PARAM = 0.5 + 4 / 64
BF16_BYTES_PER_PARAM = 2
# Beside the weights: the framework (allocator, CUDA context) plus a few fp32 copies of the canvas logits.
RUNTIME_BASE_BYTES = 512 * 1024**2
LOGIT_COPIES = 3
_SAFETENSORS_DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2, "I16": 2}

DEMO_NOTICE = (
    "this is diffedit's bundled demo model: it shows how rewriting works and writes nonsense. "
    f"For a real model: diffedit models pull {REAL_MODEL_REPO} (see docs/models.md)"
)


def hf_cache_dir() -> Path:
    """The hub cache as huggingface_hub resolves it, but read from the environment now, not at import."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def models_dir() -> Path:
    """Where diffedit's old downloader put models (``DIFFEDIT_MODELS_DIR`` moves it): still looked in."""
    import platformdirs

    override = os.environ.get("DIFFEDIT_MODELS_DIR")
    return Path(override) if override else platformdirs.user_data_path("diffedit") / "models"


def is_demo_model(path: str | Path | None) -> bool:
    """Whether ``path`` (``None``: the default) is the bundled demo model."""
    if path is None or str(path) == "":
        return True
    try:
        return Path(path).expanduser().resolve() == default_model_path().resolve()
    except OSError:
        return False


# --- what is in a checkpoint -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightStats:
    """Totals over a checkpoint's safetensors headers."""

    parameters: int
    quantisable: int  # parameters in large linear and expert weights (what int8/int4 would shrink)
    dtypes: tuple[str, ...]  # by bytes, largest first, e.g. ("bf16",) or ("bf16", "f32")


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of one safetensors file (8-byte little-endian length, then JSON), weights unread."""
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError(f"{path.name} is shorter than a safetensors header")
        length = int.from_bytes(head, "little")
        if not 0 < length <= 100_000_000:
            raise ValueError(f"{path.name} has a header length out of range")
        header = json.loads(fh.read(length))
    if not isinstance(header, dict):
        raise ValueError(f"{path.name} has a malformed header")
    return header


# Kept in full precision: embeddings (and the output head tied to them), norms, the router (small, and its
# choices decide which experts run) and the vision tower (unused by text rewriting).
_KEPT = ("embed", "norm", "lm_head", "router", "vision")


def is_quantisable(name: str, shape: Sequence[int]) -> bool:
    """The large linear and expert weights: matrices and expert stacks (the loader's rule, by tensor name)."""
    lowered = name.lower()
    return len(shape) >= 2 and not any(k in lowered for k in _KEPT)


def weight_stats(files: Iterable[Path]) -> WeightStats:
    params = quantisable = 0
    bytes_by_dtype: dict[str, int] = {}
    for path in files:
        for name, info in read_safetensors_header(path).items():
            if name == "__metadata__":
                continue
            shape = [int(d) for d in info["shape"]]
            count = math.prod(shape)
            params += count
            if is_quantisable(name, shape):
                quantisable += count
            dtype = str(info["dtype"])
            bytes_by_dtype[dtype] = bytes_by_dtype.get(dtype, 0) + count * _SAFETENSORS_DTYPE_BYTES.get(
                dtype, 1
            )
    order = sorted(bytes_by_dtype, key=lambda d: -bytes_by_dtype[d])
    return WeightStats(params, quantisable, tuple(d.lower() for d in order))


# --- this machine ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineMemory:
    ram_total: int
    ram_available: int
    gpu: str | None = None  # e.g. "cuda:0 NVIDIA H200"; None: no CUDA GPU (MPS shares the RAM)
    gpu_total: int = 0
    gpu_free: int = 0


def machine_memory(probe_gpu: bool = True) -> MachineMemory:
    """Free and total RAM (psutil, else /proc/meminfo) and CUDA memory (torch, imported only here)."""
    total, available = _ram()
    if not probe_gpu:
        return MachineMemory(total, available)
    try:
        import torch

        if not torch.cuda.is_available():
            return MachineMemory(total, available)
        free, gpu_total = torch.cuda.mem_get_info(0)
        return MachineMemory(total, available, f"cuda:0 {torch.cuda.get_device_name(0)}", gpu_total, free)
    except (ImportError, RuntimeError):
        return MachineMemory(total, available)


def _ram() -> tuple[int, int]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.total), int(vm.available)
    except ImportError:
        pass
    try:
        fields: dict[str, int] = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) * 1024
        return fields["MemTotal"], fields.get("MemAvailable", fields["MemFree"])
    except (OSError, KeyError, ValueError, IndexError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total


# --- what each way of loading needs -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadEstimate:
    mode: LoadMode
    bytes: int  # weights in this mode plus the runtime overhead
    where: str  # what it has to fit in: "RAM", "GPU", "GPU+RAM"
    fits: bool
    note: str = ""


def runtime_overhead(canvas_length: int, vocab_size: int) -> int:
    return RUNTIME_BASE_BYTES + LOGIT_COPIES * canvas_length * vocab_size * 4


def estimate_loads(
    stats: WeightStats,
    overhead: int,
    machine: MachineMemory,
    can_split: Callable[[], bool] | None = None,
) -> tuple[LoadEstimate, ...]:
    """Memory for bf16, int8, int4 and offloaded loading; int8/int4 shrink only the quantisable weights.

    ``can_split``: whether the loader's own planner (``diffedit.engine.placement``) finds a split of the bf16
    weights between this machine's GPU and RAM; without it, the rough test GPU + RAM >= the weights."""
    rest = stats.parameters - stats.quantisable
    bf16 = stats.parameters * BF16_BYTES_PER_PARAM + overhead
    int8 = math.ceil(rest * BF16_BYTES_PER_PARAM + stats.quantisable * INT8_BYTES_PER_PARAM) + overhead
    int4 = math.ceil(rest * BF16_BYTES_PER_PARAM + stats.quantisable * INT4_BYTES_PER_PARAM) + overhead
    on_gpu = machine.gpu is not None
    room, where = (machine.gpu_free, "GPU") if on_gpu else (machine.ram_available, "RAM")
    sizes: tuple[tuple[LoadMode, int], ...] = (("bf16", bf16), ("int8", int8), ("int4", int4))
    out = [LoadEstimate(m, b, where, b <= room) for m, b in sizes]
    if on_gpu:  # accelerate keeps what fits on the GPU and the rest of the bf16 layers in RAM
        if can_split is not None:  # the resident parts and one layer's room on the GPU, layer by layer
            fits = can_split()
            note = "" if fits else "no split fits: the GPU cannot hold the resident parts and one layer"
            out.append(LoadEstimate("offloaded", bf16, "GPU+RAM", fits, note))
        else:
            out.append(
                LoadEstimate("offloaded", bf16, "GPU+RAM", bf16 <= machine.gpu_free + machine.ram_available)
            )
    else:
        out.append(LoadEstimate("offloaded", bf16, "GPU+RAM", False, "needs a CUDA GPU"))
    return tuple(out)


# --- the catalogue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogEntry:
    name: str  # repo id (with @revision where a repo has several), folder name, or the demo's name
    path: Path
    source: Source
    family: str  # config.json's model_type
    usable: bool
    reason: str = ""  # why not usable; empty when usable
    parameters: int = 0
    size_bytes: int = 0
    dtype: str = ""  # "bf16", or "bf16+f32" for mixed
    demo: bool = False
    loads: tuple[LoadEstimate, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def describe_checkpoint(
    folder: Path, name: str, source: Source, machine: MachineMemory, size_bytes: int | None = None
) -> CatalogEntry:
    """One folder as a catalogue entry; a folder diffedit cannot load is an entry with the reason why."""
    family = _model_type(folder)
    demo = source == "demo"
    size = size_bytes if size_bytes is not None else _folder_size(folder)
    base = CatalogEntry(name, folder, source, family, usable=False, size_bytes=size, demo=demo)
    if family not in SUPPORTED_MODEL_TYPES:
        reason = (
            "no config.json: not a transformers checkpoint"
            if family == ""
            else f"a '{family}' model; diffedit runs {', '.join(SUPPORTED_MODEL_TYPES)} (DiffusionGemma) only"
        )
        return _with_reason(base, reason)
    try:
        info = inspect_checkpoint(folder)
        stats = weight_stats(info.weight_files)
    except ModelLoadError as exc:
        return _with_reason(base, str(exc))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return _with_reason(base, f"a weight file's header is unreadable ({exc}); download it again")
    config = _config(folder)
    text = config.get("text_config") or {}
    overhead = runtime_overhead(int(config.get("canvas_length", 256)), int(text.get("vocab_size", 262_144)))
    return CatalogEntry(
        name,
        folder,
        source,
        family,
        usable=True,
        parameters=stats.parameters,
        size_bytes=size,
        dtype="+".join(stats.dtypes),
        demo=demo,
        loads=estimate_loads(stats, overhead, machine, lambda: _splits(info, machine)),
    )


def _splits(info: Any, machine: MachineMemory) -> bool:
    """Whether the loader would split ``info``'s bf16 weights between this machine's GPU and RAM."""
    from diffedit.engine.placement import plan_for

    try:
        return plan_for(info, "none", BF16_BYTES_PER_PARAM, machine, "cuda") is not None
    except (OSError, ValueError, KeyError, TypeError):
        return False


def scan_hf_cache(machine: MachineMemory, cache_dir: Path | None = None) -> list[CatalogEntry]:
    """Model snapshots in the Hugging Face cache, one entry per cached revision that has a config.json."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir or hf_cache_dir())
    except CacheNotFound:
        return []
    entries = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda r: -r.last_modified)
        for rev in revisions:
            if not (rev.snapshot_path / "config.json").is_file():
                continue
            label = ",".join(sorted(rev.refs)) or rev.commit_hash[:8]
            name = repo.repo_id if len(revisions) == 1 else f"{repo.repo_id}@{label}"
            entries.append(
                describe_checkpoint(rev.snapshot_path, name, "hf-cache", machine, rev.size_on_disk)
            )
    return entries


def scan_folders(folders: Iterable[str | Path], machine: MachineMemory) -> list[CatalogEntry]:
    """Each folder that is a checkpoint (has config.json), and each of its subfolders that is one."""
    entries = []
    seen: set[Path] = set()
    for raw in folders:
        folder = Path(raw).expanduser()
        candidates = [folder] if (folder / "config.json").is_file() else _subfolders(folder)
        for cand in candidates:
            key = cand.resolve()
            if key in seen or not (cand / "config.json").is_file():
                continue
            seen.add(key)
            entries.append(describe_checkpoint(cand, cand.name, "folder", machine))
    return entries


def find_checkpoints(
    extra_folders: Sequence[str | Path] = (),
    machine: MachineMemory | None = None,
    cache_dir: Path | None = None,
) -> list[CatalogEntry]:
    """Every checkpoint diffedit can see: usable ones first (the demo last of those), then the rest."""
    machine = machine or machine_memory()
    demo = describe_checkpoint(default_model_path(), default_model_path().name, "demo", machine)
    found = scan_hf_cache(machine, cache_dir) + scan_folders([*extra_folders, models_dir()], machine)
    found = [e for e in found if not is_demo_model(e.path)]
    return [e for e in found if e.usable] + [demo] + [e for e in found if not e.usable]


def _with_reason(entry: CatalogEntry, reason: str) -> CatalogEntry:
    return CatalogEntry(**{**entry.__dict__, "reason": reason})


def _config(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_type(folder: Path) -> str:
    if not (folder / "config.json").is_file():
        return ""
    return str(_config(folder).get("model_type", "unknown"))


def _folder_size(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except OSError:
        return 0


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def resolve_model(ref: str | None, cache_dir: Path | None = None) -> str | None:
    """A ``--model`` value: a folder as given, or a repo id (``org/name``) already in the hub cache.

    Never touches the network: a repo id that is not in the cache is an error saying how to pull it.
    """
    if not ref or Path(ref).expanduser().exists():
        return ref
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts) or ref.startswith((".", "~")):
        return ref  # a path that does not exist: the loader says so
    cache = cache_dir or hf_cache_dir()
    repo_folder = cache / f"models--{parts[0]}--{parts[1]}"
    try:
        commit = (repo_folder / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        commit = ""
    snapshot = repo_folder / "snapshots" / commit
    if commit and (snapshot / "config.json").is_file():
        return str(snapshot)
    raise ModelLoadError(
        f"{ref} is neither a folder nor a model in the Hugging Face cache ({cache}); "
        f"download it with `diffedit models pull {ref}`, or pass the checkpoint's folder"
    )
