"""Loading a checkpoint on the native implementation.

:func:`load_native` builds a :class:`~diffedit.engine.loader.LoadedModel` from
:mod:`diffedit.engine.native.modeling` and :mod:`diffedit.engine.native.tokenizer`, or raises
:class:`~diffedit.engine.native.config.Unsupported` (before any weight is read) where the checkpoint or the
options need transformers. It applies to a plain DiffusionGemma text checkpoint with an infill prompt
format, loaded unquantised on the CPU in float32 or bfloat16: what its parity with transformers is tested
on (tests/engine/native/).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from diffedit.engine.context import INFILL_FILE, format_for_checkpoint
from diffedit.engine.load_progress import WeightsProgress, whole_percents
from diffedit.engine.native.config import Unsupported, read_config, read_generation_config
from diffedit.engine.types import ModelLoadError

if TYPE_CHECKING:
    from diffedit.engine.catalog import MachineMemory
    from diffedit.engine.loader import CheckpointInfo, LoadedModel

MIN_TORCH = (2, 11)  # the grouped expert product transformers dispatches to on CPUs from there on

_ENCODER_SCALAR = re.compile(r"model\.encoder\.language_model\.layers\.(\d+)\.layer_scalar")
_IGNORED = ("model.encoder.vision_tower.", "model.encoder.embed_vision.")  # text only: never run


def _torch_version() -> tuple[int, int]:
    import torch

    major, minor = torch.__version__.split(".")[:2]
    return int(major), int(re.match(r"\d+", minor).group())  # type: ignore[union-attr]


def load_native(
    info: CheckpointInfo,
    device: str,
    dtype: Any,
    on_weights: WeightsProgress | None = None,
    machine: MachineMemory | None = None,
) -> LoadedModel:
    """The checkpoint on the native implementation (``device`` and ``dtype`` already picked), or
    :class:`Unsupported` before any weight is read where it needs transformers."""
    import torch

    from diffedit.engine.loader import LoadedModel, check_fits
    from diffedit.engine.native.tokenizer import NativeTokenizer

    if torch.device(device).type != "cpu":
        raise Unsupported(f"device {device} (the native implementation is tested on CPUs)")
    if dtype not in (torch.float32, torch.bfloat16):
        raise Unsupported(f"dtype {dtype}")
    if _torch_version() < MIN_TORCH:
        raise Unsupported(f"torch {torch.__version__} (needs {MIN_TORCH[0]}.{MIN_TORCH[1]} or later)")
    if not (info.path / INFILL_FILE).is_file():
        raise Unsupported(f"no {INFILL_FILE} (chat checkpoints render their template through transformers)")
    config = read_config(info.path)
    generation = read_generation_config(info.path)
    tokenizer = NativeTokenizer(info.path)
    check_fits(info, "none", device, dtype.itemsize, machine)
    model = _build(info, config, generation, dtype, on_weights)
    model.eval()
    try:
        fmt = format_for_checkpoint(info.path, tokenizer)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    from diffedit.engine.quant import weight_bytes

    return LoadedModel(
        model, tokenizer, fmt, info, device, dtype, None, "none", weight_bytes(model), implementation="native"
    )


def _build(
    info: CheckpointInfo, config: Any, generation: Any, dtype: Any, on_weights: WeightsProgress | None
) -> Any:
    import torch
    from safetensors import safe_open

    from diffedit.engine.native.modeling import NativeDiffusionGemma

    # Built on the CPU with uninitialised weights (torch.empty: no memory is touched until the checkpoint's
    # tensors replace them). Not on the meta device: computing there imports torch._dynamo and sympy.
    model = NativeDiffusionGemma(config, generation)
    wanted = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    names: dict[str, tuple[Any, str]] = {}  # our name -> (file, checkpoint name)
    for path in info.weight_files:
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if key.startswith(_IGNORED):
                    continue
                scalar = _ENCODER_SCALAR.fullmatch(key)
                ours = f"model.encoder.layer_scalar_{scalar.group(1)}" if scalar else key
                if ours not in wanted:
                    raise Unsupported(f"weight {key} is not part of the text model")
                shape = tuple(fh.get_slice(key).get_shape())
                if shape != tuple(wanted[ours].shape):
                    raise Unsupported(f"weight {key} has shape {list(shape)}, not {list(wanted[ours].shape)}")
                names[ours] = (path, key)
    missing = sorted(set(wanted) - set(names))
    if missing:
        raise Unsupported(f"weights missing from the checkpoint: {', '.join(missing[:3])}")
    state: dict[str, torch.Tensor] = {}
    total, done = len(names), 0
    if on_weights is not None:
        on_weights = whole_percents(on_weights)
        on_weights(0, total)
    by_file: dict[Any, list[tuple[str, str]]] = {}
    for ours, (path, key) in names.items():
        by_file.setdefault(path, []).append((ours, key))
    for path, pairs in by_file.items():
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            for ours, key in pairs:
                state[ours] = fh.get_tensor(key).to(dtype)
                done += 1
                if on_weights is not None:
                    on_weights(done, total)
    model.load_state_dict(state, strict=False, assign=True)
    decoder = model.model.decoder
    model.lm_head.weight = decoder.embed_tokens.weight  # tied again: assign replaced the parameter
    decoder.embed_tokens.set_dtype(dtype)  # the rotary tables stay float32, as in transformers
    return model
