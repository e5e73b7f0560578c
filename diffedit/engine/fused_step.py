"""The decoder step with the small operations between matrix products fused into a few kernels.

Profiled on an H100 (docs/benchmarks.md), a 26B-A4B decoder step spends ~18 ms in the experts' grouped
products, close to the time it takes to stream their weights once, and ~24 ms in thousands of small
element-wise kernels: eleven RMSNorms per layer, each a chain of about eight kernels (cast, square, mean, add,
power, multiply, multiply, cast), the rotary embedding, the router's normalisation, residual adds and copies.
A CUDA graph removes their launch cost but not their memory traffic or their few microseconds each.

Here each decoder layer is two functions around its attention, which stays as it is (transformers' attention
interface, reading the static KV buffer):

* ``attn_in``: input norm, q/k/v projections, q/k/v norms, rotary embedding;
* ``ffn``: output projection, post-attention norm and residual, the dense MLP and its norms, the router, the
  model's own experts module (its routing bookkeeping fuses too), the last norms, residual and layer scalar.
  FP8 experts run between its two halves, ``ffn_in`` and ``ffn_out``.

Around the layers, ``front`` makes the decoder's input (token embeddings and the self-conditioning block)
and ``head`` the logits (final norm, output projection, soft-capping); ``sample`` is the graphed loop's
sampler (:func:`diffedit.engine.sampling.sample_in_place`, compiled with the rest).

Run as they are, they are transformers' operations in transformers' order, so the logits equal
``model(...)``'s bit for bit (the tests hold them to ``torch.equal``). Compiled (``torch.compile``: Triton on
GPUs, C++ on CPUs), each becomes its matrix products plus a handful of fused kernels. Because they take
tensors, numbers and modules of one class only, one compilation serves every layer of a kind and every
context length.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
import torch.nn.functional as F

from diffedit.engine.decoder import CanvasDecoder
from diffedit.engine.sampling import sample_in_place


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """DiffusionGemmaRMSNorm: computed in float32, scaled, cast back."""
    xf = x.float()
    normed = xf * torch.pow(xf.pow(2).mean(-1, keepdim=True) + eps, -0.5)
    if weight is not None:
        normed = normed * weight.float()
    return normed.type_as(x)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The rotary embedding on (batch, seq, heads, dim) tensors."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos) + (rotated * sin)


def attn_in(
    hidden: torch.Tensor,
    norm_w: torch.Tensor,
    q_w: torch.Tensor,
    k_w: torch.Tensor,
    v_w: torch.Tensor | None,
    q_norm_w: torch.Tensor,
    k_norm_w: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    eps: float,
    head_dim: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values of the canvas, (batch, heads, seq, dim), as the attention module makes them.

    ``v_w`` None: the layer's values are its keys before their norm (``attention_k_eq_v``).
    """
    h = rms_norm(hidden, norm_w, eps)
    shape = (*h.shape[:-1], -1, head_dim)
    q = _rotate(rms_norm(F.linear(h, q_w).view(shape), q_norm_w, eps), cos, sin).transpose(1, 2)
    k_raw = F.linear(h, k_w).view(shape)
    v_raw = F.linear(h, v_w).view(shape) if v_w is not None else k_raw
    k = _rotate(rms_norm(k_raw, k_norm_w, eps), cos, sin).transpose(1, 2)
    v = rms_norm(v_raw, None, eps).transpose(1, 2)
    return q, k, v


