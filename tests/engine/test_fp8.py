"""FP8 expert weights: the quantisation, the grouped product, and the whole model staying close to itself."""

from __future__ import annotations

import copy
import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers.cache_utils import DynamicCache

from diffedit.engine import fp8
from diffedit.engine.engine import Engine
from diffedit.engine.loader import load_model
from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob


def test_row_quantisation_error_is_bounded_by_e4m3_precision() -> None:
    w = torch.randn(3, 40, 64, generator=torch.Generator().manual_seed(0))
    q = fp8.quantize_rows(w)
    assert q.data.dtype == torch.float8_e4m3fn and q.scale.shape == (3, 40)
    back = q.data.float() * q.scale[..., None]
    rel = (back - w).abs() / w.abs().amax(dim=-1, keepdim=True)
    assert float(rel.max()) <= 2**-4  # e4m3 keeps 3 mantissa bits: half an ulp is at most 1/16 of the row max


def test_grouped_product_matches_a_float_reference() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, 24, 32, generator=gen)
    x = torch.randn(10, 32, generator=gen)
    offsets = torch.tensor([3, 3, 7, 10], dtype=torch.int32)  # expert 1 gets no rows
    got = fp8.grouped_linear_fp8(x, fp8.quantize_rows(w), offsets, fused=False)
    groups = [0, 0, 0, 2, 2, 2, 2, 3, 3, 3]
    want = torch.stack([w[g] @ x[i] for i, g in enumerate(groups)])
    assert float((got - want).norm() / want.norm()) < 0.05


@pytest.fixture(scope="module")
def demo() -> Any:
    return load_model(None, device="cpu")


