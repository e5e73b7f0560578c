"""Optional FP8 expert weights: the MoE experts (about 90% of DiffusionGemma-26B-A4B's bytes) in float8 e4m3.

A denoising step streams every expert's weights once (256 canvas positions x top-8 routing touch all 128
experts), so the step is bound by memory bandwidth and halving the experts' bytes halves most of it. Weights
get one scale per output row; activations are quantised per row at run time; the product runs through
``torch._scaled_grouped_mm`` (Hopper and later) with bf16 output. Elsewhere (the CPU, older GPUs) the same
quantised numbers go through a plain dequantise-and-multiply, which is slow but lets the accuracy cost be
measured on any machine (``benchmarks/fp8_accuracy.py``, on trained weights; ``benchmarks/gpu_step.py`` on
the 26B shape).

Opt-in only: ``Engine.load(..., fp8=True)``, ``diffedit rewrite --fp8``. The encoder shares the experts with
the decoder, so the prefill runs in FP8 as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0


def fused_kernel_available(device: torch.device) -> bool:
    """``torch._scaled_grouped_mm`` runs on this device (compute capability 9.0 or later)."""
    if device.type != "cuda" or not hasattr(torch, "_scaled_grouped_mm"):
        return False
    return torch.cuda.get_device_capability(device) >= (9, 0)


@dataclass
class QuantizedWeight:
    data: torch.Tensor  # (experts, out, in) float8 e4m3, row-major
    scale: torch.Tensor  # (experts, out) float32


def quantize_rows(w: torch.Tensor) -> QuantizedWeight:
    """One scale per output row (the last dimension is the reduction)."""
    amax = w.detach().abs().amax(dim=-1).float().clamp(min=1e-12)
    scale = amax / FP8_MAX
    data = (w.detach().float() / scale[..., None]).clamp(-FP8_MAX, FP8_MAX).to(FP8)
    return QuantizedWeight(data.contiguous(), scale.contiguous())


def _quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    amax = x.abs().amax(dim=-1).float().clamp(min=1e-12)
    scale = amax / FP8_MAX
    return (x.float() / scale[:, None]).clamp(-FP8_MAX, FP8_MAX).to(FP8), scale


def grouped_linear_fp8(
    x: torch.Tensor, w: QuantizedWeight, offsets: torch.Tensor, fused: bool
) -> torch.Tensor:
    """Rows of ``x`` sorted by expert (group ends in ``offsets``) times their expert's weight, transposed."""
    xq, xs = _quantize_activations(x)
    if fused:
        out: torch.Tensor = torch._scaled_grouped_mm(
            xq, w.data.transpose(-2, -1), xs, w.scale, offs=offsets, out_dtype=torch.bfloat16
        )
        return out
    # Reference: the same quantised operands, dequantised and multiplied group by group.
    result = torch.zeros((x.shape[0], w.data.shape[1]), dtype=torch.float32, device=x.device)
    start = 0
    for e, end in enumerate(offsets.tolist()):
        if end > start:
            xe = xq[start:end].float() * xs[start:end, None]
            we = w.data[e].float() * w.scale[e][:, None]
            result[start:end] = xe @ we.T
        start = end
    return result


def fp8_experts_forward(
    module: Any,
    weights: tuple[QuantizedWeight, QuantizedWeight],
    fused: bool,
    hidden_states: torch.Tensor,
    top_k_index: torch.Tensor,
    top_k_weights: torch.Tensor,
) -> torch.Tensor:
    """The experts of one MoE block: the grouped computation of transformers' ``grouped_mm`` path, in FP8.

    No host synchronisation (offsets by ``histc``), so it can be captured in a CUDA graph.
    """
    gate_up, down = weights
    num_top_k = top_k_index.shape[-1]
    num_tokens, hidden = hidden_states.shape
    expert_ids, perm = torch.sort(top_k_index.reshape(-1))
    rows = hidden_states[perm // num_top_k]
    ids = expert_ids.int() if hidden_states.device.type == "cuda" else expert_ids.float()
    counts = torch.histc(ids, bins=module.num_experts, min=0, max=module.num_experts - 1)
    offsets = torch.cumsum(counts, dim=0, dtype=torch.int32)
    h = grouped_linear_fp8(rows, gate_up, offsets, fused)
    gate, up = h.chunk(2, dim=-1)
    h = module.act_fn(gate) * up
    out = grouped_linear_fp8(h, down, offsets, fused)
    out = out * top_k_weights.reshape(-1)[perm].unsqueeze(-1).to(out.dtype)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.shape[0], device=perm.device)
    return out[inverse].view(num_tokens, num_top_k, hidden).sum(dim=1).to(hidden_states.dtype)


@dataclass
class Fp8Report:
    experts_modules: int
    tensors: int
    bytes_before: int
    bytes_after: int
    fused: bool
    # The device's allocation peak while loading (CUDA only; None elsewhere or when not measured).
    peak_device_bytes: int | None = None


def quantize_experts(model: Any, device: str | torch.device | None = None) -> Fp8Report:
    """Replace every MoE experts block's weights with FP8 ones, in place, one shared tensor at a time.

    The bf16 expert weights are released (the encoder and decoder share them: both get the FP8 copy).
    Without ``device`` the experts are quantised where they are. With ``device`` each bf16 tensor is copied
    there, quantised there and released on both sides before the next one moves, so the bf16 experts are
    never all on ``device`` at once; the caller then moves the rest of the model (the emptied expert
    Parameters are already there, with no elements). Either way the FP8 bytes and scales are the same as
    quantising on that device after moving the whole model.
    """
    modules = [m for m in model.modules() if hasattr(m, "gate_up_proj") and hasattr(m, "down_proj")]
    if not modules:
        raise ValueError("this model has no MoE experts to quantise")
    dest = torch.device(device) if device is not None else None
    fused = fused_kernel_available(dest or modules[0].gate_up_proj.device)
    done: dict[int, QuantizedWeight] = {}
    before = after = 0
    for name in ("gate_up_proj", "down_proj"):
        for m in modules:
            if hasattr(m, f"_fp8_{name}"):
                continue
            w = getattr(m, name)
            before += w.numel() * w.element_size()
            # The device copy lives only for this call; the source Parameter goes below.
            q = quantize_rows(w.detach().to(dest or w.device))
            after += q.data.numel() + q.scale.numel() * 4
            done[id(w)] = q
            for other in modules:  # every module sharing this tensor, then the bf16 copy can go
                if getattr(other, name) is w:
                    setattr(other, f"_fp8_{name}", q)
            at = q.data.device
            empty = torch.nn.Parameter(torch.empty(0, dtype=w.dtype, device=at), requires_grad=False)
            for other in modules:
                if getattr(other, name) is w:
                    setattr(other, name, empty)
            del w
            if at.type == "cuda":
                torch.cuda.empty_cache()
    for m in modules:
        m.forward = partial(fp8_experts_forward, m, (m._fp8_gate_up_proj, m._fp8_down_proj), fused)
    return Fp8Report(len(modules), len(done), before, after, fused)