def ffn_in(
    attn_out: torch.Tensor,
    residual: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
    act: Callable[[torch.Tensor], torch.Tensor],
    eps: float,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Everything from the attention's output to the experts' input (``weights``: see
    :meth:`FusedCanvasDecoder.run_layers`).

    Returns the new residual, the dense MLP's normed output, the experts' input rows and the router's
    top-k weights and indices.
    """
    o_w, post_attn_w, pre_ff_w, gate_w, up_w, down_w, post_ff1_w, pre_ff2_w = weights[:8]
    router_scale, router_w, per_expert_scale = weights[8:]
    h = rms_norm(F.linear(attn_out, o_w), post_attn_w, eps)
    residual = residual + h
    x = rms_norm(residual, pre_ff_w, eps)
    x = F.linear(act(F.linear(x, gate_w)) * F.linear(x, up_w), down_w)
    dense = rms_norm(x, post_ff1_w, eps)
    flat = residual.reshape(-1, residual.shape[-1])
    experts_in = rms_norm(flat, pre_ff2_w, eps)
    routed = rms_norm(flat, None, eps) * router_scale * (flat.shape[-1] ** -0.5)
    probs = F.softmax(F.linear(routed, router_w), dim=-1, dtype=torch.float32)
    top_w, top_i = torch.topk(probs, k=top_k, dim=-1)
    top_w = top_w / top_w.sum(dim=-1, keepdim=True)
    top_w = top_w * per_expert_scale[top_i]
    return residual, dense, experts_in, top_w, top_i


def ffn_out(
    experts_out: torch.Tensor,
    residual: torch.Tensor,
    dense: torch.Tensor,
    post_ff2_w: torch.Tensor,
    post_ff_w: torch.Tensor,
    layer_scalar: torch.Tensor,
    eps: float,
) -> torch.Tensor:
    """The layer's output: both feed-forward branches summed, normed, added to the residual, scaled."""
    moe = rms_norm(experts_out.reshape(residual.shape), post_ff2_w, eps)
    h = rms_norm(dense + moe, post_ff_w, eps)
    return (residual + h) * layer_scalar


def ffn(
    attn_out: torch.Tensor,
    residual: torch.Tensor,
    ffn_in_weights: tuple[torch.Tensor, ...],
    act: Callable[[torch.Tensor], torch.Tensor],
    eps: float,
    top_k: int,
    experts: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    post_ff2_w: torch.Tensor,
    post_ff_w: torch.Tensor,
    layer_scalar: torch.Tensor,
) -> torch.Tensor:
    """:func:`ffn_in`, the experts module, :func:`ffn_out`: the layer after its attention, in one piece.

    Compiled, the experts' routing bookkeeping (sort, histogram, gathers, the weighted sum) fuses too; the
    module is an argument, so every layer shares the compiled code."""
    residual, dense, experts_in, top_w, top_i = ffn_in(attn_out, residual, ffn_in_weights, act, eps, top_k)
    out = experts(experts_in, top_i, top_w)
    return ffn_out(out, residual, dense, post_ff2_w, post_ff_w, layer_scalar, eps)


def front(
    canvas: torch.Tensor,
    self_cond_logits: torch.Tensor | None,
    embed_w: torch.Tensor,
    embed_scale: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
    act: Callable[[torch.Tensor], torch.Tensor],
    eps: float,
) -> torch.Tensor:
    """The decoder's input: the canvas's token embeddings plus the self-conditioning signal (the previous
    step's logits as a soft embedding, through the self-conditioning block; zeros at the first step).

    ``weights``: the self-conditioning block's pre-norm, gate, up and down projections."""
    pre_w, gate_w, up_w, down_w = weights
    inputs_embeds = F.embedding(canvas, embed_w) * embed_scale.to(embed_w.dtype)
    if self_cond_logits is not None:
        probs = self_cond_logits.softmax(dim=-1, dtype=torch.float32).to(embed_w.dtype)
        soft = torch.matmul(probs, embed_w) * embed_scale.to(inputs_embeds.dtype)
    else:
        soft = torch.zeros_like(inputs_embeds)
    normed = rms_norm(soft, pre_w, eps)
    signal = F.linear(act(F.linear(normed, gate_w)) * F.linear(normed, up_w), down_w)
    return rms_norm(inputs_embeds + signal, None, eps)


def head(
    hidden: torch.Tensor, norm_w: torch.Tensor, lm_w: torch.Tensor, softcap: float | None, eps: float
) -> torch.Tensor:
    """float32 logits from the last layer's output: final norm, output projection, soft-capping."""
    logits = F.linear(rms_norm(hidden, norm_w, eps), lm_w).to(torch.float32)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


@dataclass(frozen=True)
class StepKernels:
    """The step's functions, plain or compiled."""

    attn_in: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
    ffn_in: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
    ffn_out: Callable[..., torch.Tensor]
    ffn: Callable[..., torch.Tensor]
    front: Callable[..., torch.Tensor]
    head: Callable[..., torch.Tensor]
    sample: Callable[..., None]
    compiled: bool


_T = TypeVar("_T")

PLAIN = StepKernels(attn_in, ffn_in, ffn_out, ffn, front, head, sample_in_place, compiled=False)
_compiled: StepKernels | None = None
_compile_lock = threading.Lock()


COMPILE_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"  # torch's compiled code (and Triton's kernels under it)


def persistent_compile_cache() -> str:
    """Point torch's compile cache at diffedit's cache folder, unless the user chose one, and return it.

    torch keeps it under the temporary folder by default, which a restart of the machine empties: every
    model load would then compile from scratch (seconds on a CPU, a minute or more on a GPU) instead of
    reading the compiled code back (~2 s). ``DIFFEDIT_CACHE_DIR`` overrides diffedit's cache folder."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get(COMPILE_CACHE_ENV)
    if chosen is None or os.path.abspath(chosen) == os.path.abspath(default_cache_dir()):
        import platformdirs

        base = os.environ.get("DIFFEDIT_CACHE_DIR") or str(platformdirs.user_cache_path("diffedit"))
        os.environ[COMPILE_CACHE_ENV] = os.path.join(base, "torch-compile")
    return os.environ[COMPILE_CACHE_ENV]


def compiled_kernels() -> StepKernels:
    """The step's functions under ``torch.compile`` (one set per process: the compiled code is keyed by
    shapes, so every model and layer kind shares it). Compilation happens at the first call."""
    global _compiled
    with _compile_lock:
        if _compiled is None:
            persistent_compile_cache()
            # transformers' grouped-mm dispatch checks the torch version through an lru_cache, which the
            # compiler says it traces through: true, and harmless for a constant.
            warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`")
            # Each function is compiled once per distinct set of shapes: a layer kind, first step or not,
            # and again for every model loaded in this process. torch's default of 8 per function would be
            # used up after a few model switches, and with fullgraph a ninth is an error, not a fallback.
            dynamo_config = torch._dynamo.config
            dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)

            def comp(fn: Callable[..., Any]) -> Callable[..., Any]:
                return torch.compile(fn, fullgraph=True, dynamic=False)

            _compiled = StepKernels(
                comp(attn_in), comp(ffn_in), comp(ffn_out), comp(ffn), comp(front), comp(head),
                comp(sample_in_place), compiled=True,
            )  # fmt: skip
        return _compiled


def fusable(model: Any) -> str | None:
    """Why the fused step cannot run this model's decoder, or None where it can."""
    from diffedit.engine.placement import is_offloaded

    decoder = model.model.decoder
    layer = decoder.layers[0]
    attn = layer.self_attn
    if is_offloaded(model):
        return "layers split between the GPU and RAM (their weights are copied in as each layer runs)"
    if getattr(decoder.text_config, "use_clipped_linears", False):
        return "clipped linear layers"
    if not hasattr(layer.self_attn.q_proj, "weight"):
        return "int8/int4 weights (dequantised per product by their own modules)"
    if attn.q_proj.bias is not None or attn.o_proj.bias is not None:
        return "attention biases"
    needed = ("router", "experts", "mlp", "pre_feedforward_layernorm_2", "layer_scalar")
    if not all(hasattr(layer, n) for n in needed):
        return "a decoder layer without the MoE block"
    if getattr(model.lm_head, "bias", None) is not None:
        return "an output projection bias"
    eps = float(decoder.text_config.rms_norm_eps)
    norms = [m for m in decoder.modules() if hasattr(m, "eps") and hasattr(m, "with_scale")]
    if any(float(m.eps) != eps for m in norms):
        return "norms with different epsilons"
    return None


