"""Load a local DiffusionGemma checkpoint safely: safetensors only, no remote code, no network.

Every failure is a :class:`ModelLoadError` whose message names the folder or file, what was found,
and what to do.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffedit.engine.checkpoint_check import (
    check_device,
    check_json_files,
    check_loading_info,
    read_json,
    refuse_special_files,
)
from diffedit.engine.context import ContextFormat, format_for_checkpoint
from diffedit.engine.load_progress import WeightsProgress, weights_progress
from diffedit.engine.types import ModelLoadError
from diffedit.fileinfo import file_kind
from diffedit.resources import resources_dir

if TYPE_CHECKING:
    from diffedit.engine.catalog import MachineMemory
    from diffedit.engine.fp8 import Fp8Report
    from diffedit.engine.placement import Placement

SUPPORTED_MODEL_TYPES = ("diffusion_gemma",)
DEMO_MODEL_NAME = "diffedit-demo"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")


def default_model_path() -> Path:
    return resources_dir() / "models" / DEMO_MODEL_NAME


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    name: str
    model_type: str
    weight_files: tuple[Path, ...]


def inspect_checkpoint(path: str | Path) -> CheckpointInfo:
    """Check a folder is a loadable DiffusionGemma checkpoint before any weights are read."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelLoadError(
            f"model folder {folder} does not exist; pass --model with a DiffusionGemma folder "
            "(config.json, *.safetensors, tokenizer.json)"
        )
    if not folder.is_dir():
        what = "a file" if folder.is_file() else file_kind(folder.stat().st_mode)
        raise ModelLoadError(
            f"model path {folder} is {what}, not a folder; pass the folder that holds "
            "config.json and the *.safetensors weights"
        )
    refuse_special_files(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
        raise ModelLoadError(
            f"{folder} has no config.json (found: {found}); it is not a transformers checkpoint"
        )
    check_json_files(folder)
    config = read_json(config_path)
    model_type = str(config.get("model_type", "unknown"))
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"{folder} holds a '{model_type}' model; diffedit supports "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} (DiffusionGemma) checkpoints"
        )
    weights = tuple(sorted(folder.glob("*.safetensors")))
    if not weights:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        if pickles:
            raise ModelLoadError(
                f"{folder} has only pickle weights ({', '.join(pickles[:3])}); diffedit loads "
                "safetensors only, because pickle files can run code: convert them to "
                ".safetensors or download the safetensors version"
            )
        raise ModelLoadError(f"{folder} has no *.safetensors weights")
    _check_weight_index(folder, weights)
    for w in weights:
        _check_safetensors_file(w)
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelLoadError(f"{folder} has no tokenizer (tokenizer.json or tokenizer.model)")
    return CheckpointInfo(folder, folder.name, model_type, weights)


def _check_weight_index(folder: Path, weights: tuple[Path, ...]) -> None:
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return
    try:
        shard_names = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{index} is damaged ({exc}); re-download the model") from exc
    missing = sorted(shard_names - {w.name for w in weights})
    if missing:
        raise ModelLoadError(f"{folder} is missing weight files named in its index: {', '.join(missing[:3])}")


def _check_safetensors_file(path: Path) -> None:
    """Read the header and check the file is as long as the header says (catches truncated downloads)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("shorter than a safetensors header")
            header_len = int.from_bytes(head, "little")
            if header_len <= 0 or header_len > min(size - 8, 100_000_000):
                raise ValueError("header length out of range")
            header = json.loads(fh.read(header_len))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        expected = 8 + header_len + (max(ends) if ends else 0)
        if size < expected:
            raise ValueError(f"truncated: {size} bytes, header promises {expected}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"weight file {path} is damaged ({exc}); re-download it") from exc


def pick_device(requested: str | None = None) -> str:
    import torch

    if requested:
        return check_device(requested)
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


# Above this many bytes of weights the CPU loads bf16 as stored: fp32 would double the memory.
CPU_FP32_LIMIT_BYTES = 4 * 1024**3


def pick_dtype(device: str, requested: str | None = None, weight_bytes: int = 0) -> Any:
    import torch

    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if requested:
        if requested not in names:
            raise ModelLoadError(f"unknown dtype {requested!r}; use one of bf16, fp16, fp32")
        return names[requested]
    # bf16 where the hardware has it: GPUs, and CPUs with bf16 dot-product instructions, where bf16 matrix
    # products run at about three times fp32's rate (the demo model's one-pass accuracy is the same in both:
    # docs/benchmarks.md). Other CPUs run small models fastest in fp32.
    if device.startswith(("cuda", "mps")) or weight_bytes > CPU_FP32_LIMIT_BYTES:
        return torch.bfloat16
    if device.startswith("cpu") and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


# /proc/cpuinfo flags of the x86 instructions that multiply bf16 natively.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """The CPU has AVX512-BF16 or AMX-BF16 (Linux; elsewhere this answers False and the CPU runs fp32)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not NATIVE_BF16_FLAGS.isdisjoint(line.partition(":")[2].split())
    return False


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    context_format: ContextFormat
    info: CheckpointInfo
    device: str
    dtype: Any
    fp8: Fp8Report | None = None  # set where the MoE experts were quantised to FP8 while loading
    quantization: str = "none"  # "int8"/"int4": the large weights quantised while loading (quant.py)
    weight_bytes: int = 0  # the weights as held on the device (quantised ones at their quantised size)
    placement: Placement | None = None  # set where the layers were split between the GPU and RAM
    implementation: str = "transformers"  # or "native" (diffedit.engine.native: no transformers import)


