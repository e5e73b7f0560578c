"""One-pass denoising accuracy: re-noise half of a target's canvas, count the positions restored exactly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import DynamicCache

from diffedit.training.examples import Example


@dataclass(frozen=True)
class Accuracy:
    restored: int
    noised: int

    @property
    def value(self) -> float:
        return self.restored / max(1, self.noised)


def renoise_positions(canvas: list[int], pad_id: int, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """Exactly ``round(fraction * n)`` of the ``n`` non-pad canvas positions, chosen at random."""
    content = torch.tensor([i for i, t in enumerate(canvas) if t != pad_id])
    count = max(1, round(fraction * len(content)))
    order = torch.randperm(len(content), generator=gen)
    return content[order[:count]]


def renoise(
    canvas: list[int], pad_id: int, vocab_size: int, fraction: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noised canvas (random tokens at the chosen positions, the rest kept) and those positions."""
    clean = torch.tensor(canvas)
    positions = renoise_positions(canvas, pad_id, fraction, gen)
    noised = clean.clone()
    noised[positions] = torch.randint(0, vocab_size, (len(positions),), generator=gen)
    return noised, positions


def group_by_prompt_length(examples: Sequence[Example], batch_size: int) -> list[list[int]]:
    """Indices of examples in batches whose prompts all have the same length."""
    by_len: dict[int, list[int]] = {}
    for i, ex in enumerate(examples):
        by_len.setdefault(len(ex.prompt), []).append(i)
    return [
        idx[j : j + batch_size] for _, idx in sorted(by_len.items()) for j in range(0, len(idx), batch_size)
    ]


@torch.no_grad()
def canvas_logits(model: Any, prompts: torch.Tensor, canvases: torch.Tensor) -> torch.Tensor:
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    return model(input_ids=prompts, cache=cache, decoder_input_ids=canvases).logits


@torch.no_grad()
def one_pass_accuracy(
    model: Any,
    examples: Sequence[Example],
    pad_id: int,
    fraction: float = 0.5,
    seed: int = 1234,
    batch_size: int = 32,
) -> Accuracy:
    """Share of re-noised positions the model's argmax restores in one forward pass, context on both sides."""
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.get_text_config().vocab_size
    noised_all = [renoise(ex.canvas, pad_id, vocab, fraction, gen) for ex in examples]
    restored = noised = 0
    was_training = model.training
    model.eval()
    for batch in group_by_prompt_length(examples, batch_size):
        prompts = torch.tensor([examples[i].prompt for i in batch])
        canvases = torch.stack([noised_all[i][0] for i in batch])
        device = next(model.parameters()).device
        pred = canvas_logits(model, prompts.to(device), canvases.to(device)).argmax(-1).cpu()
        for row, i in enumerate(batch):
            positions = noised_all[i][1]
            clean = torch.tensor(examples[i].canvas)[positions]
            restored += int((pred[row, positions] == clean).sum())
            noised += len(positions)
    model.train(was_training)
    return Accuracy(restored, noised)


def most_frequent_token(examples: Sequence[Example], pad_id: int) -> int:
    counts = Counter(t for ex in examples for t in ex.canvas if t != pad_id)
    return counts.most_common(1)[0][0]


def baseline_accuracy(
    examples: Sequence[Example],
    token: int,
    pad_id: int,
    vocab_size: int,
    fraction: float = 0.5,
    seed: int = 1234,
) -> Accuracy:
    """The same positions as :func:`one_pass_accuracy`, always answered with ``token``."""
    gen = torch.Generator().manual_seed(seed)
    restored = noised = 0
    for ex in examples:
        _, positions = renoise(ex.canvas, pad_id, vocab_size, fraction, gen)
        restored += int((torch.tensor(ex.canvas)[positions] == token).sum())
        noised += len(positions)
    return Accuracy(restored, noised)
