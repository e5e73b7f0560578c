"""The sampler's parts alone: draws follow the model's distribution on every device; acceptance; stopping."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from diffedit.engine.sampling import (
    DrawMethod,
    SamplerConfig,
    draw_fast,
    draw_method,
    draw_reference,
    empty_history,
    entropy_bound_accept,
    inverse_cdf,
    remember,
    score_fast,
    score_reference,
    settled,
    start_step,
    temperature,
    warm_start_canvas,
)

# chi-square critical value, 5 degrees of freedom, p = 0.001
CHI2_CRIT_DF5 = 20.515
CHI2_CRIT_DF6 = 22.458


def _chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


# Every device this machine has: the GPU's draw (the exponential race) is tested where it runs.
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _draw_counts(
    mode: str,
    logits_row: torch.Tensor,
    draws: int,
    seed: int,
    accepted: torch.Tensor | None = None,
    device: str = "cpu",
    method: DrawMethod | None = None,
) -> torch.Tensor:
    """How often each token is drawn at ``draws`` positions whose logits are all ``logits_row``, with the
    tensors and the generator on ``device`` (``method`` None: the device's own draw)."""
    logits = logits_row.to(device).expand(1, draws, logits_row.shape[-1]).contiguous()
    if accepted is None:
        accepted = torch.ones((1, draws), dtype=torch.bool)
    accepted = accepted.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if mode == "reference":
        picked = draw_reference(score_reference(logits), accepted, generator)
    else:
        picked = draw_fast(score_fast(logits), accepted, generator, method)
    assert picked.device.type == torch.device(device).type
    return torch.bincount(picked[accepted].cpu(), minlength=logits_row.shape[-1]).float()


@pytest.mark.parametrize("mode", ["fast", "reference"])
def test_sampler_draws_the_softmax_distribution(mode: str) -> None:
    logits_row = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 0.3])
    probs = torch.softmax(logits_row, -1)
    counts = _draw_counts(mode, logits_row, 40_000, seed=11)
    assert _chi_square(counts, probs) < CHI2_CRIT_DF5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", ["race", "inverse_cdf"])
def test_each_draw_method_follows_the_softmax_on_every_device(device: str, method: DrawMethod) -> None:
    # The exponential race is what GPUs draw with; it runs on the CPU too, so it is tested on every machine.
    logits_row = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 0.3])
    counts = _draw_counts("fast", logits_row, 40_000, seed=13, device=device, method=method)
    assert counts.sum() == 40_000
    assert _chi_square(counts, torch.softmax(logits_row, -1)) < CHI2_CRIT_DF5


@pytest.mark.parametrize("device", DEVICES)
def test_the_devices_own_draw_follows_the_softmax(device: str) -> None:
    # As the loop calls it: the method the device picks (the race on a GPU, inverse CDF on the CPU).
    logits_row = torch.tensor([0.2, 1.5, -0.5, 0.0, 1.0, 0.7])
    assert draw_method(torch.device(device)) == ("inverse_cdf" if device == "cpu" else "race")
    counts = _draw_counts("fast", logits_row, 40_000, seed=21, device=device)
    assert _chi_square(counts, torch.softmax(logits_row, -1)) < CHI2_CRIT_DF5


def test_fast_draws_at_accepted_positions_follow_the_distribution() -> None:
    # Only the accepted positions' draws are kept, so only they are drawn; they must still be exact.
    logits_row = torch.tensor([0.2, 1.5, -0.5, 0.0, 1.0, 0.7])
    accepted = torch.rand((1, 80_000), generator=torch.Generator().manual_seed(3)) < 0.5
    counts = _draw_counts("fast", logits_row, 80_000, seed=5, accepted=accepted)
    assert counts.sum() == accepted.sum()
    assert _chi_square(counts, torch.softmax(logits_row, -1)) < CHI2_CRIT_DF5


def test_chi_square_catches_a_wrong_distribution() -> None:
    # The test above has power: the same draws judged against a uniform distribution fail it badly.
    logits_row = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 0.3])
    counts = _draw_counts("fast", logits_row, 40_000, seed=11)
    assert _chi_square(counts, torch.full((6,), 1 / 6)) > 10 * CHI2_CRIT_DF5


def test_fast_and_reference_agree_on_argmax_and_entropy() -> None:
    logits = torch.randn(2, 32, 50, generator=torch.Generator().manual_seed(0)) * 3
    fast = score_fast(logits)
    ref = score_reference(logits)
    assert torch.equal(fast.argmax, ref.argmax)
    assert torch.allclose(fast.entropy, ref.entropy, atol=1e-5)


def test_entropy_bound_accepts_lowest_entropy_positions_within_bound() -> None:
    entropy = torch.tensor([[0.5, 0.01, 0.02, 0.9, 0.03]])
    # sorted: 0.01, 0.02, 0.03, 0.5, 0.9; cum - self: 0, 0.01, 0.03, 0.06, 0.56
    accepted = entropy_bound_accept(entropy, bound=0.1)
    assert accepted.tolist() == [[True, True, True, False, True]]
    # The lowest-entropy position is always accepted, so every step makes progress.
    assert entropy_bound_accept(torch.tensor([[5.0, 6.0]]), bound=0.0).tolist() == [[True, False]]


