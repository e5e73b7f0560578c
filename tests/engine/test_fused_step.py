"""The fused decoder step: uncompiled it is the model bit for bit, compiled it stays within rounding, and a
compiler that fails costs speed, never the rewrite."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from diffedit.engine import denoise as denoise_mod
from diffedit.engine import fused_step
from diffedit.engine.denoise import DenoiseOptions, DenoiseOutcome, denoise
from diffedit.engine.fused_step import PLAIN, FusedCanvasDecoder, StepKernels, compiled_kernels
from diffedit.engine.loader import load_model
from diffedit.engine.sampling import CanvasConstraints, SamplerConfig, StepState
from diffedit.engine.static_cache import StaticCanvasCache
from tests.checkpoints import build_checkpoint
from tests.engine.test_sampling import CHI2_CRIT_DF5, DEVICES, _chi_square
from tests.helpers.context import encode_context
from tests.helpers.kernels import broken_kernels

needs_compiler = pytest.mark.skipif(
    shutil.which("g++") is None and shutil.which("c++") is None,
    reason="torch.compile on the CPU needs a C++ compiler",
)


@pytest.fixture(scope="module")
def k_eq_v_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five sliding layers and one full layer whose values are its keys, with a larger head, as 26B-A4B."""
    return build_checkpoint(
        tmp_path_factory.mktemp("k-eq-v") / "ckpt",
        layers=6,
        text_overrides={"attention_k_eq_v": True, "global_head_dim": 64, "num_global_key_value_heads": 1},
    )


class _Canvas:
    """A context encoded into the cache, a canvas's masks and positions: what a decoder step reads."""

    def __init__(self, model: Any, context: int, seed: int = 0) -> None:
        self.model = model
        self.vocab = int(model.config.text_config.vocab_size)
        self.length = int(model.config.canvas_length)
        self.gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, self.vocab, (1, context), generator=self.gen)
        self.cache, self.masks, self.positions = encode_context(model, ids)
        self.canvas = self.random_canvas()

    def random_canvas(self) -> torch.Tensor:
        return torch.randint(0, self.vocab, (1, self.length), generator=self.gen)

    def model_logits(self, canvas: torch.Tensor, self_cond: torch.Tensor | None) -> torch.Tensor:
        with torch.no_grad():
            out: torch.Tensor = self.model(
                decoder_input_ids=canvas,
                self_conditioning_logits=self_cond,
                decoder_attention_mask=self.masks,
                cache=self.cache,
                decoder_position_ids=self.positions,
            ).logits
        return out

    def fused(self, kernels: StepKernels = PLAIN, report: Any = None) -> FusedCanvasDecoder:
        return FusedCanvasDecoder(self.model, self.masks, self.cache, self.positions, kernels, report)


def test_the_test_model_has_both_layer_kinds(k_eq_v_checkpoint: Path) -> None:
    layers = load_model(k_eq_v_checkpoint).model.model.decoder.layers
    kinds = {(layer.self_attn.head_dim, layer.self_attn.v_proj is None) for layer in layers}
    assert kinds == {(32, False), (64, True)}


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_plain_kernels_give_the_models_logits_exactly(k_eq_v_checkpoint: Path, dtype: str) -> None:
    model = load_model(k_eq_v_checkpoint, dtype=dtype).model
    c = _Canvas(model, context=80)  # past the sliding window (64): the sliding layers' mask is not all-true
    fused = c.fused()
    canvas, self_cond = c.canvas, None
    for _ in range(3):  # the first step without self-conditioning, then with it
        expected = c.model_logits(canvas, self_cond)
        with torch.no_grad():
            got = fused(canvas, self_cond)
        assert torch.equal(got, expected)
        self_cond = (got / 0.7).to(model.dtype)
        canvas = c.random_canvas()


def test_plain_kernels_with_fp8_experts_give_the_models_logits_exactly(k_eq_v_checkpoint: Path) -> None:
    from diffedit.engine.fp8 import quantize_experts

    model = load_model(k_eq_v_checkpoint).model
    quantize_experts(model)  # the experts run between the two halves of the feed-forward kernel
    c = _Canvas(model, context=30, seed=3)
    with torch.no_grad():
        assert torch.equal(c.fused()(c.canvas, None), c.model_logits(c.canvas, None))


def test_plain_kernels_match_through_the_static_kv_buffer(k_eq_v_checkpoint: Path) -> None:
    model = load_model(k_eq_v_checkpoint).model
    c = _Canvas(model, context=40, seed=5)
    expected = c.model_logits(c.canvas, None)
    with StaticCanvasCache(c.cache, c.length).installed(model), torch.no_grad():
        got = c.fused()(c.canvas, None)
    assert torch.equal(got, expected)


