"""The encoder's KV cache, as transformers' ``DynamicCache`` keeps it for DiffusionGemma.

Full-attention layers keep every key and value; sliding-window layers keep the last ``sliding_window - 1``
(the decoder's canvas then attends to those plus itself). The tensors are built with the same ``torch.cat``
calls, so they hold the same values in the same layout: the attention that reads them gives the same bits.
``layers[i].keys`` / ``.values`` are what :class:`~diffedit.engine.static_cache.StaticCanvasCache` and the
batch path copy from.
"""

from __future__ import annotations

import torch


class CacheLayer:
    """One layer's keys and values, shape (batch, kv_heads, length, head_dim)."""

    def __init__(self, sliding_window: int | None) -> None:
        self.sliding_window = sliding_window
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.cumulative_length = 0  # tokens ever appended (a sliding layer holds fewer)

    @property
    def is_sliding(self) -> bool:
        return self.sliding_window is not None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append; return what this step's attention reads (for a sliding layer: all it held plus the new)."""
        if self.keys is None or self.values is None:
            self.keys = torch.tensor([], dtype=key_states.dtype, device=key_states.device)
            self.values = torch.tensor([], dtype=value_states.dtype, device=value_states.device)
        self.cumulative_length += key_states.shape[-2]
        keys = torch.cat([self.keys, key_states], dim=-2)
        values = torch.cat([self.values, value_states], dim=-2)
        if self.sliding_window is None:
            self.keys, self.values = keys, values
        else:
            self.keys = keys[:, :, -self.sliding_window + 1 :, :]
            self.values = values[:, :, -self.sliding_window + 1 :, :]
        return keys, values

    def seq_length(self) -> int:
        if self.sliding_window is not None:
            return self.cumulative_length
        return 0 if self.keys is None or self.keys.numel() == 0 else int(self.keys.shape[-2])

    def mask_sizes(self, query_length: int) -> tuple[int, int]:
        """(kv_length, kv_offset) of the keys an append of ``query_length`` tokens attends over."""
        if self.sliding_window is None:
            return self.seq_length() + query_length, 0
        window, seen = self.sliding_window, self.cumulative_length
        kv_offset = max(seen - window + 1, 0)
        kv_length = (window - 1 if seen >= window else seen) + query_length
        return kv_length, kv_offset


class KVCache:
    """Per-layer caches for a model whose layers are ``layer_types`` (sliding or full attention)."""

    def __init__(self, layer_types: list[str], sliding_window: int) -> None:
        self.layers = [CacheLayer(sliding_window if t == "sliding_attention" else None) for t in layer_types]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.layers[layer_idx].update(key_states, value_states)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.layers[layer_idx].seq_length()

    def first(self, sliding: bool) -> int:
        """The index of the first sliding (or full-attention) layer."""
        return next(i for i, layer in enumerate(self.layers) if layer.is_sliding == sliding)