def test_stopping_needs_a_stable_and_confident_canvas() -> None:
    cfg = SamplerConfig(10, 0.1, 0.4, 0.8, stability_threshold=1, confidence_threshold=0.1)
    canvas = torch.tensor([[4, 5, 6]])
    low = torch.full((1, 3), 0.01)
    history = empty_history(cfg, (1, 3), torch.device("cpu"))
    assert not bool(settled(history, canvas, low, 0.1))  # nothing to compare with yet
    history = remember(history, canvas)
    assert bool(settled(history, canvas, low, 0.1))  # unchanged and confident
    assert not bool(settled(history, canvas, torch.full((1, 3), 1.0), 0.1))  # unchanged but unsure
    assert not bool(settled(history, torch.tensor([[4, 5, 7]]), low, 0.1))  # confident but changed


def test_stability_counts_the_last_canvases() -> None:
    two = SamplerConfig(10, 0.1, 0.4, 0.8, stability_threshold=2, confidence_threshold=0.1)
    a, b, low = torch.tensor([[1, 2]]), torch.tensor([[1, 3]]), torch.full((1, 2), 0.01)
    history = remember(remember(empty_history(two, (1, 2), torch.device("cpu")), b), a)
    assert not bool(settled(history, a, low, 0.1))  # equal to the last canvas, not to the one before
    assert bool(settled(remember(history, a), a, low, 0.1))
    none = empty_history(dataclasses.replace(two, stability_threshold=0), (1, 2), torch.device("cpu"))
    assert bool(settled(none, a, low, 0.1)) and not bool(settled(none, a, torch.ones((1, 2)), 0.1))


def test_temperature_runs_linearly_from_t_max_to_t_min() -> None:
    cfg = SamplerConfig(
        max_steps=10,
        entropy_bound=0.1,
        t_min=0.4,
        t_max=0.8,
        stability_threshold=1,
        confidence_threshold=0.005,
    )
    assert float(temperature(cfg, torch.tensor(10, dtype=torch.int32))) == pytest.approx(0.8)
    assert float(temperature(cfg, torch.tensor(5, dtype=torch.int32))) == pytest.approx(0.6)
    assert float(temperature(cfg, torch.tensor(0, dtype=torch.int32))) == pytest.approx(0.4)


@pytest.mark.parametrize("strength", [0.1, 0.3, 0.5, 0.9])
def test_warm_start_renoises_the_requested_share(strength: float) -> None:
    original = torch.arange(100, 164)[None]
    canvas = warm_start_canvas(original, strength, vocab_size=100, generator=torch.Generator().manual_seed(0))
    # fresh tokens come from [0, 100) and the original ids are >= 100, so changed positions are exact
    assert int((canvas != original).sum()) == round(strength * 64)


def test_warm_start_enters_the_schedule_at_the_matching_step() -> None:
    assert start_step(1.0, 48) == 48
    assert start_step(0.5, 48) == 24
    assert start_step(0.01, 48) == 1


@pytest.mark.parametrize("vocab", [6, 64, 300, 4096])
def test_two_level_inverse_cdf_picks_what_one_float64_cdf_picks(vocab: int) -> None:
    gen = torch.Generator().manual_seed(vocab)
    logits = torch.randn(64, vocab, generator=gen) * 6
    logits[:8, :3] = -1e30  # forbidden tokens: probability exactly zero
    logits[8:16, vocab // 2 :] = -1e30  # whole blocks of zeros
    probs = torch.softmax(logits, -1)
    u = torch.rand((64, 1), generator=gen, dtype=torch.float64)
    u[0] = 0.0
    u[1] = 1.0 - 2**-53  # the largest uniform: must not run off the end
    cdf = torch.cumsum(probs, -1, dtype=torch.float64)
    expected = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).squeeze(1).clamp(max=vocab - 1)
    picked = inverse_cdf(probs, u)
    assert picked.shape == (64,)
    assert (probs.gather(1, picked[:, None]) > 0).all()  # never a token of probability zero
    # The same token, but where the target lies within float64 rounding of the boundary between two tokens.
    differ = picked != expected
    boundary = cdf.gather(1, torch.minimum(picked, expected)[:, None])
    assert ((boundary - u * cdf[:, -1:]).abs()[differ] < 1e-12).all()
    assert int(differ.sum()) <= 1


def test_fast_draws_follow_a_large_vocabulary_distribution() -> None:
    # Six likely tokens spread over different blocks of a 4096-token vocabulary, the rest improbable.
    vocab = 4096
    likely = torch.tensor([5, 700, 701, 2048, 3000, 4095])
    logits_row = torch.full((vocab,), -12.0)
    logits_row[likely] = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 0.3])
    counts = _draw_counts("fast", logits_row, 40_000, seed=4)
    probs = torch.softmax(logits_row, -1)
    observed = torch.cat([counts[likely], (counts.sum() - counts[likely].sum())[None]])
    expected = torch.cat([probs[likely], (1 - probs[likely].sum())[None]])
    assert _chi_square(observed, expected) < CHI2_CRIT_DF6


def test_fast_draw_with_nothing_accepted_keeps_the_argmax() -> None:
    logits = torch.randn(1, 8, 50, generator=torch.Generator().manual_seed(2))
    scored = score_fast(logits.clone())
    drawn = draw_fast(scored, torch.zeros((1, 8), dtype=torch.bool), torch.Generator().manual_seed(0))
    assert torch.equal(drawn, scored.argmax)
