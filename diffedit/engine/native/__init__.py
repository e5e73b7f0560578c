"""diffedit's own torch-only DiffusionGemma: the same logits as transformers', without importing it.

Importing transformers' DiffusionGemma modeling module costs about 2 s of a 4 s ``diffedit rewrite`` on a
CPU (it pulls in ``torch.distributed.tensor``, sympy, ``torch._dynamo`` and every model's lazy import table;
docs/benchmarks.md). For the checkpoints it covers (:func:`try_native`), this package builds the model, its
KV cache and its tokenizer from torch, safetensors and tokenizers alone, computing exactly what
transformers computes (tests/engine/native/ hold the logits to ``torch.equal`` and same-seed rewrites to the
same tokens). Everything else (quantised, FP8, compiled, chat-template checkpoints, GPUs, reference mode in
the CLI) loads through transformers as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from diffedit.engine.types import ModelLoadError

if TYPE_CHECKING:
    from diffedit.engine.catalog import MachineMemory
    from diffedit.engine.load_progress import WeightsProgress
    from diffedit.engine.loader import CheckpointInfo, LoadedModel

IMPLEMENTATIONS = ("auto", "native", "transformers")


def try_native(
    info: CheckpointInfo,
    device: str | None,
    dtype: str | None,
    impl: str,
    on_weights: WeightsProgress | None = None,
    machine: MachineMemory | None = None,
) -> LoadedModel | None:
    """The model on the native implementation, or None (``impl="auto"``) where it does not apply;
    ``impl="native"`` raises a :class:`ModelLoadError` saying why instead."""
    if impl not in IMPLEMENTATIONS:
        raise ModelLoadError(f"unknown implementation {impl!r}; use one of {', '.join(IMPLEMENTATIONS)}")
    from diffedit.engine.loader import pick_device, pick_dtype
    from diffedit.engine.native.config import Unsupported
    from diffedit.engine.native.load import load_native

    dev = pick_device(device)
    torch_dtype: Any = pick_dtype(dev, dtype, sum(w.stat().st_size for w in info.weight_files))
    try:
        return load_native(info, dev, torch_dtype, on_weights, machine)
    except Unsupported as exc:
        if impl == "native":
            raise ModelLoadError(
                f"--impl native does not apply to {info.name}: {exc}; leave --impl at auto (transformers "
                "then loads it)"
            ) from exc
        return None
