"""Canvas layout shared by training and inference: target tokens, one end token, then padding."""

from __future__ import annotations

from collections.abc import Set

import torch


def layout_canvases(target_ids: list[int], canvas_length: int, eos_id: int, pad_id: int) -> list[list[int]]:
    """Split a target into canvases: every canvas is full, the last one ends with ``eos`` then ``pad``.

    This is what the model should produce for ``target_ids``: block-autoregressive canvases where
    only the final block carries the end token.
    """
    ids = [*target_ids, eos_id]
    blocks = [ids[i : i + canvas_length] for i in range(0, len(ids), canvas_length)]
    blocks[-1] = blocks[-1] + [pad_id] * (canvas_length - len(blocks[-1]))
    return blocks


def trim_at_end(tokens: torch.Tensor | list[int], end_ids: Set[int]) -> list[int]:
    """The tokens before the first end token (eos, pad or any id in ``end_ids``)."""
    out: list[int] = []
    for t in tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens:
        if int(t) in end_ids:
            break
        out.append(int(t))
    return out