def load_model(
    path: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    fp8: bool = False,
    on_weights: WeightsProgress | None = None,
    quantize: str = "none",
    machine: MachineMemory | None = None,
    impl: str = "transformers",
    offload: str = "auto",
    placement: Placement | None = None,
) -> LoadedModel:
    """Load tokenizer and weights through transformers' native DiffusionGemma classes.

    ``impl="auto"`` loads diffedit's own torch-only implementation instead where it applies
    (:mod:`diffedit.engine.native`: bitwise the same logits, without importing transformers); ``"native"``
    insists on it and says why it does not apply.

    ``trust_remote_code`` is passed on only when the user opted in for this model; the native classes
    never need it. With ``fp8`` the MoE experts are quantised to FP8 one tensor at a time as they move to
    the device, so the device never holds the bf16 experts (a model that fits in FP8 loads in FP8).
    ``on_weights(done, total)`` hears how many of the checkpoint's tensors have loaded.

    With ``quantize`` ``"int8"``/``"int4"`` the large weights are quantised while they are read, one tensor
    at a time (``quant_load.py``), so memory peaks at about the quantised model plus one tensor.

    Before any weight is read, the memory the choice needs is estimated and compared with ``machine``
    (default: this machine now); a model that cannot fit is refused with the estimate and the choice that
    would fit, instead of running out of memory halfway. With ``offload`` ``"auto"`` a choice that does
    not fit the GPU but fits the GPU and RAM together is loaded split between them (placement.py); a
    ``placement`` given here is used as it is (tests split a model between the CPU and disk).
    """
    info = inspect_checkpoint(path if path is not None else default_model_path())
    if quantize not in QUANT_CHOICES:
        raise ModelLoadError(f"unknown quantisation {quantize!r}; use one of {', '.join(QUANT_CHOICES)}")
    if fp8 and quantize != "none":
        raise ModelLoadError(
            f"--fp8 and --quantize {quantize} are two ways of shrinking the experts: pick one"
        )
    if offload not in ("auto", "none"):
        raise ModelLoadError(f"unknown --offload {offload!r}; use auto or none")
    if (
        impl != "transformers"
        and quantize == "none"
        and not fp8
        and not trust_remote_code
        and placement is None
    ):
        from diffedit.engine.native import try_native

        native = try_native(info, device, dtype, impl, on_weights, machine)
        if native is not None:
            return native
    elif impl == "native":
        raise ModelLoadError("--impl native loads unquantised weights without --fp8 or --trust-remote-code")
    # Local files only: loading never touches the network, even if a name looks like a hub id.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    dev = pick_device(device)
    torch_dtype = pick_dtype(dev, dtype, sum(w.stat().st_size for w in info.weight_files))
    if placement is None and torch.device(dev).type != "meta":
        placement = check_fits(info, quantize, dev, torch_dtype.itemsize, machine, offload)
    if placement is not None and fp8:
        raise ModelLoadError(
            f"--fp8 needs the whole model on the GPU, and it does not fit ({placement.describe()}); "
            "use --quantize int8 or int4 instead, which also work split between the GPU and RAM"
        )
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # callers show their own progress (status bar, CLI)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            info.path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except Exception as exc:
        raise ModelLoadError(
            f"the tokenizer in {info.path} does not load ({str(exc).splitlines()[0][:300]}); "
            "re-download the model"
        ) from exc
    if placement is not None:
        return _load_split(
            info, tokenizer, dev, torch_dtype, quantize, placement, on_weights, trust_remote_code
        )
    if quantize != "none":
        return _load_quantized(info, tokenizer, dev, torch_dtype, quantize, on_weights)
    try:
        # Mismatched shapes come back in the loading info (instead of "look at the above report!" with the
        # report hidden), so that check_loading_info can name the tensor.
        model, loading_info = from_checkpoint(info, torch_dtype, trust_remote_code, on_weights)
    except Exception as exc:
        raise ModelLoadError(
            f"the weights in {info.path} do not load: {str(exc).splitlines()[0][:300]}"
        ) from exc
    check_loading_info(info.path, loading_info, info.weight_files)
    report: Fp8Report | None = None
    try:
        cuda = torch.device(dev).type == "cuda"
        if fp8:
            from diffedit.engine.fp8 import quantize_experts

            if cuda:
                torch.cuda.reset_peak_memory_stats(dev)  # the peak reported is this load's
            try:
                report = quantize_experts(model, device=dev)  # the experts first, already in FP8
            except ValueError as exc:  # raised before anything moved: the model has no MoE experts
                raise ModelLoadError(f"--fp8: {exc}") from exc
        model.to(dev)
    except (RuntimeError, torch.OutOfMemoryError) as exc:
        raise ModelLoadError(
            f"the model does not fit on {dev}: {str(exc).splitlines()[0][:200]}; "
            "try --device cpu or a smaller model"
        ) from exc
    if report is not None and cuda:
        report.peak_device_bytes = int(torch.cuda.max_memory_allocated(dev))
    model.eval()
    try:
        fmt = format_for_checkpoint(info.path, tokenizer)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    from diffedit.engine.quant import weight_bytes

    return LoadedModel(model, tokenizer, fmt, info, dev, torch_dtype, report, "none", weight_bytes(model))


