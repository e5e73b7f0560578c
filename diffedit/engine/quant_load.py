"""Build a DiffusionGemma with int8/int4 weights from its safetensors files, one tensor at a time.

The model is built with empty weights (accelerate's ``init_empty_weights``: parameters on the meta device,
buffers real), its encoder/decoder ties made, then each tensor of the checkpoint is read, quantised where it
is a large linear or expert weight, and put in place on the device. Expert stacks are read and quantised
one expert at a time. Host memory therefore peaks at about the quantised model plus one tensor, never the
full-precision model.

Tensors are read with plain ``readinto`` calls at the offsets the safetensors header gives, not through a
memory map: mapped file pages count as the process's resident memory while they stay in the page cache, so
reading a 50 GB checkpoint through ``mmap`` would look (and, under pressure, act) like holding it.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diffedit.engine.catalog import is_quantisable, read_safetensors_header
from diffedit.engine.quant import (
    QuantizedExperts,
    QuantizedLinear,
    QuantizedTensor,
    QuantMode,
    can_quantize,
    empty_like_quantized,
    fill,
    quantize,
)
from diffedit.engine.types import ModelLoadError

_DTYPES = {
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "F32": torch.float32,
    "F64": torch.float64,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class StoredTensor:
    file: Path
    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int  # absolute byte offset of the data in the file
    nbytes: int


def stored_tensors(files: tuple[Path, ...]) -> Iterator[StoredTensor]:
    """Every tensor the safetensors files hold, from their headers alone."""
    for path in files:
        header = read_safetensors_header(path)
        base = 8 + int.from_bytes(path.open("rb").read(8), "little")
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = _DTYPES.get(str(info["dtype"]))
            if dtype is None:
                raise ModelLoadError(
                    f"{path.name}: tensor {name} has dtype {info['dtype']}, which diffedit cannot read"
                )
            start, end = (int(v) for v in info["data_offsets"])
            yield StoredTensor(
                path, name, dtype, tuple(int(d) for d in info["shape"]), base + start, end - start
            )


def read_tensor(t: StoredTensor, index: int | None = None) -> torch.Tensor:
    """The tensor (or its slice ``index`` along the first dimension) read into fresh memory."""
    shape, offset, nbytes = t.shape, t.offset, t.nbytes
    if index is not None:
        nbytes //= shape[0]
        offset += index * nbytes
        shape = shape[1:]
    out = torch.empty(shape, dtype=t.dtype)
    buffer: Any = out.view(-1).view(torch.uint8).numpy() if nbytes else bytearray()
    view = memoryview(buffer)
    with t.file.open("rb", buffering=0) as fh:
        fh.seek(offset)
        got = 0
        while got < nbytes:  # one read returns at most ~2 GB on Linux
            n = fh.readinto(view[got:])
            if not n:
                raise ModelLoadError(f"{t.file.name}: tensor {t.name} is truncated; re-download the model")
            got += n
        _drop_from_page_cache(fh.fileno(), offset, nbytes)
    return out


def _drop_from_page_cache(fd: int, offset: int, length: int) -> None:
    """Tell the kernel these bytes will not be read again (a 50 GB read should not evict everything else)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):
            advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


@dataclass
class _Slot:
    """Where one checkpoint tensor goes: every (module, attribute) sharing it (encoder/decoder ties)."""

    owners: list[tuple[nn.Module, str]]
    shape: tuple[int, ...]
    is_buffer: bool


def _slots(model: nn.Module) -> dict[str, _Slot]:
    by_id: dict[int, _Slot] = {}
    names: dict[str, _Slot] = {}
    for mod_name, module in model.named_modules(remove_duplicate=False):
        for kind, table in (("p", module._parameters), ("b", module._buffers)):
            for attr, t in table.items():
                if t is None:
                    continue
                slot = by_id.setdefault(id(t), _Slot([], tuple(t.shape), kind == "b"))
                if (module, attr) not in [(m, a) for m, a in slot.owners]:
                    slot.owners.append((module, attr))
                names[f"{mod_name}.{attr}" if mod_name else attr] = slot
    return names


def _set(slot: _Slot, value: torch.Tensor) -> None:
    """One tensor for every owner, as the ties had it."""
    shared: Any = value if slot.is_buffer else nn.Parameter(value, requires_grad=False)
    for module, attr in slot.owners:
        table: dict[str, Any] = module._buffers if slot.is_buffer else module._parameters
        table[attr] = shared


def _is_expert_stack(name: str) -> bool:
    return name.endswith(("experts.gate_up_proj", "experts.down_proj"))


