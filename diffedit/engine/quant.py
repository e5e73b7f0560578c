"""Weight-only int8 and int4 for the MoE experts and the large linear layers, in pure torch ops.

A denoising step streams every expert's weights once, and the 26B-A4B model's 25 B parameters do not fit a
laptop in bf16 (50.5 GB). Weight-only quantisation keeps the numbers small in memory and turns each weight
back into the compute dtype just before its matrix product, one expert (or one linear layer) at a time, so
the full-precision copy of only one weight exists at once. Pure torch ops: the same code runs on the CPU,
CUDA and Apple MPS (no kernel library covers the fused 3-D expert tensors on all three; docs/models.md).

- **int8**: symmetric, one float32 scale per output row (``w ≈ q · scale``, ``q`` in -127..127).
- **int4**: asymmetric, groups of :data:`INT4_GROUP` inputs along each row with a bf16 scale and a bf16
  minimum (``w ≈ q · scale + min``, ``q`` in 0..15), two values per byte (low nibble first).

The loader (:func:`diffedit.engine.loader.load_model` with ``quantize``) quantises each tensor as it is read
from the safetensors files, so the model never exists in full precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

QuantMode = Literal["none", "int8", "int4"]
QUANT_MODES: tuple[QuantMode, ...] = ("none", "int8", "int4")
INT4_GROUP = 64
INT4_SCALE_DTYPE = torch.bfloat16


@dataclass
class QuantizedTensor:
    """A (..., out, in) weight in int8 or int4; leading dimensions (experts) index with :meth:`dequantize`."""

    mode: QuantMode
    data: torch.Tensor  # int8 (..., out, in); int4: uint8 (..., out, in // 2)
    scale: torch.Tensor  # int8: float32 (..., out, 1); int4: bf16 (..., out, in // group)
    minimum: torch.Tensor | None  # int4: bf16 (..., out, in // group); int8: None
    group: int  # inputs per scale: the row's length for int8
    shape: tuple[int, ...]  # the full-precision shape

    @property
    def nbytes(self) -> int:
        parts = (self.data, self.scale, self.minimum)
        return sum(t.numel() * t.element_size() for t in parts if t is not None)

    @property
    def device(self) -> torch.device:
        return self.data.device

    def dequantize(self, index: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The weight (or expert ``index`` of a stacked one) in ``dtype``."""
        data, scale, minimum = self.data, self.scale, self.minimum
        if index is not None:
            data, scale = data[index], scale[index]
            minimum = minimum[index] if minimum is not None else None
        if self.mode == "int8":
            return data.to(dtype) * scale.to(dtype)
        assert minimum is not None
        values = torch.stack((data & 0x0F, data >> 4), dim=-1).view(*data.shape[:-1], -1)
        rows = values.shape[:-1]
        grouped = values.to(dtype).view(*rows, -1, self.group)
        w = grouped * scale.to(dtype)[..., None] + minimum.to(dtype)[..., None]
        return w.view(*rows, -1)


def int4_group(in_features: int) -> int:
    """:data:`INT4_GROUP` where it divides the row, else the whole row (one scale per row)."""
    return INT4_GROUP if in_features % INT4_GROUP == 0 else in_features


def can_quantize(mode: QuantMode, shape: tuple[int, ...]) -> bool:
    """int4 packs two values per byte, so rows need an even length; int8 takes any matrix."""
    return len(shape) >= 2 and (mode != "int4" or shape[-1] % 2 == 0)


