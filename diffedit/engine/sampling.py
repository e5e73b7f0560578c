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
    probs: torch.Tensor | None = None  # exp(logp) in float32, kept by the fast path for its CPU draw


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


# A logit this far below its row's top has probability under e^-64 (1.6e-28) of the top's: never drawn
# (the float64 CDF steps over it), nothing in the entropy; see ``floor_far_tail_``.
TAIL_NATS = 64.0
# Logits at or below this are forbidden (the loop writes -1e30 there); the floor leaves their rows be.
FORBIDDEN_BELOW = -1e29


def floor_far_tail_(logits: torch.Tensor) -> torch.Tensor:
    """Raise every logit more than ``TAIL_NATS`` below its row's top to that floor, in place.

    The draw, the entropy and the next step's self-conditioning softmax stay as they were to within far
    less than float32 rounding, but ``exp`` no longer underflows: on the CPU, exp, softmax and log-softmax
    of a row whose tail lies hundreds of nats down take several times as long (underflow is a slow path).
    Rows holding a forbidden entry (at -1e30) are left as they are.
    """
    floor = logits.amax(dim=-1, keepdim=True) - TAIL_NATS
    # A row with a forbidden entry (the first position of a rewrite's first canvas) keeps its tail as it is.
    has_forbidden = logits.amin(dim=-1, keepdim=True) <= FORBIDDEN_BELOW
    return logits.clamp_(min=floor.masked_fill_(has_forbidden, -torch.inf))


def score_fast(logits: torch.Tensor) -> Scored:
    """One log-softmax gives the entropy (shared by acceptance and stopping) and the draw's weights.

    Floors the far tail of ``logits`` in place first (:func:`floor_far_tail_`), so the caller's tensor, which
    becomes the next step's self-conditioning, gets the cheap exp as well.
    """
    return FastScorer()(logits)


class FastScorer:
    """:func:`score_fast`, keeping its three vocabulary-sized intermediates (log-probabilities, probabilities,
    their product) in buffers from one call to the next: on the CPU a fresh tensor of that size per operation
    costs page faults at every step. One per denoising run: each call's ``Scored`` is read before the next.
    """

    def __init__(self) -> None:
        self._buffers: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def __call__(self, logits: torch.Tensor) -> Scored:
        logits = floor_far_tail_(logits)
        x = logits.float()
        if self._buffers is None or self._buffers[0].shape != x.shape or self._buffers[0].device != x.device:
            self._buffers = (torch.empty_like(x), torch.empty_like(x), torch.empty_like(x))
        logp, probs, product = self._buffers
        torch.log_softmax(x, dim=-1, out=logp)
        torch.exp(logp, out=probs)
        entropy = torch.mul(probs, logp, out=product).sum(-1).neg_()
        return Scored(logits, torch.argmax(logits, dim=-1), entropy, logp, probs)


def draw_fast(scored: Scored, accepted: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """An exact draw from ``p`` at every position whose draw is kept.

    On a GPU: the exponential race, ``argmax(log p - log E)`` with ``E ~ Exp(1)``, over every row
    (selecting rows would need a host sync, and random numbers are cheap there). On the CPU, where
    a vocabulary's worth of exponentials per row costs as much as a small model's forward: only the
    accepted rows (the rest are re-noised), by inverse CDF (:func:`inverse_cdf`), one uniform per row, over
    the float32 probabilities the entropy was computed from (each within float32 rounding of ``exp(logp)``).
    """
    assert scored.logp is not None and scored.probs is not None
    if scored.logp.device.type != "cpu":
        noise = torch.empty_like(scored.logp).exponential_(1.0, generator=generator)
        return torch.argmax(scored.logp - noise.log(), dim=-1)
    drawn = scored.argmax.clone()
    vocab = scored.probs.shape[-1]
    flat = accepted.reshape(-1)
    rows = flat.nonzero().squeeze(1)
    probs = scored.probs.reshape(-1, vocab)
    if rows.numel() == 0:
        return drawn
    if rows.numel() < flat.numel():
        probs = probs.index_select(0, rows)
    u = torch.rand((rows.numel(), 1), generator=generator, dtype=torch.float64)
    drawn.view(-1)[rows] = inverse_cdf(probs, u)
    return drawn


CDF_BLOCK = 64


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Per row, the first index whose cumulative probability exceeds ``u`` times the row's total.

    ``probs``: (rows, vocab) float32, not necessarily normalised; ``u``: (rows, 1) float64 in [0, 1). The
    same pick as ``searchsorted(cumsum(probs, float64), u * total, right=True)`` (float64, so rounding cannot
    starve the tail of a large vocabulary), in two levels: block sums of ``CDF_BLOCK`` tokens locate the
    block, then a cumulative sum inside that block alone locates the token, so the float64 pass over the
    whole vocabulary is one summation rather than a conversion and a cumulative sum. A token of probability
    zero is never picked, even where the two levels' float64 roundings disagree.
    """
    rows, vocab = probs.shape
    pad = -vocab % CDF_BLOCK
    if pad:
        probs = torch.nn.functional.pad(probs, (0, pad))
    blocks = probs.view(rows, (vocab + pad) // CDF_BLOCK, CDF_BLOCK)
    mass = blocks.sum(-1, dtype=torch.float64)  # (rows, n_blocks)
    cumulative = mass.cumsum(-1)
    target = u * cumulative[:, -1:]
    block = torch.searchsorted(cumulative, target, right=True)
    last_block = _last_positive(mass)
    block = torch.minimum(block, last_block)
    before = torch.where(block > 0, cumulative.gather(1, (block - 1).clamp_(min=0)), 0.0)
    inside = blocks.gather(1, block[..., None].expand(rows, 1, CDF_BLOCK)).squeeze(1)  # (rows, CDF_BLOCK)
    inner = before + inside.cumsum(-1, dtype=torch.float64)
    token = torch.minimum(torch.searchsorted(inner, target, right=True), _last_positive(inside))
    return (block * CDF_BLOCK + token).squeeze(1)


def _last_positive(x: torch.Tensor) -> torch.Tensor:
    """(rows, 1): the last index of each row where ``x > 0`` (0 where none is)."""
    index = torch.arange(x.shape[-1], device=x.device)
    return torch.where(x > 0, index, 0).amax(-1, keepdim=True)


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