def build_quantized(
    folder: Path,
    files: tuple[Path, ...],
    device: str,
    dtype: torch.dtype,
    mode: QuantMode,
    progress: Callable[[int, int], None] | None = None,
    device_map: Mapping[str, str] | None = None,
) -> Any:
    """The model in ``folder`` with its large weights in ``mode``, every tensor on ``device``.

    With a ``device_map`` (module name -> device; placement.py) each tensor goes to its module's device
    instead (``"disk"``: RAM, for accelerate to write out), and the model is left for
    :func:`diffedit.engine.placement.dispatch` to hook up rather than moved to ``device``.
    """
    from accelerate import init_empty_weights
    from transformers import AutoConfig, DiffusionGemmaForBlockDiffusion

    from diffedit.engine.placement import device_for

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    with init_empty_weights(include_buffers=False):
        model = DiffusionGemmaForBlockDiffusion._from_config(config, dtype=dtype)
    model.tie_weights()  # encoder and decoder share their layers: one meta Parameter per shared tensor
    slots = _slots(model)
    dev = torch.device(device)

    def where(name: str) -> torch.device:
        if device_map is None:
            return dev
        mapped = device_for(name, device_map, str(dev))
        return torch.device("cpu" if mapped == "disk" else mapped)

    stored = list(stored_tensors(files))
    quantised: dict[int, QuantizedTensor] = {}  # id(slot) -> its quantised weight
    done: set[int] = set()
    total = sum(t.nbytes for t in stored)
    read = 0
    for t in stored:
        slot = slots.get(t.name)
        if slot is None:
            raise ModelLoadError(
                f"the weights in {folder} do not load: '{t.name}' is not part of the model config.json "
                "describes; config.json and the weights come from different models: re-download the model"
            )
        if slot.shape != t.shape:
            raise ModelLoadError(
                f"the weights in {folder} do not load: '{t.name}' has shape {list(t.shape)} in the weights, "
                f"config.json needs {list(slot.shape)}; config.json and the weights come from different "
                "models: re-download the model"
            )
        if id(slot) in done:  # a tied tensor stored twice: the first copy is the one in use
            continue
        done.add(id(slot))
        tdev = where(t.name)
        if (
            mode != "none"
            and not slot.is_buffer
            and is_quantisable(t.name, t.shape)
            and can_quantize(mode, t.shape)
        ):
            if _is_expert_stack(t.name):
                q = empty_like_quantized(mode, t.shape, tdev)
                for e in range(t.shape[0]):  # one expert at a time: its bf16 slice is the only copy
                    fill(q, e, quantize(read_tensor(t, e).to(tdev), mode))
            else:
                q = quantize(read_tensor(t).to(tdev), mode)
            quantised[id(slot)] = q
        else:
            value = read_tensor(t)
            target_dtype = dtype if value.is_floating_point() else value.dtype
            if slot.is_buffer:  # buffers keep the dtype the model built them in (rotary tables stay fp32)
                target_dtype = slot.owners[0][0]._buffers[slot.owners[0][1]].dtype  # type: ignore[union-attr]
            _set(slot, value.to(device=tdev, dtype=target_dtype))
        read += t.nbytes
        if progress:
            progress(read, total)
    _install(model, slots, quantised)
    missing = sorted(
        n for n, s in slots.items() if not s.is_buffer and id(s) not in done and "vision" not in n
    )
    if missing:
        raise ModelLoadError(
            f"the weights in {folder} do not load: '{missing[0]}' is missing from the weights"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; re-download the model"
        )
    _materialise_rest(model, where, dtype)
    gen_file = folder / "generation_config.json"
    if gen_file.is_file():
        model.generation_config = type(model).generation_config_class.from_pretrained(
            folder, local_files_only=True
        )
    if device_map is not None:
        for name, module in model.named_modules():  # buffers the model built (rotary tables, scalars)
            for attr, b in list(module._buffers.items()):
                target = where(f"{name}.{attr}" if name else attr)
                if b is not None and b.device != target:
                    module._buffers[attr] = b.to(target)
        return model.eval()
    return model.to(dev).eval()


def _install(model: nn.Module, slots: dict[str, _Slot], quantised: dict[int, QuantizedTensor]) -> None:
    """Swap each quantised linear and experts block for a quantised module: one module per shared weight, so
    the encoder and the decoder hold the same one, as they held the same Parameters."""
    made: dict[int, nn.Module] = {}  # id(slot of the weight) -> its quantised module
    for mod_name, module in list(model.named_modules(remove_duplicate=False)):
        if isinstance(module, nn.Linear):
            key = id(slots[f"{mod_name}.weight"])
        elif hasattr(module, "gate_up_proj") and hasattr(module, "down_proj"):
            key = id(slots[f"{mod_name}.gate_up_proj"])
        else:
            continue
        if key not in quantised:
            continue
        if key not in made:
            if isinstance(module, nn.Linear):
                bias = module.bias if module.bias is not None and module.bias.device.type != "meta" else None
                made[key] = QuantizedLinear(quantised[key], bias)
            else:
                down = quantised.get(id(slots[f"{mod_name}.down_proj"]))
                if down is None:
                    continue
                made[key] = QuantizedExperts(module, quantised[key], down)
        parent_name, _, child = mod_name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, made[key])


def _materialise_rest(model: nn.Module, where: Callable[[str], torch.device], dtype: torch.dtype) -> None:
    """Weights the checkpoint leaves out (the unused vision tower of a small checkpoint) as zeros."""
    for name, module in model.named_modules():
        for attr, p in list(module._parameters.items()):
            if p is not None and p.device.type == "meta":
                module._parameters[attr] = nn.Parameter(
                    torch.zeros(p.shape, dtype=dtype, device=where(f"{name}.{attr}")), requires_grad=False
                )


def quantised_size(files: tuple[Path, ...], mode: QuantMode, dtype_bytes: int = 2) -> int:
    """Bytes the model takes loaded in ``mode`` (exact: the same rule the loader applies to each tensor)."""
    from diffedit.engine.quant import int4_group

    total = 0
    for t in stored_tensors(files):
        count = math.prod(t.shape)
        if mode != "none" and is_quantisable(t.name, t.shape) and can_quantize(mode, t.shape):
            rows = count // t.shape[-1]
            if mode == "int8":
                total += count + rows * 4
            else:
                total += count // 2 + rows * (t.shape[-1] // int4_group(t.shape[-1])) * 4
        else:
            total += count * dtype_bytes
    return total
