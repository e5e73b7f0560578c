"""Split a model between the GPU and RAM when the chosen weights (bf16, int8 or int4) do not fit the GPU.

The plan (:func:`plan_placement`) is a pure function of the model's parts (bytes per decoder layer in the
chosen format, from the safetensors headers) and the free memory: the embeddings, norms, self-conditioning
and output head stay on the GPU, the first decoder layers that fit go there too, and the rest stay in RAM.
A layer is never split, and the encoder's layer *i* (which shares every weight with the decoder's layer
*i*) always goes where the decoder's does, so its KV cache is made and read on one device.

The layers kept in RAM are run on the GPU: accelerate's hooks (``dispatch_model``, ``AlignDevicesHook``)
wrap each layer's ``forward``, copy its weights to the GPU just before it runs and drop them after, so a
layer called directly (``CanvasDecoder.run_layers`` does) runs as it would on the GPU, its inputs, outputs
and KV cache all there. The price is the copy: every offloaded layer's weights cross the bus once per forward.

accelerate's own planner (``infer_auto_device_map``) is not used: it fails on this model's tied encoder and
decoder layers (an ``IndexError`` in ``get_module_size_with_ties``, accelerate 1.16), and it counts the
bf16 size, not the int8/int4 size the layers will have.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from diffedit.engine.catalog import is_quantisable
from diffedit.engine.types import ModelLoadError
from diffedit.units import human_bytes

OffloadChoice = Literal["auto", "none"]
OFFLOAD_CHOICES: tuple[OffloadChoice, ...] = ("auto", "none")

# Where DiffusionGemma keeps its layers, and what always stays on the main device.
DECODER_LAYERS = "model.decoder.layers"
ENCODER_LAYERS = "model.encoder.language_model.layers"
RESIDENT_MODULES = (
    "lm_head",
    "model.decoder.embed_tokens",
    "model.decoder.norm",
    "model.decoder.rotary_emb",
    "model.decoder.self_conditioning",
    "model.encoder.language_model.embed_tokens",
    "model.encoder.language_model.norm",
    "model.encoder.language_model.rotary_emb",
)
UNUSED_MODULES = ("model.encoder.vision_tower", "model.encoder.embed_vision")  # never run by text rewriting
_LAYER = re.compile(r"^model\.(?:decoder|encoder\.language_model)\.layers\.(\d+)\.")


@dataclass(frozen=True)
class ModelParts:
    """A checkpoint's weights as they will be held, in bytes, grouped as a placement moves them."""

    layers: tuple[int, ...]  # decoder layer i (shared with the encoder's layer i)
    resident: int  # embeddings, norms, self-conditioning, output head: always on the main device
    unused: int = 0  # the vision tower: kept in RAM where the model is split, never run

    @property
    def total(self) -> int:
        return sum(self.layers) + self.resident + self.unused


def tensor_bytes(name: str, shape: tuple[int, ...], mode: str, dtype_bytes: int) -> int:
    """Bytes one stored tensor takes loaded in ``mode`` (the loader's rule: quant_load.quantised_size)."""
    from diffedit.engine.quant import can_quantize, int4_group

    count = math.prod(shape)
    if mode in ("int8", "int4") and is_quantisable(name, shape) and can_quantize(mode, shape):  # type: ignore[arg-type]
        rows = count // shape[-1]
        if mode == "int8":
            return count + rows * 4
        return count // 2 + rows * (shape[-1] // int4_group(shape[-1])) * 4
    return count * dtype_bytes


def model_parts(files: Iterable[Path], mode: str, dtype_bytes: int, num_layers: int) -> ModelParts:
    """The parts of a checkpoint from its safetensors headers alone (no weight read)."""
    from diffedit.engine.quant_load import stored_tensors

    layers = [0] * num_layers
    resident = unused = 0
    for t in stored_tensors(tuple(files)):
        size = tensor_bytes(t.name, t.shape, mode, dtype_bytes)
        match = _LAYER.match(t.name)
        if match and int(match.group(1)) < num_layers:
            layers[int(match.group(1))] += size
        elif "vision" in t.name:
            unused += size
        else:
            resident += size
    return ModelParts(tuple(layers), resident, unused)


