"""Reference mode reproduces transformers' DiffusionGemmaForBlockDiffusion.generate token for token."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from diffedit.engine.denoise import DenoiseOptions, denoise
from diffedit.engine.engine import Engine
from tests.checkpoints import build_checkpoint


def _reference_tokens(
    engine: Engine, prompt: list[int], seed: int, max_new_tokens: int, steps: int
) -> list[int]:
    torch.manual_seed(seed)
    out = engine.model.generate(
        torch.tensor([prompt]), max_new_tokens=max_new_tokens, max_denoising_steps=steps
    )
    return out.sequences[0, len(prompt) :].tolist(), float(out.tokens_per_forward[0])


def _ours(engine: Engine, prompt: list[int], seed: int, canvases: int, steps: int):
    sampler = dataclasses.replace(engine.defaults, max_steps=steps)
    options = DenoiseOptions(sampler, engine.eos_ids, engine.pad_id, max_canvases=canvases, mode="reference")
    return denoise(engine.model, prompt, options, torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def engine(tiny_checkpoint: Path) -> Engine:
    return Engine.load(tiny_checkpoint)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_one_canvas_matches_reference(engine: Engine, seed: int) -> None:
    prompt = [2, 5, 40, 41, 42, 43, 4, 50, 51, 6]
    ref, _ = _reference_tokens(engine, prompt, seed, engine.canvas_length, steps=8)
    ours = _ours(engine, prompt, seed, canvases=1, steps=8)
    assert ours.tokens == ref
    assert ours.forwards == 8  # random weights never stop early at the default thresholds


def test_several_canvases_match_reference(engine: Engine) -> None:
    prompt = [2, 5, 60, 61, 4, 62, 63, 64, 6]
    ref, _ = _reference_tokens(engine, prompt, 3, 3 * engine.canvas_length, steps=6)
    ours = _ours(engine, prompt, 3, canvases=3, steps=6)
    assert ours.canvases == len(ref) // engine.canvas_length
    assert ours.tokens == ref
    assert len(ref) > engine.canvas_length  # really more than one canvas


def test_early_stop_matches_reference(tmp_path: Path) -> None:
    # A huge confidence threshold and a cold temperature let random weights settle, so the stop fires early.
    ck = build_checkpoint(
        tmp_path / "eager", confidence_threshold=1e9, max_steps=24, seed=5, t_min=0.005, t_max=0.01
    )
    eng = Engine.load(ck)
    prompt = [2, 5, 70, 71, 4, 72, 6]
    for seed in range(4):
        ref, tpf = _reference_tokens(eng, prompt, seed, eng.canvas_length, steps=24)
        ours = _ours(eng, prompt, seed, canvases=1, steps=24)
        assert ours.tokens == ref
        assert ours.forwards < 24
        assert len(set(ours.tokens)) > 4  # settled on varied text, not one repeated token
        assert tpf == pytest.approx(eng.canvas_length / ours.forwards)
