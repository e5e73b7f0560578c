"""The native DiffusionGemma computes exactly what transformers' does: weights, tables, logits, tokens.

Two checkpoints: the bundled demo model, and a random one of another shape saved to a temp folder (other
hidden size, so the embedding scale is not a power of two; sliding window 8, shorter than every context
here, so the sliding masks and the cache's window matter; full-attention layers with their own head size and
key/value heads; other rope parameters, softcap and norm epsilon). Each in float32 and bfloat16.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from diffedit.engine.decoder import CanvasDecoder, EncodedContext
from diffedit.engine.denoise import DenoiseOptions, denoise
from diffedit.engine.engine import Engine
from diffedit.engine.loader import default_model_path, load_model
from diffedit.engine.static_cache import StaticCanvasCache
from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob
from diffedit.rewrites import build_job
from tests.checkpoints import build_checkpoint

SLIDING_WINDOW = 8
DTYPES = ("fp32", "bf16")
DOC = (
    "# Notes\n\nThe first paragraph says hello to the reader.\n\n"
    "The second one is the target of the rewrite, with a few more words.\n\n"
    "- an item\n- another item\n\nEnd.\n"
)


def build_other_shape(folder: Path) -> Path:
    """A random checkpoint unlike the demo in every setting the native config reader resolves."""
    return build_checkpoint(
        folder,
        canvas_length=12,
        hidden=48,
        layers=4,
        seed=3,
        dtype=torch.bfloat16,
        text_overrides=dict(
            sliding_window=SLIDING_WINDOW,
            layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
            global_head_dim=16,
            num_global_key_value_heads=1,
            num_attention_heads=4,
            num_key_value_heads=2,
            num_experts=3,
            top_k_experts=2,
            final_logit_softcapping=20.0,
            rms_norm_eps=1e-5,
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 5000.0},
                "full_attention": {
                    "rope_type": "proportional",
                    "partial_rotary_factor": 0.5,
                    "rope_theta": 100000.0,
                },
            },
        ),
    )


@pytest.fixture(scope="module")
def other_shape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_other_shape(tmp_path_factory.mktemp("native") / "other-shape")


@pytest.fixture(scope="module", params=["demo", "other"])
def checkpoint(request: pytest.FixtureRequest, other_shape: Path) -> Path:
    return default_model_path() if request.param == "demo" else other_shape


@pytest.fixture(scope="module", params=DTYPES)
def pair(request: pytest.FixtureRequest, checkpoint: Path) -> tuple[Any, Any]:
    """(transformers, native) loads of one checkpoint in one dtype."""
    theirs = load_model(checkpoint, "cpu", request.param, impl="transformers")
    ours = load_model(checkpoint, "cpu", request.param, impl="native")
    assert (theirs.implementation, ours.implementation) == ("transformers", "native")
    return theirs, ours


def test_every_tensor_the_model_computes_with_is_the_same(pair: tuple[Any, Any]) -> None:
    theirs, ours = pair[0].model, pair[1].model
    expected = theirs.model.decoder.state_dict()
    got = ours.model.decoder.state_dict()
    assert set(got) <= set(expected)
    for name, tensor in got.items():
        assert tensor.dtype == expected[name].dtype, name
        assert torch.equal(tensor, expected[name]), name
    for kind in theirs.model.decoder.unique_layer_types:  # non-persistent: computed, not loaded
        name = f"{kind}_inv_freq"
        a, b = getattr(theirs.model.decoder.rotary_emb, name), getattr(ours.model.decoder.rotary_emb, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    a, b = theirs.model.decoder.embed_tokens.embed_scale, ours.model.decoder.embed_tokens.embed_scale
    assert a.dtype == b.dtype and torch.equal(a, b)
    encoder_layers = theirs.model.encoder.language_model.layers
    for i, layer in enumerate(encoder_layers):  # the one encoder tensor not tied to the decoder's
        assert torch.equal(getattr(ours.model.encoder, f"layer_scalar_{i}"), layer.layer_scalar)
    assert ours.lm_head.weight is ours.model.decoder.embed_tokens.weight
    assert ours.final_logit_softcapping == theirs.final_logit_softcapping


def test_the_config_resolves_as_transformers_resolves_it(pair: tuple[Any, Any]) -> None:
    theirs, ours = pair[0].model.config, pair[1].model.config
    text = theirs.get_text_config()
    mine = ours.get_text_config(decoder=True)
    assert mine.layer_types == text.layer_types
    assert ours.canvas_length == theirs.canvas_length
    for i in range(text.num_hidden_layers):
        layer = text.per_layer_config[i]
        assert (mine.head_dims[i], mine.kv_heads[i]) == (layer.head_dim, layer.num_key_value_heads)


def _logits(loaded: Any, prompts: list[torch.Tensor], canvas: torch.Tensor) -> list[torch.Tensor]:
    """Encoder appends, then three decoder steps: no self-conditioning, self-conditioned, and through the
    static canvas cache (as the denoising loop runs it)."""
    model = loaded.model
    with torch.inference_mode():
        context = EncodedContext(model)
        for ids in prompts:
            context.append(ids)
        masks, positions = context.canvas_inputs(torch.device("cpu"))
        decoder = CanvasDecoder(model, masks, context.cache, positions)
        first = decoder(canvas, None)
        second = decoder(canvas, first.to(decoder.self_cond_dtype))
        with StaticCanvasCache(context.cache, context.canvas_length).installed(model):
            third = decoder(canvas, second.to(decoder.self_cond_dtype))
    return [first, second, third]


@pytest.mark.parametrize("lengths", [(40,), (40, 9, 1), (3, 5), (1,)])
def test_logits_are_bitwise_transformers(pair: tuple[Any, Any], lengths: tuple[int, ...]) -> None:
    theirs, ours = pair
    vocab = int(theirs.model.config.text_config.vocab_size)
    g = torch.Generator().manual_seed(sum(lengths))
    prompts = [torch.randint(0, vocab, (1, n), generator=g) for n in lengths]
    canvas = torch.randint(0, vocab, (1, int(theirs.model.config.canvas_length)), generator=g)
    expected, got = _logits(theirs, prompts, canvas), _logits(ours, prompts, canvas)
    for a, b in zip(expected, got, strict=True):
        assert a.dtype == b.dtype == torch.float32
        assert torch.equal(a, b)


def test_the_other_shape_exercises_the_sliding_window(other_shape: Path) -> None:
    ours = load_model(other_shape, "cpu", "fp32", impl="native")
    context = EncodedContext(ours.model)
    with torch.inference_mode():
        context.append(torch.arange(40)[None] % 300)
        masks = ours.model.model.encoder.create_masks_for_generate(
            config=ours.model.config,
            inputs_embeds=torch.empty((1, 9, 0)),
            attention_mask=torch.ones((1, 49), dtype=torch.bool),
            cache=context.cache,
            position_ids=torch.arange(40, 49)[None],
        )
    sliding = context.cache.layers[0]
    assert sliding.is_sliding and sliding.keys.shape[-2] == SLIDING_WINDOW - 1  # the window, not 40
    assert context.cache.layers[1].keys.shape[-2] == 40
    window = masks["sliding_attention"]
    assert window is not None and window.shape[-1] == SLIDING_WINDOW - 1 + 9
    assert not bool(window.all())  # the window hides keys some queries would otherwise see


def _engines(checkpoint: Path, dtype: str) -> tuple[Engine, Engine]:
    return (
        Engine.load(checkpoint, device="cpu", dtype=dtype, impl="transformers"),
        Engine.load(checkpoint, device="cpu", dtype=dtype, impl="native"),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_seed_rewrites_give_the_same_tokens(checkpoint: Path, dtype: str) -> None:
    theirs, ours = _engines(checkpoint, dtype)
    assert (theirs.defaults, theirs.eos_ids, theirs.pad_id) == (ours.defaults, ours.eos_ids, ours.pad_id)
    start, end = DOC.index("The second"), DOC.index("\n\n- an item")
    jobs = [
        RewriteJob(
            EditRequest.from_document(DOC, start, end), GenerationSettings(seed=11, steps=6), job_id=1
        ),
        # two blocks, shape-true: the batched path (one row per block, padded contexts)
        build_job(DOC, start, DOC.index("\n\nEnd."), GenerationSettings(seed=12, steps=6)),
    ]
    for job in jobs:
        a, b = theirs.rewrite(job), ours.rewrite(job)
        assert a.token_ids == b.token_ids and a.text == b.text
        assert (a.steps, a.canvases, a.batched_rows) == (b.steps, b.canvases, b.batched_rows)
    assert ours.rewrite(jobs[1]).batched_rows > 1  # the second job really ran as a batch
    alt_a = theirs.alternatives(jobs[0], 2)
    alt_b = ours.alternatives(jobs[0], 2)
    assert [r.token_ids for r in alt_a.candidates] == [r.token_ids for r in alt_b.candidates]


def test_reference_draws_give_the_same_tokens_on_both(other_shape: Path) -> None:
    theirs, ours = _engines(other_shape, "fp32")
    prompt = [2, 5, 40, 41, 42, 43, 4, 50, 51, 6] * 2  # longer than the sliding window
    out = []
    for eng in (theirs, ours):
        sampler = dataclasses.replace(eng.defaults, max_steps=6)
        options = DenoiseOptions(sampler, eng.eos_ids, eng.pad_id, max_canvases=3, mode="reference")
        out.append(denoise(eng.model, prompt, options, torch.Generator().manual_seed(4)))
    assert out[0].tokens == out[1].tokens
    assert out[0].canvases == out[1].canvases > 1  # finished canvases were appended to the cache