@dataclass(frozen=True)
class Placement:
    """Which decoder layers run from the main device's memory and which are copied in from ``offload_to``."""

    main: str  # "cuda:0" (tests on the CPU: "cpu")
    gpu_layers: int  # layers 0 .. gpu_layers-1 held on ``main``; the rest on ``offload_to``
    parts: ModelParts
    offload_to: str = "cpu"  # "cpu", or "disk" (tests: accelerate reads them from an offload folder)
    split: bool = True  # False: everything on ``main`` (the model fits whole)

    @property
    def offloaded(self) -> bool:
        return self.split

    def layer_device(self, i: int) -> str:
        return self.main if i < self.gpu_layers else self.offload_to

    def device_map(self) -> dict[str, str]:
        """Module name -> device, as accelerate and transformers take it (every module of the model)."""
        out = dict.fromkeys(RESIDENT_MODULES, self.main)
        out.update(dict.fromkeys(UNUSED_MODULES, self.offload_to if self.offloaded else self.main))
        for i in range(len(self.parts.layers)):
            out[f"{ENCODER_LAYERS}.{i}"] = out[f"{DECODER_LAYERS}.{i}"] = self.layer_device(i)
        return out

    def bytes_per_device(self) -> dict[str, int]:
        gpu = sum(self.parts.layers[: self.gpu_layers]) + self.parts.resident
        rest = sum(self.parts.layers[self.gpu_layers :])
        unused_where = self.offload_to if self.offloaded else self.main
        out = {self.main: gpu, self.offload_to: rest}
        out[unused_where] = out.get(unused_where, 0) + self.parts.unused
        return {k: v for k, v in out.items() if v or k == self.main}

    def layers_per_device(self) -> dict[str, int]:
        n = len(self.parts.layers)
        out = {self.main: self.gpu_layers, self.offload_to: n - self.gpu_layers}
        return {k: v for k, v in out.items() if v or k == self.main}

    def summary(self) -> dict[str, Any]:
        """The ``--json`` report's ``placement``."""
        return {
            "offloaded": self.offloaded,
            "main_device": self.main,
            "layers": len(self.parts.layers),
            "layers_per_device": self.layers_per_device(),
            "bytes_per_device": self.bytes_per_device(),
        }

    def describe(self) -> str:
        """One line for the status bar and stderr."""
        n, b = len(self.parts.layers), self.bytes_per_device()
        where = "in RAM" if self.offload_to == "cpu" else f"on {self.offload_to}"
        return (
            f"{self.gpu_layers} of {n} layers on {self.main} ({human_bytes(b.get(self.main, 0))}), "
            f"{n - self.gpu_layers} {where} ({human_bytes(b.get(self.offload_to, 0))}) copied in for each "
            "step; no CUDA graphs or compiled step while split"
        )


def staging_bytes(parts: ModelParts) -> int:
    """GPU room an offloaded layer needs while it runs: its weights, copied in (the largest layer's)."""
    return max(parts.layers, default=0)


def gpu_floor(parts: ModelParts, runtime: int) -> int:
    """The least GPU memory any split needs: what stays there, the runtime, and one layer copied in."""
    return parts.resident + runtime + staging_bytes(parts)


def plan_placement(
    parts: ModelParts,
    runtime: int,
    gpu_free: int,
    ram_free: int,
    main: str = "cuda:0",
    offload_to: str = "cpu",
) -> Placement | None:
    """The first decoder layers that fit on ``main``, the rest in RAM; None where GPU and RAM cannot hold it.

    Everything on ``main`` when it fits whole. Otherwise ``main`` keeps the resident parts, the runtime and
    room for one offloaded layer while it runs (:func:`staging_bytes`), and as many whole layers, in order,
    as fit in what is left; the other layers and the unused vision tower must fit in ``ram_free``.
    """
    layers = len(parts.layers)
    if parts.total + runtime <= gpu_free:
        return Placement(main, layers, parts, offload_to, split=False)
    budget = gpu_free - gpu_floor(parts, runtime)
    if budget < 0:
        return None
    n, used = 0, 0
    while n < layers and used + parts.layers[n] <= budget:
        used += parts.layers[n]
        n += 1
    placement = Placement(main, n, parts, offload_to)
    if offload_to == "cpu" and placement.bytes_per_device().get("cpu", 0) > ram_free:
        return None
    return placement


def is_offloaded(model: Any) -> bool:
    """Whether some decoder layers' weights live off the execution device (hooks copy them in for each
    forward): no CUDA graph can capture that, and the compiled step would read absent weights."""
    placement = getattr(model, "diffedit_placement", None)
    return placement is not None and bool(placement.offloaded)


# --- putting a model where a placement says --------------------------------------------------------------


def device_for(name: str, device_map: Mapping[str, str], default: str) -> str:
    """The device the longest prefix of ``name`` in ``device_map`` names; ``default`` where none does."""
    best, where = -1, default
    for prefix, device in device_map.items():
        if (name == prefix or name.startswith(prefix + ".") or prefix == "") and len(prefix) > best:
            best, where = len(prefix), device
    return where