QUANT_CHOICES = ("none", "int8", "int4")


def _load_quantized(
    info: CheckpointInfo,
    tokenizer: Any,
    dev: str,
    torch_dtype: Any,
    mode: Any,
    on_weights: WeightsProgress | None = None,
) -> LoadedModel:
    import torch

    from diffedit.engine.quant import weight_bytes
    from diffedit.engine.quant_load import build_quantized

    try:
        model = build_quantized(
            info.path, info.weight_files, dev, torch_dtype, mode, on_weights
        )  # bytes read
    except (RuntimeError, torch.OutOfMemoryError) as exc:
        raise ModelLoadError(
            f"the model does not fit on {dev} in {mode}: {str(exc).splitlines()[0][:200]}; "
            "try --quantize int4, --device cpu or a smaller model"
        ) from exc
    try:
        fmt = format_for_checkpoint(info.path, tokenizer)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    return LoadedModel(model, tokenizer, fmt, info, dev, torch_dtype, None, mode, weight_bytes(model))


def _load_split(
    info: CheckpointInfo,
    tokenizer: Any,
    dev: str,
    torch_dtype: Any,
    mode: str,
    placement: Placement,
    on_weights: WeightsProgress | None,
    trust_remote_code: bool,
) -> LoadedModel:
    from diffedit.engine.placement import load_placed
    from diffedit.engine.quant import weight_bytes

    model = load_placed(info, torch_dtype, mode, placement, on_weights, trust_remote_code)
    try:
        fmt = format_for_checkpoint(info.path, tokenizer)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    # weight_bytes of a split model counts what is on the devices now; the placement's count is the whole
    held = placement.parts.total or weight_bytes(model)
    return LoadedModel(model, tokenizer, fmt, info, dev, torch_dtype, None, mode, held, placement)


def memory_needed(info: CheckpointInfo, quantize: str, dtype_bytes: int) -> tuple[int, int]:
    """(weights, runtime) bytes an estimate gives for loading ``info`` this way (no weight read)."""
    from diffedit.engine.catalog import runtime_overhead
    from diffedit.engine.quant_load import quantised_size

    config = read_json(info.path / "config.json")
    text = config.get("text_config") or {}
    runtime = runtime_overhead(int(config.get("canvas_length", 256)), int(text.get("vocab_size", 262_144)))
    return quantised_size(info.weight_files, quantize, dtype_bytes), runtime  # type: ignore[arg-type]


