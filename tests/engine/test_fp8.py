"""FP8 expert weights: the quantisation, the grouped product, and the whole model staying close to itself."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers.cache_utils import DynamicCache

from diffedit.engine import fp8
from diffedit.engine.context import EditRequest
from diffedit.engine.engine import Engine
from diffedit.engine.loader import load_model
from diffedit.engine.types import GenerationSettings, RewriteJob


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
    assert engine.fp8 is not None and not engine.fp8.fused  # the reference product on the CPU
    job = RewriteJob(
        request=EditRequest(prefix="Before.\n\n", target="A paragraph.", suffix="\n\nAfter."),
        settings=GenerationSettings(steps=4, seed=0),
    )
    result = engine.rewrite(job)
    assert result.steps >= 1 and len(result.token_ids) > 0