class CompileReport(Protocol):
    compiled: bool | None
    compile_error: str | None


class FusedCanvasDecoder(CanvasDecoder):
    """:class:`CanvasDecoder` run as the step functions: :func:`front`, then per layer :func:`attn_in`,
    attention and :func:`ffn`, then :func:`head`; plain or compiled, as ``kernels`` says. The graphed loop's
    sampler (:meth:`sample`) goes through here too.

    Where the compiled kernels fail (no C++ compiler or Triton, an operation the compiler cannot take) the
    call is made again with the plain ones, from then on, and ``report`` says so.
    """

    def __init__(
        self,
        model: Any,
        masks: dict[str, Any],
        cache: Any,
        positions: torch.Tensor,
        kernels: StepKernels = PLAIN,
        report: CompileReport | None = None,
    ) -> None:
        super().__init__(model, masks, cache, positions)
        self.report = report
        if report is not None and kernels.compiled:
            report.compiled = True
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from transformers.models.diffusion_gemma import modeling_diffusion_gemma as mdg

        self.kernels = kernels
        text_config = model.model.decoder.text_config
        self.attention = ALL_ATTENTION_FUNCTIONS.get_interface(
            text_config._attn_implementation, mdg.eager_attention_forward
        )
        self.eps = float(text_config.rms_norm_eps)
        self.top_k = int(text_config.top_k_experts)
        # One activation object for every layer: they are the same function, and a compiled kernel guards
        # on the object it was traced with.
        self.act = self.layers[0][0].mlp.act_fn
        # The arguments that stay the same over the canvas, gathered once rather than at every step.
        sc = self.decoder.self_conditioning
        sc_weights = (sc.pre_norm.weight, sc.gate_proj.weight, sc.up_proj.weight, sc.down_proj.weight)
        self.front_args = (self.embed.weight, self.embed.embed_scale, sc_weights, sc.act_fn)
        self.plans = [_LayerPlan.of(layer, cos, sin, positions) for layer, (cos, sin), _ in self.layers]

    def __call__(self, canvas: torch.Tensor, self_conditioning_logits: torch.Tensor | None) -> torch.Tensor:
        return self._guarded(lambda: self._forward(canvas, self_conditioning_logits))

    def sample(self, *args: Any) -> None:
        """:func:`~diffedit.engine.sampling.sample_in_place` with these kernels (the same arguments)."""
        self._guarded(lambda: self.kernels.sample(*args))

    def _guarded(self, call: Callable[[], _T]) -> _T:
        if not self.kernels.compiled:
            return call()
        try:
            return call()
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # the compiler's failures have no common base class
            self.kernels = PLAIN
            if self.report is not None:
                self.report.compiled = False
                first = (str(exc).strip().splitlines() or [""])[0]
                self.report.compile_error = f"{type(exc).__name__}: {first[:300]}"
            # Compilation fails before anything runs, and a forward's only write (the canvas's keys and
            # values into the KV buffer) is idempotent: the same call again, with the plain functions.
            return call()

    def _forward(self, canvas: torch.Tensor, self_conditioning_logits: torch.Tensor | None) -> torch.Tensor:
        k = self.kernels
        embed_w, embed_scale, sc_weights, sc_act = self.front_args
        hidden = k.front(canvas, self_conditioning_logits, embed_w, embed_scale, sc_weights, sc_act, self.eps)
        hidden = self.run_layers(hidden)
        return k.head(hidden, self.decoder.norm.weight, self.lm_head.weight, self.softcap, self.eps)

    def run_layers(self, hidden: torch.Tensor) -> torch.Tensor:
        k, eps, act, top_k = self.kernels, self.eps, self.act, self.top_k
        for (layer, _, mask), plan in zip(self.layers, self.plans, strict=True):
            attn = layer.self_attn
            q, key, value = k.attn_in(hidden, *plan.attn_in, eps, attn.head_dim)
            key, value = attn.append_to_cache(self.cache, key, value)
            out, _ = self.attention(attn, q, key, value, mask, **plan.attention)
            out = out.reshape(*hidden.shape[:-1], -1).contiguous()
            if plan.experts is not None:
                hidden = k.ffn(out, hidden, plan.ffn_in, act, eps, top_k, plan.experts, *plan.ffn_out)
                continue
            # FP8 experts carry their weights in a per-module closure, which a compiled region would
            # specialise on layer by layer: they run between the two compiled halves instead.
            residual, dense, experts_in, top_w, top_i = k.ffn_in(out, hidden, plan.ffn_in, act, eps, top_k)
            experts_out = layer.experts(experts_in, top_i, top_w)
            hidden = k.ffn_out(experts_out, residual, dense, *plan.ffn_out, eps)
        return hidden