def from_checkpoint(
    info: CheckpointInfo,
    dtype: Any,
    trust_remote_code: bool,
    on_weights: WeightsProgress | None,
    **placement: Any,
) -> tuple[Any, Any]:
    """transformers' ``from_pretrained`` the one way diffedit calls it (safetensors, local files only, the
    loading info returned so mismatched shapes can be named); ``placement``: ``device_map`` and
    ``offload_folder`` for a split model. Returns (model, loading info)."""
    from transformers import DiffusionGemmaForBlockDiffusion

    with weights_progress(on_weights):
        loaded: Any = DiffusionGemmaForBlockDiffusion.from_pretrained(
            info.path,
            dtype=dtype,
            use_safetensors=True,
            local_files_only=True,
            trust_remote_code=trust_remote_code,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
            **placement,
        )
    return loaded[0], loaded[1]


def check_fits(
    info: CheckpointInfo,
    quantize: str,
    device: str,
    dtype_bytes: int,
    machine: MachineMemory | None = None,
    offload: str = "auto",
) -> Placement | None:
    """Refuse, naming the estimate and a choice that fits, a load the device's free memory cannot hold.

    On a CUDA GPU with ``offload`` ``"auto"``, a choice that fits the GPU and RAM together is not refused:
    the answer is how to split it (None: it fits the device whole).
    """
    from diffedit.engine.catalog import machine_memory
    from diffedit.engine.placement import plan_for, split_needs
    from diffedit.units import human_bytes

    on_gpu = device.startswith("cuda")
    machine = machine or machine_memory(probe_gpu=on_gpu)
    room = machine.gpu_free if on_gpu and machine.gpu else machine.ram_available
    where = "free GPU memory" if on_gpu and machine.gpu else "free RAM"
    weights, runtime = memory_needed(info, quantize, dtype_bytes)
    need = weights + runtime
    if need <= room:
        return None
    can_split = on_gpu and machine.gpu is not None  # layers kept in RAM run on the GPU: CUDA only
    if can_split and offload == "auto":
        placement = plan_for(info, quantize, dtype_bytes, machine, device)
        if placement is not None:
            return placement
    # bf16 loading reads the weights into host memory before they move (int8/int4: one tensor at a time)
    options = [m for m in QUANT_CHOICES if sum(memory_needed(info, m, dtype_bytes)) <= room]
    flag = {"none": "--quantize none", "int8": "--quantize int8", "int4": "--quantize int4"}
    split_options = [
        (m, p)
        for m in QUANT_CHOICES
        if can_split and (p := plan_for(info, m, dtype_bytes, machine, device)) is not None
    ]
    if options:
        best = options[0]
        best_need = sum(memory_needed(info, best, dtype_bytes))
        fix = f"loading it with {flag[best]} needs about {human_bytes(best_need)} and fits"
        if split_options and split_options[0][0] == quantize:  # --offload none: its own choice, split
            fix = f"with --offload auto it fits split ({split_options[0][1].describe()}); or {fix}"
    elif split_options:
        mode, plan = next((o for o in split_options if o[0] == quantize), split_options[0])
        how = "with --offload auto" if mode == quantize else f"with {flag[mode]} --offload auto"
        fix = f"{how} it fits split between the GPU and RAM ({plan.describe()})"
    else:
        smallest = sum(memory_needed(info, "int4", dtype_bytes))
        fix = (
            f"even --quantize int4 needs about {human_bytes(smallest)}: close other programs, "
            "or use a machine with more memory"
        )
        if on_gpu and smallest <= machine.ram_available:
            fix = f"--device cpu with --quantize int4 fits in RAM ({human_bytes(machine.ram_available)} free)"
    split = ""
    if can_split and offload == "auto":
        gpu_least, ram_rest = split_needs(info, quantize, dtype_bytes)
        split = (
            f"; split between the GPU and RAM it needs at least {human_bytes(gpu_least)} of GPU memory "
            f"and up to {human_bytes(ram_rest)} of RAM ({human_bytes(machine.ram_available)} free)"
        )
    raise ModelLoadError(
        f"{info.name} does not fit: loading it {'in ' + quantize if quantize != 'none' else 'unquantised'} "
        f"on {device} needs about {human_bytes(need)} (estimate: {human_bytes(weights)} of weights + "
        f"{human_bytes(runtime)} to run), and this machine has {human_bytes(room)} {where}{split}; {fix}"
    )
