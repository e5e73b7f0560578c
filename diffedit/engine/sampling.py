"""The pieces of one denoising step, each alone and testable: schedule, sampling, acceptance, stopping.

Two sampling modes share these pieces:

* ``reference`` makes the same random draws, in the same order, with the same operations as
  transformers' ``DiffusionGemmaForBlockDiffusion.generate`` (multinomial sampling, entropy through
  ``Categorical``), so with the same seed it yields the same tokens.
* ``fast`` samples the same distribution more cheaply, without ``torch.multinomial``: only where the
  draw is kept (acceptance depends on the entropy alone, and the rest is re-noised), by inverse CDF on the
  CPU and by the exponential race (Gumbel-max in disguise) on a GPU; and one log-softmax whose entropy
  serves both acceptance and stopping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DenoiseConfig:
    """The sampler's settings for one job (defaults come from the checkpoint's generation_config)."""

    max_steps: int
    entropy_bound: float
    t_min: float
    t_max: float
    stability_threshold: int
    confidence_threshold: float


def temperature_divisor(cfg: DenoiseConfig, cur_step: int, device: torch.device) -> torch.Tensor:
    """Linear schedule: ``t_max`` at step N (all noise) down to ``t_min`` at step 0.

    ``cur_step`` counts the steps *remaining* (N..1). Computed with the same tensor ops as transformers'
    ``LinearTemperatureScheduleLogitsProcessor`` so reference mode divides by the identical float.
    """
    step = torch.tensor(cur_step, device=device, dtype=torch.int32)
    return cfg.t_min + ((cfg.t_max - cfg.t_min) * (step / cfg.max_steps))


def uniform_canvas(
    shape: tuple[int, ...], vocab_size: int, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """A canvas of uniformly random tokens (the uniform-state diffusion prior)."""
    return torch.randint(0, vocab_size, shape, generator=generator, device=device)


@dataclass
class Scored:
    """One step's temperature-scaled logits, read once: argmax and entropy at every position."""

    logits: torch.Tensor
    argmax: torch.Tensor
    entropy: torch.Tensor
    logp: torch.Tensor | None = None  # log-softmax, kept by the fast path for its draw


def score_reference(logits: torch.Tensor) -> Scored:
    """transformers' operations: argmax, and the entropy through ``Categorical``."""
    entropy = torch.distributions.Categorical(logits=logits).entropy()
    return Scored(logits, torch.argmax(logits, dim=-1), entropy)


def draw_reference(scored: Scored, accepted: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A multinomial draw at every position, in transformers' order (the RNG stream must match)."""
    batch, length, vocab = scored.logits.shape
    probs = torch.softmax(scored.logits, dim=-1, dtype=torch.float32)
    drawn = torch.multinomial(probs.view(-1, vocab), num_samples=1, generator=generator)
    return drawn.squeeze(-1).view(batch, length)


def score_fast(logits: torch.Tensor) -> Scored:
    """One log-softmax gives the entropy (shared by acceptance and stopping) and the draw's weights."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return Scored(logits, torch.argmax(logits, dim=-1), entropy, logp)


def draw_fast(scored: Scored, accepted: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An exact draw from ``p`` at every position whose draw is kept.

    On a GPU: the exponential race, ``argmax(log p - log E)`` with ``E ~ Exp(1)``, over every row
    (selecting rows would need a host sync, and random numbers are cheap there). On the CPU, where
    a vocabulary's worth of exponentials per row costs as much as a small model's forward: only the
    accepted rows (the rest are re-noised), by inverse CDF, one uniform per row against the cumulative
    probabilities in float64 (so rounding cannot starve the tail of a large vocabulary).
    """
    assert scored.logp is not None
    if scored.logp.device.type != "cpu":
        noise = torch.empty_like(scored.logp).exponential_(1.0, generator=generator)
        return torch.argmax(scored.logp - noise.log(), dim=-1)
    drawn = scored.argmax.clone()
    rows = accepted.nonzero(as_tuple=True)
    cdf = scored.logp[rows].double().exp_().cumsum_(-1)
    u = torch.rand((cdf.shape[0], 1), generator=generator, dtype=torch.float64) * cdf[:, -1:]
    picked = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    drawn[rows] = picked.clamp_(max=cdf.shape[-1] - 1)
    return drawn


def entropy_bound_accept(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """Accept the k lowest-entropy positions while ``sum(H) - max(H) <= bound`` (per row).

    Sum minus max bounds the joint mutual information of the accepted tokens, so they are close to
    independent and can be committed together.
    """
    sorted_h, order = torch.sort(entropy, dim=-1, descending=False)
    cumulative = torch.cumsum(sorted_h, dim=-1)
    keep_sorted = cumulative - sorted_h <= bound
    return torch.scatter(torch.zeros_like(keep_sorted), dim=-1, index=order, src=keep_sorted)


def renoise(
    accepted_canvas: torch.Tensor, accepted: torch.Tensor, vocab_size: int, generator: torch.Generator
) -> torch.Tensor:
    """Every position the sampler did not accept gets a fresh uniform token (may revise it later)."""
    fresh = uniform_canvas(tuple(accepted_canvas.shape), vocab_size, generator, accepted_canvas.device)
    return torch.where(~accepted, fresh, accepted_canvas)


class StableAndConfident:
    """Stop when the argmax canvas is unchanged for ``stability`` steps and mean entropy < threshold."""

    def __init__(self, stability: int, confidence: float) -> None:
        self.stability = stability
        self.confidence = confidence
        self._history: torch.Tensor | None = None

    def reset(self) -> None:
        self._history = None

    def __call__(self, argmax: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
        if self.stability == 0:
            stable = torch.ones(argmax.shape[0], dtype=torch.bool, device=argmax.device)
        else:
            if self._history is None:
                self._history = torch.full(
                    (self.stability, *argmax.shape), -1, dtype=argmax.dtype, device=argmax.device
                )
            stable = (self._history == argmax[None]).all(dim=-1).all(dim=0)
            self._history = torch.roll(self._history, shifts=-1, dims=0)
            self._history[-1] = argmax
        confident = entropy.mean(dim=-1) < self.confidence
        return stable & confident


def warm_start_canvas(
    original: torch.Tensor, strength: float, vocab_size: int, generator: torch.Generator
) -> torch.Tensor:
    """The original tokens with a fraction ``strength`` of positions replaced by uniform noise.

    Diffusion's img2img for text: the job then enters the schedule at the matching step.
    """
    length = original.shape[-1]
    count = round(strength * length)
    order = torch.randperm(length, generator=generator, device=original.device)
    noisy = torch.zeros(length, dtype=torch.bool, device=original.device)
    noisy[order[:count]] = True
    fresh = uniform_canvas(tuple(original.shape), vocab_size, generator, original.device)
    return torch.where(noisy, fresh, original)


def start_step(strength: float, max_steps: int) -> int:
    """The remaining-steps counter a warm start enters the schedule at (``max_steps`` for strength 1)."""
    return max(1, min(max_steps, round(strength * max_steps)))
