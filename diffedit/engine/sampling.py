"""The sampler, once: each part of a denoising step as a pure tensor function, composed by both loops.

A step reads the decoder's logits with :func:`read_step` (temperature, forbidden tokens and held positions
(:class:`CanvasConstraints`) applied in place by :func:`prepare_logits_`, the one place logits are changed;
then argmax, entropy, entropy-bound acceptance), draws, forms the next canvas with :func:`next_canvas` (the
one place the canvas is written) and tests for the stop with :func:`settled`. The eager loop
(:mod:`diffedit.engine.denoise`) calls them step by step; the graphed loop (:mod:`diffedit.engine.cuda_graph`)
runs :func:`sample_in_place`, the same functions writing fixed buffers without a host sync.

Two sampling modes:

* ``reference`` makes the same random draws, in the same order, with the same operations as
  transformers' ``DiffusionGemmaForBlockDiffusion.generate`` (multinomial sampling, entropy through
  ``Categorical``), so with the same seed it yields the same tokens.
* ``fast`` samples the same distribution more cheaply: one log-softmax whose entropy serves acceptance and
  stopping, and a draw without ``torch.multinomial`` (:func:`draw_fast`). The draw is the only part that
  differs by device: by inverse CDF at the accepted positions on the CPU, by the exponential race on GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch


@dataclass(frozen=True)
class SamplerConfig:
    """The sampler's settings for one job (defaults come from the checkpoint's generation_config)."""

    max_steps: int
    entropy_bound: float
    t_min: float
    t_max: float
    stability_threshold: int
    confidence_threshold: float


# (positions, token ids), two 1-D long tensors: token ``tokens[i]`` may not appear at ``positions[i]``.
Forbidden = tuple[torch.Tensor, torch.Tensor]
FORBIDDEN_LOGIT = -1e30  # finite: the entropy stays a number


class CanvasConstraints(NamedTuple):
    """What one canvas may hold: ``forbidden`` (position, token) pairs, and ``held`` (position, token) pairs,
    each such position keeping that token from the first step to the last.

    A held position's logits are every token forbidden but its own: its argmax and every draw is that token,
    its entropy is zero (so it is accepted and adds nothing to the entropy bound or the stop test), and
    :func:`next_canvas` writes it back. Free positions are untouched: they draw what they would without.
    """

    forbidden: Forbidden | None = None
    held: Forbidden | None = None


# ---------------------------------------------------------------- canvas starts


def uniform_canvas(
    shape: tuple[int, ...], vocab_size: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """A canvas of uniformly random tokens (the uniform-state diffusion prior)."""
    return torch.randint(0, vocab_size, shape, generator=generator, device=device)


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


# ---------------------------------------------------------------- reading the logits


def temperature(cfg: SamplerConfig, remaining: torch.Tensor) -> torch.Tensor:
    """Linear schedule: ``t_max`` at step N (all noise) down to ``t_min`` at step 0.

    ``remaining`` (an int32 tensor) counts the steps left (N..1). The same tensor operations as transformers'
    ``LinearTemperatureScheduleLogitsProcessor``, so reference mode divides by the identical float.
    """
    return cfg.t_min + ((cfg.t_max - cfg.t_min) * (remaining / cfg.max_steps))


def prepare_logits_(
    logits: torch.Tensor, cfg: SamplerConfig, remaining: torch.Tensor, constraints: CanvasConstraints | None
) -> torch.Tensor:
    """Divide by the temperature, forbid tokens and hold positions, in place: every change to the logits
    before sampling."""
    logits.div_(temperature(cfg, remaining))
    if constraints is None:
        return logits
    if constraints.forbidden is not None:
        positions, tokens = constraints.forbidden
        logits[:, positions, tokens] = FORBIDDEN_LOGIT
    if constraints.held is not None:
        positions, tokens = constraints.held
        logits[:, positions, :] = FORBIDDEN_LOGIT
        logits[:, positions, tokens] = 0.0
    return logits


@dataclass
class Scored:
    """One step's temperature-scaled logits, read once: argmax and entropy at every position."""

    logits: torch.Tensor
    argmax: torch.Tensor
    entropy: torch.Tensor
    logp: torch.Tensor | None = None  # log-softmax, kept by the fast mode for its draw
    probs: torch.Tensor | None = None  # exp(logp) in float32, kept by the fast mode for its CPU draw


def score_reference(logits: torch.Tensor) -> Scored:
    """transformers' operations: argmax, and the entropy through ``Categorical``."""
    entropy = torch.distributions.Categorical(logits=logits).entropy()
    return Scored(logits, torch.argmax(logits, dim=-1), entropy)


# A logit this far below its row's top has probability under e^-64 (1.6e-28) of the top's: never drawn
# (the float64 CDF steps over it), nothing in the entropy; see ``floor_far_tail_``.
TAIL_NATS = 64.0
FORBIDDEN_BELOW = FORBIDDEN_LOGIT / 10  # a logit at or below this is a forbidden token's