def _logits(model: Any, ids: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    with torch.no_grad():
        return model(input_ids=ids, cache=cache, decoder_input_ids=canvas).logits


def test_the_demo_model_in_fp8_stays_close_and_frees_the_bf16_experts(demo: Any) -> None:
    model = copy.deepcopy(demo.model)
    ids = torch.tensor([[2, *range(10, 150)]])
    canvas = torch.randint(0, 4096, (1, 128), generator=torch.Generator().manual_seed(0))
    before = _logits(model, ids, canvas)
    report = fp8.quantize_experts(model)
    after = _logits(model, ids, canvas)
    assert report.tensors == 2 * model.config.text_config.num_hidden_layers  # shared by encoder and decoder
    assert report.bytes_after < 0.55 * report.bytes_before  # 1 byte plus a scale per row, from bf16 or fp32
    assert all(m.gate_up_proj.numel() == 0 for m in model.modules() if hasattr(m, "_fp8_gate_up_proj"))
    assert float((after - before).norm() / before.norm()) < 0.02
    assert float((after.argmax(-1) == before.argmax(-1)).float().mean()) > 0.95


def test_engine_rewrites_with_fp8_experts(tiny_checkpoint: Path) -> None:
    engine = Engine.load(tiny_checkpoint, device="cpu", fp8=True)
    assert engine.loaded.fp8 is not None and not engine.loaded.fp8.fused  # the reference product on the CPU
    assert engine.loaded.fp8.peak_device_bytes is None  # measured on CUDA only
    job = RewriteJob(
        request=EditRequest(prefix="Before.\n\n", target="A paragraph.", suffix="\n\nAfter."),
        settings=GenerationSettings(steps=4, seed=0),
    )
    result = engine.rewrite(job)
    assert result.steps >= 1 and len(result.token_ids) > 0


def _experts(model: Any) -> list[Any]:
    return [m for m in model.modules() if hasattr(m, "gate_up_proj") and hasattr(m, "down_proj")]


def _bf16_experts_on(model: Any, device: str) -> int:
    """How many distinct, not yet emptied expert weight tensors of ``model`` lie on ``device``."""
    tensors = {id(t): t for m in _experts(model) for t in (m.gate_up_proj, m.down_proj)}
    return sum(1 for t in tensors.values() if t.numel() > 0 and t.device.type == device)


def _assert_same_bits(a: Any, b: Any) -> None:
    """The same parameters, buffers and FP8 experts, byte for byte."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and sa[key].shape == sb[key].shape, key
        assert torch.equal(sa[key].view(torch.uint8), sb[key].view(torch.uint8)), key
    for ma, mb in zip(_experts(a), _experts(b), strict=True):
        for name in ("_fp8_gate_up_proj", "_fp8_down_proj"):
            qa, qb = getattr(ma, name), getattr(mb, name)
            assert torch.equal(qa.data.view(torch.uint8), qb.data.view(torch.uint8))
            assert torch.equal(qa.scale.view(torch.uint8), qb.scale.view(torch.uint8))


def test_fp8_while_loading_equals_quantising_after_loading(tiny_checkpoint: Path, demo: Any) -> None:
    streamed = load_model(tiny_checkpoint, device="cpu", dtype="bf16", fp8=True)
    plain = load_model(tiny_checkpoint, device="cpu", dtype="bf16")
    report = fp8.quantize_experts(plain.model)
    assert streamed.fp8 is not None and streamed.fp8.tensors == report.tensors == 4
    assert (streamed.fp8.bytes_before, streamed.fp8.bytes_after) == (report.bytes_before, report.bytes_after)
    _assert_same_bits(streamed.model, plain.model)
    # The trained demo model, streamed through the device argument.
    a, b = copy.deepcopy(demo.model), copy.deepcopy(demo.model)
    fp8.quantize_experts(a, device="cpu")
    fp8.quantize_experts(b)
    _assert_same_bits(a, b)


def _record_bf16_experts_on_target(monkeypatch: pytest.MonkeyPatch, target: str) -> list[tuple[str, int]]:
    """At every quantisation: where the tensor being quantised is, and how many bf16 experts sit on target.

    Watches any model that goes through ``quantize_experts``, whoever calls it and in whichever order.
    """
    seen: list[tuple[str, int]] = []
    models: list[Any] = []
    quantize_experts, quantize_rows = fp8.quantize_experts, fp8.quantize_rows

    def watch_model(model: Any, *args: Any, **kwargs: Any) -> fp8.Fp8Report:
        models.append(model)
        return quantize_experts(model, *args, **kwargs)

    def watch_rows(w: torch.Tensor) -> fp8.QuantizedWeight:
        seen.append((w.device.type, _bf16_experts_on(models[-1], target)))
        return quantize_rows(w)

    monkeypatch.setattr(fp8, "quantize_experts", watch_model)
    monkeypatch.setattr(fp8, "quantize_rows", watch_rows)
    return seen


def test_fp8_load_never_puts_the_bf16_experts_on_the_device(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "meta" stands in for the GPU: a device apart from the CPU the checkpoint loads on.
    seen = _record_bf16_experts_on_target(monkeypatch, "meta")
    engine = Engine.load(tiny_checkpoint, device="meta", dtype="bf16", fp8=True)
    # gate_up_proj and down_proj of 2 layers (shared by encoder and decoder), each quantised on the
    # device with no other bf16 expert weight there.
    assert seen == [("meta", 0)] * 4
    assert all(p.device.type == "meta" for p in engine.model.parameters())  # and then the rest moved
    assert all(m.gate_up_proj.numel() == m.down_proj.numel() == 0 for m in _experts(engine.model))

    # The same watch catches the old order: the whole bf16 model on the device, then quantised there.
    seen.clear()
    fp8.quantize_experts(load_model(tiny_checkpoint, device="meta", dtype="bf16").model)
    # All of them (8, not 4: moving a model to meta gives the encoder and decoder separate copies).
    assert seen[0][0] == "meta" and seen[0][1] >= 4


def test_streaming_releases_the_host_copies_of_the_experts(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint, device="cpu", dtype="bf16").model
    host = [weakref.ref(t) for m in _experts(model) for t in (m.gate_up_proj, m.down_proj)]
    report = fp8.quantize_experts(model, device="meta")
    gc.collect()
    assert report.tensors == 4 and not report.fused
    assert all(ref() is None for ref in host)  # nothing keeps the bf16 weights alive on the host
    for m in _experts(model):
        assert m.gate_up_proj.device.type == m.down_proj.device.type == "meta"
        assert m._fp8_gate_up_proj.data.device.type == m._fp8_down_proj.scale.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fp8_load_on_cuda_matches_and_peaks_lower() -> None:
    # The old way: the whole bf16 model on the device, then quantised there.
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    plain = load_model(None, device="cuda")
    fp8.quantize_experts(plain.model)
    peak_plain = torch.cuda.max_memory_allocated() - base
    base = torch.cuda.memory_allocated()
    streamed = load_model(None, device="cuda", fp8=True)
    assert streamed.fp8 is not None and streamed.fp8.peak_device_bytes is not None
    assert streamed.fp8.peak_device_bytes - base < peak_plain
    _assert_same_bits(streamed.model, plain.model)