def quantize(w: torch.Tensor, mode: QuantMode) -> QuantizedTensor:
    """``w`` (..., out, in) quantised on its own device (the arithmetic in float32)."""
    shape = tuple(int(d) for d in w.shape)
    if mode not in ("int8", "int4") or not can_quantize(mode, shape):
        raise ValueError(f"cannot quantise a tensor of shape {list(shape)} to {mode}")
    x = w.detach().float()
    if mode == "int8":
        scale = (x.abs().amax(dim=-1, keepdim=True) / 127.0).clamp(min=1e-12)
        q = torch.round(x / scale).clamp_(-127, 127).to(torch.int8)
        return QuantizedTensor("int8", q.contiguous(), scale.contiguous(), None, shape[-1], shape)
    group = int4_group(shape[-1])
    g = x.view(*shape[:-1], shape[-1] // group, group)
    lo, hi = g.amin(dim=-1), g.amax(dim=-1)
    # The stored (bf16) scale and minimum are the ones the codes are computed with, so rounding them costs
    # nothing beyond the half step.
    minimum = lo.to(INT4_SCALE_DTYPE)
    scale = ((hi - minimum.float()) / 15.0).clamp(min=1e-8).to(INT4_SCALE_DTYPE)
    codes = torch.round((g - minimum.float()[..., None]) / scale.float()[..., None]).clamp_(0, 15)
    codes_u8 = codes.to(torch.uint8).view(*shape[:-1], shape[-1])
    packed = codes_u8[..., 0::2] | (codes_u8[..., 1::2] << 4)
    return QuantizedTensor(
        "int4", packed.contiguous(), scale.contiguous(), minimum.contiguous(), group, shape
    )


def empty_like_quantized(
    mode: QuantMode, shape: tuple[int, ...], device: torch.device | str
) -> QuantizedTensor:
    """Room for a stacked (experts, out, in) weight, filled one expert at a time with :func:`fill`."""
    *lead, rows, cols = shape
    if mode == "int8":
        data = torch.empty((*lead, rows, cols), dtype=torch.int8, device=device)
        scale = torch.empty((*lead, rows, 1), dtype=torch.float32, device=device)
        return QuantizedTensor("int8", data, scale, None, cols, shape)
    group = int4_group(cols)
    data = torch.empty((*lead, rows, cols // 2), dtype=torch.uint8, device=device)
    scale = torch.empty((*lead, rows, cols // group), dtype=INT4_SCALE_DTYPE, device=device)
    minimum = torch.empty_like(scale)
    return QuantizedTensor("int4", data, scale, minimum, group, shape)


def fill(target: QuantizedTensor, index: int, part: QuantizedTensor) -> None:
    """Copy a quantised slice (one expert) into ``target`` at ``index``."""
    target.data[index].copy_(part.data)
    target.scale[index].copy_(part.scale)
    if target.minimum is not None and part.minimum is not None:
        target.minimum[index].copy_(part.minimum)


def _register(module: nn.Module, prefix: str, q: QuantizedTensor) -> None:
    """The quantised parts as buffers, so ``module.to(device)`` moves them. Persistent: they are in the
    ``state_dict``, which is what accelerate's offloading hooks copy to the GPU per forward (placement.py)."""
    module.register_buffer(f"{prefix}_data", q.data)
    module.register_buffer(f"{prefix}_scale", q.scale)
    module.register_buffer(f"{prefix}_minimum", q.minimum)


def _view(
    module: nn.Module, prefix: str, mode: QuantMode, group: int, shape: tuple[int, ...]
) -> QuantizedTensor:
    buffers = module._buffers
    data, scale = buffers[f"{prefix}_data"], buffers[f"{prefix}_scale"]
    assert data is not None and scale is not None
    return QuantizedTensor(mode, data, scale, buffers[f"{prefix}_minimum"], group, shape)


class QuantizedLinear(nn.Module):
    """``nn.Linear`` with a quantised weight, dequantised into the input's dtype for each product."""

    def __init__(self, q: QuantizedTensor, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.mode, self.group, self.shape = q.mode, q.group, q.shape
        self.out_features, self.in_features = q.shape
        _register(self, "weight", q)
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None

    @property
    def quantized(self) -> QuantizedTensor:
        return _view(self, "weight", self.mode, self.group, self.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized.dequantize(dtype=x.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, {self.mode}"


class QuantizedExperts(nn.Module):
    """The MoE experts block with quantised ``gate_up_proj`` and ``down_proj`` (experts, out, in).

    transformers' eager computation, expert by expert: each routed expert's two weights are dequantised
    into the activations' dtype just for its products, so one expert's full-precision weights exist at once.
    """

    def __init__(self, experts: Any, gate_up: QuantizedTensor, down: QuantizedTensor) -> None:
        super().__init__()
        self.num_experts = int(experts.num_experts)
        self.act_fn: Any = experts.act_fn
        self.mode = gate_up.mode
        self._meta = {"gate_up": (gate_up.group, gate_up.shape), "down": (down.group, down.shape)}
        _register(self, "gate_up", gate_up)
        _register(self, "down", down)

    def weight(self, which: str) -> QuantizedTensor:
        group, shape = self._meta[which]
        return _view(self, which, self.mode, group, shape)

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        dtype = hidden_states.dtype
        gate_up, down = self.weight("gate_up"), self.weight("down")
        top_k = top_k_index.shape[-1]
        flat = top_k_index.reshape(-1)
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=self.num_experts).tolist()
        weights = top_k_weights.reshape(-1)
        out = torch.zeros_like(hidden_states)
        start = 0
        for e, n in enumerate(counts[: self.num_experts]):
            if n == 0:
                continue
            picks = order[start : start + n]
            start += n
            tokens = picks // top_k
            gate, up = F.linear(hidden_states[tokens], gate_up.dequantize(e, dtype)).chunk(2, dim=-1)
            h = F.linear(self.act_fn(gate) * up, down.dequantize(e, dtype))
            h = h * weights[picks, None]
            out.index_add_(0, tokens, h.to(out.dtype))
        return out

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, {self.mode}"


def is_quantized(model: Any) -> bool:
    return any(isinstance(m, (QuantizedLinear, QuantizedExperts)) for m in model.modules())


def quantized_mode(model: Any) -> QuantMode:
    for m in model.modules():
        if isinstance(m, (QuantizedLinear, QuantizedExperts)):
            return m.mode
    return "none"


def weight_bytes(model: Any) -> int:
    """Bytes of the model's weights as held: parameters and quantised buffers, each shared tensor once."""
    seen: set[int] = set()
    total = 0
    tensors: list[torch.Tensor] = list(model.parameters())
    for m in model.modules():
        if isinstance(m, (QuantizedLinear, QuantizedExperts)):
            tensors.extend(b for b in m.buffers(recurse=False))
    for t in tensors:
        if t.device.type == "meta" or id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
    return total