def floor_far_tail_(logits: torch.Tensor) -> torch.Tensor:
    """Raise every logit more than ``TAIL_NATS`` below its row's top to that floor, in place.

    The draw, the entropy and the next step's self-conditioning softmax stay as they were to within far
    less than float32 rounding, but ``exp`` no longer underflows: on the CPU, exp, softmax and log-softmax
    of a row whose tail lies hundreds of nats down take several times as long (underflow is a slow path).
    Rows holding a forbidden token are left as they are (the floor would allow it again).
    """
    floor = logits.amax(dim=-1, keepdim=True) - TAIL_NATS
    has_forbidden = logits.amin(dim=-1, keepdim=True) <= FORBIDDEN_BELOW
    return logits.clamp_(min=floor.masked_fill_(has_forbidden, -torch.inf))


VocabBuffers = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def vocab_buffers(shape: tuple[int, ...], device: torch.device) -> VocabBuffers:
    """Three float32 tensors shaped as the logits, for :func:`score_fast` to reuse from step to step: on the
    CPU a fresh tensor of that size per operation costs page faults at every step."""
    logp, probs, product = (torch.empty(shape, dtype=torch.float32, device=device) for _ in range(3))
    return logp, probs, product


def score_fast(logits: torch.Tensor, out: VocabBuffers | None = None) -> Scored:
    """One log-softmax gives the entropy (shared by acceptance and stopping) and the draw's weights.

    Floors the far tail of ``logits`` in place first (:func:`floor_far_tail_`), so the caller's tensor, which
    becomes the next step's self-conditioning, gets the cheap exp as well. ``out``: buffers to write the
    log-probabilities, probabilities and their product into (fresh tensors where None).
    """
    logits = floor_far_tail_(logits)
    x = logits.float()
    logp_out, probs_out, product_out = out if out is not None else (None, None, None)
    logp = torch.log_softmax(x, dim=-1, out=logp_out)
    probs = torch.exp(logp, out=probs_out)
    entropy = torch.mul(probs, logp, out=product_out).sum(-1).neg_()
    return Scored(logits, torch.argmax(logits, dim=-1), entropy, logp, probs)