@dataclass(frozen=True)
class _LayerPlan:
    """One decoder layer's arguments to the step functions, gathered once per canvas."""

    attn_in: tuple[Any, ...]  # attn_in's weights and rotary tables
    attention: dict[str, Any]  # the attention interface's keyword arguments
    ffn_in: tuple[torch.Tensor, ...]
    ffn_out: tuple[torch.Tensor, ...]  # the last two norms' weights and the layer scalar
    experts: Any  # the experts module, run inside ffn; None: FP8 experts, run between ffn_in and ffn_out

    @classmethod
    def of(cls, layer: Any, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor) -> _LayerPlan:
        attn, mlp, router = layer.self_attn, layer.mlp, layer.router
        v_w = attn.v_proj.weight if attn.v_proj is not None else None
        return cls(
            attn_in=(
                layer.input_layernorm.weight, attn.q_proj.weight, attn.k_proj.weight, v_w, attn.q_norm.weight,
                attn.k_norm.weight, cos, sin,
            ),
            attention={
                "dropout": 0.0, "scaling": attn.scaling, "sliding_window": attn.sliding_window,
                "is_causal": attn.is_causal, "position_ids": positions,
            },
            ffn_in=(
                attn.o_proj.weight, layer.post_attention_layernorm.weight,
                layer.pre_feedforward_layernorm.weight, mlp.gate_proj.weight, mlp.up_proj.weight,
                mlp.down_proj.weight, layer.post_feedforward_layernorm_1.weight,
                layer.pre_feedforward_layernorm_2.weight, router.scale, router.proj.weight,
                router.per_expert_scale,
            ),
            ffn_out=(
                layer.post_feedforward_layernorm_2.weight, layer.post_feedforward_layernorm.weight,
                layer.layer_scalar,
            ),
            experts=None if hasattr(layer.experts, "_fp8_gate_up_proj") else layer.experts,
        )  # fmt: skip
