"""The read-only pass: existing text as the canvas, read once by the decoder, each token's probability.

No sampling and no temperature: one decoder forward per canvas (no self-conditioning: there is no previous
step) after the same context a rewrite encodes, and each position read off the softmax of the model's own
logits: the probability of the token that is there, the entropy, the likeliest alternatives. Texts longer
than a canvas are read canvas after canvas, each finished canvas appended to the cache as a rewrite does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from diffedit.engine.decoder import CanvasDecoder, EncodedContext
from diffedit.engine.types import Cancelled, CancelToken


@dataclass(frozen=True)
class CanvasReading:
    """One canvas read: per position the probability of its token, the entropy, the top ids and their
    probabilities (plain lists: the caller keeps what it needs)."""

    p: list[float]
    entropy: list[float]
    top_ids: list[list[int]]
    top_p: list[list[float]]


def read_logits(logits: torch.Tensor, ids: torch.Tensor, top_k: int) -> CanvasReading:
    """``logits`` (length, vocab) float32 and the canvas ``ids`` (length,): the model's reading of them."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    probs = logp.exp()
    p = probs.gather(-1, ids[:, None]).squeeze(-1)
    entropy = -(probs * logp).sum(-1)
    top_p, top_ids = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    return CanvasReading(p.tolist(), entropy.tolist(), top_ids.tolist(), top_p.tolist())


def read_canvases(
    model: Any,
    prompt_ids: Sequence[int],
    canvases: Sequence[Sequence[int]],
    carry: Sequence[Sequence[int]] | None = None,
    top_k: int = 5,
    cancel: CancelToken | None = None,
) -> list[CanvasReading]:
    """Each canvas (exactly ``canvas_length`` ids) read after ``prompt_ids`` and the canvases before it;
    ``carry[i]``: what the encoder appends after canvas i (default: the whole canvas)."""
    device = model.device
    context = EncodedContext(model)
    pending: Sequence[int] = prompt_ids
    out: list[CanvasReading] = []
    with torch.inference_mode():
        for i, canvas in enumerate(canvases):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            if pending:
                context.append(torch.tensor([list(pending)], dtype=torch.long, device=device))
            masks, positions = context.canvas_inputs(device)
            ids = torch.tensor([list(canvas)], dtype=torch.long, device=device)
            logits = CanvasDecoder(model, masks, context.cache, positions)(ids, None)
            out.append(read_logits(logits[0], ids[0], top_k))
            pending = canvas if carry is None else carry[i]
    return out
