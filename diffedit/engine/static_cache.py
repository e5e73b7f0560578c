"""A static KV buffer per decoder layer: the encoded context, then room for the canvas.

transformers' decoder attention concatenates the cached context with the canvas's keys and values at every
denoising step (``append_to_cache``), which copies the whole context once per layer per step and hands out
new tensors each time. Here each layer gets one buffer, sized context + canvas, filled with the context once
per canvas; a step writes only the canvas's keys and values into the tail. The attention reads the same
values as before (so reference mode keeps token-for-token parity), and the addresses stay fixed, which is
what a captured CUDA graph needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


class StaticCanvasCache:
    """Per-layer ``[context | canvas]`` key and value buffers, built from an encoder cache."""

    def __init__(self, cache: Any, canvas_length: int) -> None:
        self.canvas_length = canvas_length
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.context_lengths: list[int] = []
        for layer in cache.layers:
            self.keys.append(_with_room(layer.keys, canvas_length))
            self.values.append(_with_room(layer.values, canvas_length))
            self.context_lengths.append(int(layer.keys.shape[-2]))

    def append(
        self, layer_idx: int, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the canvas's keys and values into the tail; return the whole buffers (no new tensors)."""
        start = self.context_lengths[layer_idx]
        k, v = self.keys[layer_idx], self.values[layer_idx]
        k[..., start:, :].copy_(key)
        v[..., start:, :].copy_(value)
        return k, v

    @contextmanager
    def installed(self, model: Any) -> Iterator[None]:
        """Route the decoder's attention layers through these buffers for the duration of the block."""
        patched = []
        for layer in model.model.decoder.layers:
            attn = layer.self_attn
            idx = int(attn.layer_idx)

            def append_to_cache(
                cache: Any, key: torch.Tensor, value: torch.Tensor, _idx: int = idx
            ) -> tuple[torch.Tensor, torch.Tensor]:
                return self.append(_idx, key, value)

            attn.append_to_cache = append_to_cache
            patched.append(attn)
        try:
            yield
        finally:
            for attn in patched:
                del attn.append_to_cache  # back to the class's method


def _with_room(t: torch.Tensor, extra: int) -> torch.Tensor:
    shape = (*t.shape[:-2], t.shape[-2] + extra, t.shape[-1])
    buf = t.new_zeros(shape)
    buf[..., : t.shape[-2], :].copy_(t)
    return buf