def entropy_bound_accept(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """Accept the k lowest-entropy positions while ``sum(H) - max(H) <= bound`` (per row).

    Sum minus max bounds the joint mutual information of the accepted tokens, so they are close to
    independent and can be committed together.
    """
    sorted_h, order = torch.sort(entropy, dim=-1, descending=False)
    cumulative = torch.cumsum(sorted_h, dim=-1)
    keep_sorted = cumulative - sorted_h <= bound
    return torch.scatter(torch.zeros_like(keep_sorted), dim=-1, index=order, src=keep_sorted)


def read_step(
    logits: torch.Tensor,
    cfg: SamplerConfig,
    remaining: torch.Tensor,
    constraints: CanvasConstraints | None,
    reference: bool = False,
    out: VocabBuffers | None = None,
) -> tuple[Scored, torch.Tensor]:
    """The decoder's logits read for one step: prepared in place, scored, and which positions are accepted
    (held positions always: their entropy is zero)."""
    logits = prepare_logits_(logits, cfg, remaining, constraints)
    scored = score_reference(logits) if reference else score_fast(logits, out)
    return scored, entropy_bound_accept(scored.entropy, cfg.entropy_bound)


# ---------------------------------------------------------------- drawing


def draw_reference(scored: Scored, accepted: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A multinomial draw at every position, in transformers' order (the RNG stream must match)."""
    batch, length, vocab = scored.logits.shape
    probs = torch.softmax(scored.logits, dim=-1, dtype=torch.float32)
    drawn = torch.multinomial(probs.view(-1, vocab), num_samples=1, generator=generator)
    return drawn.squeeze(-1).view(batch, length)


DrawMethod = Literal["race", "inverse_cdf"]


def draw_method(device: torch.device) -> DrawMethod:
    """Inverse CDF on the CPU, where a vocabulary's worth of exponentials per row costs as much as a small
    model's forward; the exponential race elsewhere (selecting rows would need a host sync)."""
    return "inverse_cdf" if device.type == "cpu" else "race"


def race_noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Exp(1) noise shaped as the logits, for :func:`race`."""
    return torch.empty(like.shape, dtype=torch.float32, device=like.device).exponential_(
        1.0, generator=generator
    )


def race(logp: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The exponential race, ``argmax(log p - log E)`` with ``E ~ Exp(1)``: an exact draw from ``p`` per row
    (Gumbel-max in disguise)."""
    return torch.argmax(logp - noise.log(), dim=-1)


def draw_fast(
    scored: Scored, accepted: torch.Tensor, generator: torch.Generator, method: DrawMethod | None = None
) -> torch.Tensor:
    """An exact draw from ``p`` at every position whose draw is kept (the others are re-noised).

    ``method`` (by default :func:`draw_method` of the device): ``race`` draws every row at once;
    ``inverse_cdf`` only the accepted rows, one uniform per row, over the float32 probabilities the entropy
    was computed from (:func:`inverse_cdf`), leaving the argmax elsewhere.
    """
    assert scored.logp is not None and scored.probs is not None
    if (method or draw_method(scored.logp.device)) == "race":
        return race(scored.logp, race_noise(scored.logp, generator))
    drawn = scored.argmax.clone()
    vocab = scored.probs.shape[-1]
    flat = accepted.reshape(-1)
    rows = flat.nonzero().squeeze(1)
    probs = scored.probs.reshape(-1, vocab)
    if rows.numel() == 0:
        return drawn
    if rows.numel() < flat.numel():
        probs = probs.index_select(0, rows)
    u = torch.rand((rows.numel(), 1), generator=generator, dtype=torch.float64, device=probs.device)
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


# ---------------------------------------------------------------- the next canvas and the stop


def next_canvas(
    accepted: torch.Tensor,
    drawn: torch.Tensor,
    fresh: torch.Tensor,
    constraints: CanvasConstraints | None = None,
) -> torch.Tensor:
    """The draw where accepted; a fresh uniform token elsewhere (re-noised: the sampler may revise it);
    held positions keep their token, never re-noised."""
    canvas = torch.where(accepted, drawn, fresh)
    if constraints is not None and constraints.held is not None:
        positions, tokens = constraints.held
        canvas[:, positions] = tokens
    return canvas


def hold(canvas: torch.Tensor, constraints: CanvasConstraints | None) -> torch.Tensor:
    """A starting canvas with its held tokens laid in (so the first forward already sees them)."""
    if constraints is None or constraints.held is None:
        return canvas
    canvas = canvas.clone()
    positions, tokens = constraints.held
    canvas[:, positions] = tokens
    return canvas


def empty_history(cfg: SamplerConfig, argmax_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """No earlier argmax canvases yet: ``stability_threshold`` rows of -1, which no token equals."""
    return torch.full((cfg.stability_threshold, *argmax_shape), -1, dtype=torch.long, device=device)


def settled(
    history: torch.Tensor, argmax: torch.Tensor, entropy: torch.Tensor, confidence: float
) -> torch.Tensor:
    """(batch,): the argmax canvas equals each of the last ones in ``history`` and the mean entropy is below
    ``confidence`` (stable and confident: the adaptive stop)."""
    stable = (history == argmax[None]).all(dim=-1).all(dim=0)
    return stable & (entropy.mean(dim=-1) < confidence)


def remember(history: torch.Tensor, argmax: torch.Tensor) -> torch.Tensor:
    """``history`` with its oldest argmax canvas dropped and ``argmax`` appended."""
    return torch.cat([history, argmax[None]])[1:]


# ---------------------------------------------------------------- the graphed loop's step


class StepState(NamedTuple):
    """What a graphed step reads and writes, in fixed buffers."""

    canvas: torch.Tensor  # (1, L) the next forward's input
    self_cond: torch.Tensor  # (1, L, vocab) the previous step's logits
    argmax: torch.Tensor  # (1, L)
    accepted: torch.Tensor  # (1, L) bool
    entropy: torch.Tensor  # (1, L)
    history: torch.Tensor  # (stability, 1, L) the last argmax canvases
    remaining: torch.Tensor  # () int32 steps left
    done: torch.Tensor  # (1,) bool, set once the canvas has settled


def sample_in_place(
    logits: torch.Tensor,
    noise: torch.Tensor,
    fresh: torch.Tensor,
    constraints: CanvasConstraints | None,
    cfg: SamplerConfig,
    state: StepState,
) -> None:
    """One step of the sampler above for a loop that never synchronises the host: the exponential race
    (``noise`` from :func:`race_noise`, ``fresh`` re-noising tokens, both drawn outside from the job's
    generator), then every buffer of ``state`` updated in place, unless ``done`` was already set, in which
    case the step changes nothing."""
    scored, accepted = read_step(logits, cfg, state.remaining, constraints)
    assert scored.logp is not None  # the fast mode's scoring keeps it
    canvas = next_canvas(accepted, race(scored.logp, noise), fresh, constraints)
    finished = settled(state.history, scored.argmax, scored.entropy, cfg.confidence_threshold)

    frozen = state.done  # set by an earlier step: this one changes nothing
    keep = frozen[:, None]
    state.canvas.copy_(torch.where(keep, state.canvas, canvas))
    state.self_cond.copy_(
        torch.where(keep[..., None], state.self_cond, scored.logits.to(state.self_cond.dtype))
    )
    state.argmax.copy_(torch.where(keep, state.argmax, scored.argmax))
    state.accepted.copy_(torch.where(keep, state.accepted, accepted))
    state.entropy.copy_(torch.where(keep, state.entropy, scored.entropy))
    state.history.copy_(
        torch.where(frozen[None, :, None], state.history, remember(state.history, scored.argmax))
    )
    state.remaining.copy_(torch.where(frozen[0], state.remaining, state.remaining - 1))
    state.done.copy_(frozen | finished)