@needs_compiler
def test_compiled_kernels_stay_within_rounding_of_the_model(k_eq_v_checkpoint: Path) -> None:
    model = load_model(k_eq_v_checkpoint, dtype="fp32").model
    c = _Canvas(model, context=80, seed=2)
    report = DenoiseOutcome(tokens=[])
    fused = c.fused(compiled_kernels(), report)
    expected = c.model_logits(c.canvas, None)
    with torch.no_grad():
        got = fused(c.canvas, None)
        again = fused(c.canvas, (got / 0.7).to(model.dtype))
    assert report.compiled is True and report.compile_error is None, report.compile_error
    assert fused.kernels.compiled  # it did not fall back
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(again, c.model_logits(c.canvas, (expected / 0.7)), rtol=1e-4, atol=1e-4)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))


def _denoise(lm: Any, seed: int, **kw: Any) -> DenoiseOutcome:
    tok = lm.tokenizer
    prompt = [tok.bos_token_id, *tok.encode("Paths are joined with a slash.\n\n", add_special_tokens=False)]
    sampler = SamplerConfig(12, 0.1, 0.4, 0.8, 1, 1e-30)  # no early stop: every run takes the same steps
    options = DenoiseOptions(sampler, frozenset({tok.eos_token_id}), tok.pad_token_id, **kw)
    return denoise(lm.model, prompt, options, torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def demo_fp32() -> Any:
    return load_model(None, device="cpu", dtype="fp32")


@needs_compiler
def test_a_compiled_rewrite_of_the_demo_model_draws_what_the_plain_one_draws(demo_fp32: Any) -> None:
    plain = _denoise(demo_fp32, seed=4)
    compiled = _denoise(demo_fp32, seed=4, compile_step=True)
    assert plain.compiled is None
    assert compiled.compiled is True, compiled.compile_error
    assert compiled.forwards == plain.forwards == 12
    # float32 rounding apart, the same logits: the same seed draws the same canvas (a position may flip
    # where two candidates tie to within rounding).
    same = sum(a == b for a, b in zip(compiled.tokens, plain.tokens, strict=True))
    assert same >= 0.95 * len(plain.tokens)


def test_a_failing_compiler_costs_speed_not_the_rewrite(
    demo_fp32: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("C++ compile error\nmore detail")

    monkeypatch.setattr(denoise_mod, "compiled_kernels", lambda: broken_kernels(broken))
    plain = _denoise(demo_fp32, seed=6)
    fell_back = _denoise(demo_fp32, seed=6, compile_step=True)
    assert fell_back.compiled is False
    assert fell_back.compile_error == "RuntimeError: C++ compile error"
    assert fell_back.tokens == plain.tokens  # the plain kernels are the model's layers bit for bit


def test_reference_mode_and_unfusable_models_keep_the_models_layers(
    demo_fp32: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = _denoise(demo_fp32, seed=1, mode="reference", compile_step=True)
    assert ref.compiled is False and "reference" in (ref.compile_error or "")
    monkeypatch.setattr(denoise_mod, "fusable", lambda model: "clipped linear layers")
    out = _denoise(demo_fp32, seed=1, compile_step=True)
    assert out.compiled is False and out.compile_error == "clipped linear layers"


def test_fusable_names_what_it_cannot_fuse(k_eq_v_checkpoint: Path) -> None:
    model = load_model(k_eq_v_checkpoint).model
    assert fused_step.fusable(model) is None
    model.model.decoder.text_config.use_clipped_linears = True
    assert fused_step.fusable(model) == "clipped linear layers"


def test_loading_with_compile_step_compiles_before_the_first_rewrite(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffedit.engine.engine import Engine

    calls: list[str] = []

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("attn_in")
        return fused_step.attn_in(*args, **kwargs)

    kernels = dataclasses.replace(PLAIN, attn_in=counting, compiled=True)
    monkeypatch.setattr(denoise_mod, "compiled_kernels", lambda: kernels)
    said: list[str] = []
    engine = Engine.load(tiny_checkpoint, device="cpu", progress=said.append, compile_step=True)
    assert any(s.startswith("Compiling the decoder step") for s in said)
    assert said[-1].startswith("Loaded")
    assert calls and engine.compile_error is None  # the warm-up ran the (stand-in) compiled kernels


def test_a_compiler_that_fails_at_load_is_not_tried_again(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffedit.engine.engine import Engine
    from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob

    tries: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        tries.append(1)
        raise RuntimeError("Triton is not installed")

    monkeypatch.setattr(denoise_mod, "compiled_kernels", lambda: broken_kernels(broken))
    engine = Engine.load(tiny_checkpoint, device="cpu", compile_step=True)
    assert engine.compile_error == "RuntimeError: Triton is not installed"
    assert len(tries) == 1
    job = RewriteJob(EditRequest("Before. ", "the words", " after."), GenerationSettings(seed=1, steps=3))
    result = engine.rewrite(job)
    assert len(tries) == 1 and result.compiled is False  # the rewrite ran the model's own layers


def _sampler_inputs(seed: int, done: bool = False) -> tuple[Any, ...]:
    g = torch.Generator().manual_seed(seed)
    length, vocab = 16, 500
    logits = torch.randn(1, length, vocab, generator=g) * 4
    logits[0, 0, 1] = 100.0  # the top logit, but forbidden below
    noise = torch.empty(1, length, vocab).exponential_(1.0, generator=g)
    fresh = torch.randint(0, vocab, (1, length), generator=g)
    cfg = SamplerConfig(12, 0.5, 0.4, 0.8, 1, 0.005)
    state = StepState(
        canvas=torch.randint(0, vocab, (1, length), generator=g),
        self_cond=torch.randn(1, length, vocab, generator=g).to(torch.bfloat16),
        argmax=torch.zeros(1, length, dtype=torch.long),
        accepted=torch.zeros(1, length, dtype=torch.bool),
        entropy=torch.zeros(1, length),
        history=torch.full((1, 1, length), -1, dtype=torch.long),
        remaining=torch.full((), 9, dtype=torch.int32),
        done=torch.full((1,), done),
    )
    forbidden = (torch.zeros(2, dtype=torch.long), torch.tensor([0, 1]))
    held = (torch.tensor([3]), torch.tensor([7]))  # position 3 keeps token 7
    return logits, noise, fresh, CanvasConstraints(forbidden, held), cfg, state


@needs_compiler
@pytest.mark.parametrize("done", [False, True])
def test_the_compiled_sampler_updates_the_state_as_the_plain_one(done: bool) -> None:
    plain_in, compiled_in = _sampler_inputs(7, done), _sampler_inputs(7, done)
    before = [t.clone() for t in plain_in[-1]]
    PLAIN.sample(*plain_in)
    compiled_kernels().sample(*compiled_in)
    plain, compiled = plain_in[-1], compiled_in[-1]
    for name, want, got, old in zip(StepState._fields, plain, compiled, before, strict=True):
        if name in ("entropy", "self_cond"):
            torch.testing.assert_close(got.float(), want.float(), rtol=1e-5, atol=1e-5, msg=name)
        else:
            assert torch.equal(got, want), name
        if done:  # a finished canvas's extra step changes nothing
            assert torch.equal(got, old), name
    if not done:
        assert int(compiled.remaining) == 8 and bool(compiled.accepted.any())  # a step was taken
        assert int(compiled.argmax[0, 0]) not in (0, 1)  # forbidden, though token 1 has the top logit there
        assert int(compiled.canvas[0, 3]) == 7 and bool(compiled.accepted[0, 3])  # held, and shown accepted


@needs_compiler
def test_many_models_in_one_process_each_get_their_compiled_step(tmp_path: Path) -> None:
    # Every model shape compiles each step function again; torch's default limit (8) would run out after a
    # few model switches, and the step would silently stay uncompiled.
    for hidden in (32, 48, 80, 96, 112):
        path = build_checkpoint(tmp_path / f"h{hidden}", hidden=hidden, layers=2, canvas_length=8)
        lm = load_model(path, dtype="fp32")
        for seed in (0, 1):
            out = _denoise(lm, seed=seed, compile_step=True, forbid_empty=bool(seed))
            assert out.compiled is True, (hidden, out.compile_error)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=needs_compiler)])
def test_the_graphed_samplers_draws_follow_the_softmax(compiled: bool, device: str) -> None:
    logits_row = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, 0.3], device=device)
    n, vocab = 40_000, 6
    g = torch.Generator(device=device).manual_seed(17)
    logits = logits_row.expand(1, n, vocab).contiguous()
    noise = torch.empty(1, n, vocab, device=device).exponential_(1.0, generator=g)
    fresh = torch.zeros(1, n, dtype=torch.long, device=device)
    # temperature 1; an entropy bound that accepts every position
    cfg = SamplerConfig(10, 1e12, 1.0, 1.0, 1, 0.0)

    def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.zeros(shape, dtype=dtype, device=device)

    state = StepState(
        canvas=zeros(1, n, dtype=torch.long), self_cond=zeros(1, n, vocab),
        argmax=zeros(1, n, dtype=torch.long), accepted=zeros(1, n, dtype=torch.bool), entropy=zeros(1, n),
        history=torch.full((1, 1, n), -1, dtype=torch.long, device=device),
        remaining=torch.full((), 10, dtype=torch.int32, device=device), done=zeros(1, dtype=torch.bool),
    )  # fmt: skip
    kernels = compiled_kernels() if compiled else PLAIN
    kernels.sample(logits, noise, fresh, None, cfg, state)
    assert bool(state.accepted.all())
    counts = torch.bincount(state.canvas[0].cpu(), minlength=vocab).float()
    assert _chi_square(counts, torch.softmax(logits_row.cpu(), -1)) < CHI2_CRIT_DF5


def test_compiled_code_is_kept_in_diffedits_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("DIFFEDIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert fused_step.persistent_compile_cache() == str(tmp_path / "cache" / "torch-compile")
    # torch's own default (the temporary folder, emptied by a restart) is replaced too
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    assert fused_step.persistent_compile_cache() == str(tmp_path / "cache" / "torch-compile")
    # a folder the user chose is kept
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert fused_step.persistent_compile_cache() == str(tmp_path / "mine")