def hook_offloaded_layers(model: Any, placement: Placement) -> Any:
    """Layers ``placement.gpu_layers`` on run on ``placement.main`` with their weights copied in for each
    forward and dropped after: one accelerate ``AlignDevicesHook`` per layer (the encoder's and the
    decoder's), whose weights map is the layer's own tensors, already where ``offload_to`` keeps them.

    accelerate's ``dispatch_model`` is not used here: it hooks every submodule, and the quantised modules
    the encoder and decoder share get two chained hooks whose disk-offload maps disagree (a shape error
    on the demo model). One hook per whole layer, over tensors held in RAM, has no such sharing problem.
    """
    from accelerate.hooks import AlignDevicesHook, add_hook_to_module
    from accelerate.utils import named_module_tensors

    n = len(placement.parts.layers)
    offloaded = [
        model.get_submodule(f"{prefix}.{i}")
        for prefix in (ENCODER_LAYERS, DECODER_LAYERS)
        for i in range(placement.gpu_layers, n)
    ]
    # Every map first: the encoder's and the decoder's layer i share tensors, and a hook, once attached,
    # leaves them on the meta device.
    maps = [dict(named_module_tensors(layer, include_buffers=True, recurse=True)) for layer in offloaded]
    for layer, weights in zip(offloaded, maps, strict=True):
        hook = AlignDevicesHook(
            execution_device=placement.main,
            offload=True,
            weights_map=weights,
            offload_buffers=True,  # the int8/int4 weights are buffers
            place_submodules=True,
            skip_keys=["cache"],
        )
        add_hook_to_module(layer, hook)
    model.hf_device_map = placement.device_map()
    model.diffedit_placement = placement
    return model


# --- the loader's side: plan for a checkpoint, load it placed --------------------------------------------


def main_device(device: str) -> str:
    """``cuda`` -> ``cuda:0``: accelerate's hooks and the device map name one device."""
    return f"{device}:0" if device in ("cuda", "mps") else device


def plan_for(info: Any, mode: str, dtype_bytes: int, machine: Any, device: str) -> Placement | None:
    """:func:`plan_placement` for a checkpoint (``CheckpointInfo``) loaded in ``mode`` on this machine."""
    from diffedit.engine.catalog import RUNTIME_BASE_BYTES
    from diffedit.engine.checkpoint_check import read_json
    from diffedit.engine.loader import memory_needed

    config = read_json(info.path / "config.json")
    text = config.get("text_config") or {}
    layers = int(text.get("num_hidden_layers", 0))
    parts = model_parts(info.weight_files, mode, dtype_bytes, layers)
    runtime = memory_needed(info, mode, dtype_bytes)[1]
    return plan_placement(
        parts,
        runtime,
        machine.gpu_free,
        machine.ram_available - RUNTIME_BASE_BYTES,  # the process itself, beside the layers kept in RAM
        main=main_device(device),
    )


def split_needs(info: Any, mode: str, dtype_bytes: int) -> tuple[int, int]:
    """(least GPU memory, RAM at that split) for loading ``info`` split in ``mode``: for the refusal."""
    from diffedit.engine.catalog import RUNTIME_BASE_BYTES
    from diffedit.engine.checkpoint_check import read_json
    from diffedit.engine.loader import memory_needed

    text = read_json(info.path / "config.json").get("text_config") or {}
    parts = model_parts(info.weight_files, mode, dtype_bytes, int(text.get("num_hidden_layers", 0)))
    runtime = memory_needed(info, mode, dtype_bytes)[1]
    return gpu_floor(parts, runtime), sum(parts.layers) + parts.unused + RUNTIME_BASE_BYTES


def load_placed(
    info: Any,
    dtype: Any,
    mode: str,
    placement: Placement,
    on_weights: Any = None,
    trust_remote_code: bool = False,
) -> Any:
    """The checkpoint's model with each layer where ``placement`` says, hooked up to run on its main device.

    int8/int4: diffedit's loader quantises each tensor as it reads it and puts it on its layer's device
    (quant_load.py), then accelerate's ``dispatch_model`` hooks the layers kept off the GPU. bf16:
    transformers' ``from_pretrained(device_map=...)`` puts each tensor where the map says and calls the same
    ``dispatch_model``. Either way host memory holds the layers kept in RAM, not the whole model.
    """
    import torch

    device_map = placement.device_map()
    try:
        if mode != "none":
            from diffedit.engine.quant_load import build_quantized

            model = build_quantized(
                info.path,
                info.weight_files,
                placement.main,
                dtype,
                mode,  # type: ignore[arg-type]
                on_weights,
                device_map=device_map,
            )
            return hook_offloaded_layers(model, placement)
        from diffedit.engine.checkpoint_check import check_loading_info
        from diffedit.engine.loader import from_checkpoint

        folder = tempfile.mkdtemp(prefix="diffedit-offload-") if placement.offload_to == "disk" else None
        try:
            model, loading_info = from_checkpoint(
                info, dtype, trust_remote_code, on_weights, device_map=device_map, offload_folder=folder
            )
        except BaseException:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        if folder is not None:
            weakref.finalize(model, shutil.rmtree, folder, True)
        check_loading_info(info.path, loading_info, info.weight_files)
        model.diffedit_placement = placement
        return model.eval()
    except torch.OutOfMemoryError as exc:
        raise ModelLoadError(
            f"the model does not fit split as planned ({placement.describe()}): "
            f"{str(exc).splitlines()[0][:200]}; close other programs using {placement.main}, or try "
            "--quantize int4"
        ) from exc
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"the weights in {info.path} do not load split between {placement.main} and "
            f"{placement.offload_to}: {str(exc).splitlines()[0][:300]}"
        ) from exc
