"""A context encoded into a fresh KV cache, and the decoder inputs of the canvas after it."""

from __future__ import annotations

from typing import Any

import torch

from diffedit.engine.decoder import EncodedContext


def encode_context(model: Any, ids: torch.Tensor) -> tuple[Any, Any, torch.Tensor]:
    """``ids`` (1, n) encoded: the cache, the canvas's attention masks (per layer type) and its positions."""
    context = EncodedContext(model)
    with torch.no_grad():
        context.append(ids)
    masks, positions = context.canvas_inputs(ids.device)
    return context.cache, masks, positions
