"""DiffusionGemma's text model in plain torch, computing what transformers' classes compute, bit for bit.

transformers 5.24's ``DiffusionGemmaForBlockDiffusion`` (``modeling_diffusion_gemma.py``) as diffedit runs it
on a CPU: SDPA attention, the ``grouped_mm`` experts, a ``DynamicCache``. Every forward here is that file's
operations in that file's order with the same dtypes (Gemma's float32 RMSNorm, rotary tables per layer type,
the router's float32 softmax, the grouped expert products, the self-conditioning block, the soft-capped
logits), and the attention masks are the ones transformers' mask functions build for SDPA (``None``, so that
SDPA's own ``is_causal`` or unmasked kernel runs, exactly where transformers passes ``None``). So the logits
equal transformers' with ``torch.equal`` (tests/engine/native/test_parity.py holds them to it, on the demo
model and on a random checkpoint of another shape) while nothing imports transformers.

The module tree mirrors transformers' where the engine reads it: ``model.model.decoder`` (``embed_tokens``,
``layers``, ``norm``, ``rotary_emb``, ``self_conditioning``, ``text_config``, ``unique_layer_types``),
``model.model.encoder`` (called like transformers' encoder, with ``create_masks_for_generate``),
``model.lm_head``, ``model.final_logit_softcapping``, ``model.config.canvas_length``. The encoder and the
decoder share every weight but the encoder's per-layer ``layer_scalar`` (as in transformers, where that
buffer is not tied): the encoder runs the decoder's layer modules with its own scalars.

Only the text path exists: no vision tower, no training (no dropout, no gradient checkpointing), no padding
inside the decoder's context (the engine never pads a single canvas; the batch path builds its own masks).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from diffedit.engine.native.cache import KVCache
from diffedit.engine.native.config import FULL, SLIDING, GenerationConfig, ModelConfig, TextConfig


class Linear(nn.Linear):
    """``nn.Linear`` without its random initialisation: every weight comes from the checkpoint (and random
    initialisation of a large model would take seconds)."""

    def reset_parameters(self) -> None:
        pass


class RMSNorm(nn.Module):
    """``DiffusionGemmaRMSNorm``: float32, ``x * pow(mean(x²) + eps, -0.5)``, scaled, cast back."""

    def __init__(self, dim: int, eps: float, with_scale: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.with_scale = with_scale
        if with_scale:
            self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        x = hidden_states.float()
        mean_squared = x.pow(2).mean(-1, keepdim=True) + self.eps
        normed = x * torch.pow(mean_squared, -0.5)
        if self.with_scale:
            normed = normed * self.weight.float()
        return normed.type_as(hidden_states)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """transformers' ``gelu_pytorch_tanh``."""
    return F.gelu(x, approximate="tanh")


def _default_inv_freq(params: dict[str, Any], head_dim: int) -> torch.Tensor:
    base = params["rope_theta"]
    dim = int(head_dim * params.get("partial_rotary_factor", 1.0))
    return 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))


def _proportional_inv_freq(params: dict[str, Any], head_dim: int) -> torch.Tensor:
    base = params["rope_theta"]
    factor = params.get("factor", 1.0)
    rope_angles = int(params.get("partial_rotary_factor", 1.0) * head_dim // 2)
    exponents = torch.arange(0, 2 * rope_angles, 2, dtype=torch.int64).to(dtype=torch.float) / head_dim
    inv_freq = 1.0 / (base**exponents)
    nope_angles = head_dim // 2 - rope_angles
    if nope_angles > 0:
        inv_freq = torch.cat((inv_freq, torch.zeros(nope_angles, dtype=torch.float32)), dim=0)
    inv_freq /= factor
    return inv_freq


class RotaryEmbedding(nn.Module):
    """Per layer type: ``inv_freq`` as transformers initialises it, and cos/sin tables of given positions."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        for kind in sorted(set(config.layer_types)):
            params = config.rope_parameters[kind]
            head_dim = config.head_dims[config.layer_types.index(kind)]
            make = _default_inv_freq if params["rope_type"] == "default" else _proportional_inv_freq
            self.register_buffer(f"{kind}_inv_freq", make(params, head_dim), persistent=False)

    def forward(
        self, x: torch.Tensor, position_ids: torch.Tensor, layer_type: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = getattr(self, f"{layer_type}_inv_freq")
        freqs = position_ids[..., None].float() * inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * 1.0  # transformers multiplies by attention_scaling, 1.0 for these rope types
        sin = emb.sin() * 1.0
        return cos.to(dtype=x.dtype), sin.to(dtype=x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    cos = cos.unsqueeze(2)
    sin = sin.unsqueeze(2)
    return (x * cos) + (rotate_half(x) * sin)


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def sdpa_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    groups: int,
    is_causal: bool,
) -> torch.Tensor:
    """transformers' ``sdpa_attention_forward`` on a CPU (scale 1.0, no dropout): the same GQA handling
    (``enable_gqa`` without a mask, a packed single query, else repeated keys) and the same ``is_causal``."""
    kwargs: dict[str, Any] = {}
    q_length = query.shape[2]
    if groups > 1:
        if attention_mask is None and key.shape[-1] == value.shape[-1] <= 256:
            kwargs["enable_gqa"] = True
        elif q_length == 1:
            batch, heads, _, dim = query.shape
            query = query.reshape(batch, heads // groups, groups, dim)
            if attention_mask is not None and attention_mask.shape[1] != 1:
                attention_mask = attention_mask.reshape(batch, heads // groups, groups, -1)
        else:
            key = repeat_kv(key, groups)
            value = repeat_kv(value, groups)
    causal = q_length > 1 and attention_mask is None and is_causal
    if causal and key.shape[2] > q_length:
        key = key[:, :, :q_length, :]
        value = value[:, :, :q_length, :]
    out = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=0.0, scale=1.0, is_causal=causal, **kwargs
    )
    out = out.reshape(out.shape[0], -1, q_length, value.shape[-1])
    return out.transpose(1, 2).contiguous()


class Attention(nn.Module):
    """One layer's attention. Encoding, it appends to the cache and is causal; decoding (the canvas), it
    reads the cache plus the canvas's own keys and values (``append_to_cache``) and attends to all of it."""

    def __init__(self, config: TextConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.is_sliding = config.layer_types[layer_idx] == SLIDING
        self.head_dim = head_dim = config.head_dims[layer_idx]
        kv_heads = config.kv_heads[layer_idx]
        self.num_key_value_groups = config.num_attention_heads // kv_heads
        hidden, heads, bias = config.hidden_size, config.num_attention_heads, config.attention_bias
        self.q_proj = Linear(hidden, heads * head_dim, bias=bias)
        self.k_proj = Linear(hidden, kv_heads * head_dim, bias=bias)
        self.v_proj = Linear(hidden, kv_heads * head_dim, bias=bias) if self.is_sliding else None
        self.o_proj = Linear(heads * head_dim, hidden, bias=bias)
        self.q_norm = RMSNorm(head_dim, config.rms_norm_eps)
        self.k_norm = RMSNorm(head_dim, config.rms_norm_eps)
        self.v_norm = RMSNorm(head_dim, config.rms_norm_eps, with_scale=False)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        cache: Any,
        encoding: bool,
    ) -> torch.Tensor:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        cos, sin = position_embeddings

        query_states = self.q_proj(hidden_states).view(hidden_shape)
        query_states = self.q_norm(query_states)
        query_states = apply_rotary(query_states, cos, sin)
        query_states = query_states.transpose(1, 2)

        key_states = self.k_proj(hidden_states).view(hidden_shape)
        value_states = (
            self.v_proj(hidden_states).view(hidden_shape) if self.v_proj is not None else key_states
        )
        key_states = self.k_norm(key_states)
        key_states = apply_rotary(key_states, cos, sin)
        key_states = key_states.transpose(1, 2)
        value_states = self.v_norm(value_states)
        value_states = value_states.transpose(1, 2)

        if encoding:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx)
        elif cache is not None:
            key_states, value_states = self.append_to_cache(cache, key_states, value_states)
        out = sdpa_attention(
            query_states, key_states, value_states, attention_mask, self.num_key_value_groups, encoding
        )
        out = out.reshape(*input_shape, -1).contiguous()
        return self.o_proj(out)

    def append_to_cache(
        self, cache: Any, key_states: torch.Tensor, value_states: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached context's keys and values followed by the canvas's (new tensors; the cache is read
        only). :class:`~diffedit.engine.static_cache.StaticCanvasCache` replaces this per instance."""
        layer = cache.layers[self.layer_idx]
        keys = torch.cat([layer.keys, key_states], dim=-2)
        values = torch.cat([layer.values, value_states], dim=-2)
        return keys, values


class MLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate_proj = Linear(hidden, intermediate, bias=False)
        self.up_proj = Linear(hidden, intermediate, bias=False)
        self.down_proj = Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(gelu_tanh(self.gate_proj(x)) * self.up_proj(x))


class Router(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.top_k = config.top_k_experts
        self.scalar_root_size = config.hidden_size**-0.5
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps, with_scale=False)
        self.proj = Linear(config.hidden_size, config.num_experts, bias=False)
        self.scale = nn.Parameter(torch.ones(config.hidden_size))
        self.per_expert_scale = nn.Parameter(torch.ones(config.num_experts))

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden_states = self.norm(hidden_states)
        hidden_states = hidden_states * self.scale * self.scalar_root_size
        expert_scores = self.proj(hidden_states)
        probabilities = F.softmax(expert_scores, dim=-1, dtype=torch.float32)
        top_k_weights, top_k_index = torch.topk(probabilities, k=self.top_k, dim=-1)
        top_k_weights /= top_k_weights.sum(dim=-1, keepdim=True)
        top_k_weights = top_k_weights * self.per_expert_scale[top_k_index]
        return top_k_weights, top_k_index


def _grouped_mm(input: torch.Tensor, weight: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
    """transformers' grouped product dispatch for torch >= 2.11 (the only torch the native path runs on)."""
    if hasattr(F, "grouped_mm"):
        return F.grouped_mm(input.to(weight.dtype), weight, offs=offs)
    if hasattr(torch, "_grouped_mm"):
        return torch._grouped_mm(input.to(weight.dtype), weight, offs=offs)
    input = input.to(weight.dtype)
    output = torch.zeros(input.size(0), weight.size(2), device=input.device, dtype=input.dtype)
    start = 0
    for i, end in enumerate(offs.tolist()):
        if start == end:
            continue
        torch.mm(input[start:end], weight[i], out=output[start:end])
        start = end
    return output


class Experts(nn.Module):
    """The MoE experts as 3-D weight stacks, run as transformers' ``grouped_mm`` experts implementation."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.num_experts = config.num_experts
        hidden, inner = config.hidden_size, config.moe_intermediate_size
        self.gate_up_proj = nn.Parameter(torch.empty(self.num_experts, 2 * inner, hidden))
        self.down_proj = nn.Parameter(torch.empty(self.num_experts, hidden, inner))

    def forward(
        self, hidden_states: torch.Tensor, top_k_index: torch.Tensor, top_k_weights: torch.Tensor
    ) -> torch.Tensor:
        device = hidden_states.device
        num_top_k = top_k_index.size(-1)
        num_tokens = hidden_states.size(0)
        hidden_dim = hidden_states.size(-1)
        sample_weights = top_k_weights.reshape(-1)
        expert_ids = top_k_index.reshape(-1)
        expert_ids_g, perm = torch.sort(expert_ids)
        selected = hidden_states[perm // num_top_k]
        sample_weights_g = sample_weights[perm]
        histc_input = expert_ids_g.float() if device.type in ("cpu", "mps") else expert_ids_g.int()
        tokens_per_expert = torch.histc(histc_input, bins=self.num_experts, min=0, max=self.num_experts - 1)
        offsets = torch.cumsum(tokens_per_expert, dim=0, dtype=torch.int32)
        proj_out = _grouped_mm(selected, self.gate_up_proj.transpose(-2, -1), offsets)
        gate, up = proj_out.chunk(2, dim=-1)
        proj_out = gelu_tanh(gate) * up
        proj_out = _grouped_mm(proj_out, self.down_proj.transpose(-2, -1), offsets)
        weighted_out = proj_out * sample_weights_g.unsqueeze(-1)
        inv_perm = torch.empty_like(perm)
        inv_perm[perm] = torch.arange(perm.size(0), device=device)
        weighted_out = weighted_out[inv_perm]
        final = weighted_out.view(num_tokens, num_top_k, hidden_dim).sum(dim=1)
        return final.to(hidden_states.dtype)


class Layer(nn.Module):
    """A decoder layer (``DiffusionGemmaDecoderTextLayer``); the encoder runs it with ``encoding=True`` and
    its own ``layer_scalar``."""

    def __init__(self, config: TextConfig, layer_idx: int) -> None:
        super().__init__()
        hidden, eps = config.hidden_size, config.rms_norm_eps
        self.layer_idx = layer_idx
        self.self_attn = Attention(config, layer_idx)
        self.mlp = MLP(hidden, config.intermediate_size)
        self.input_layernorm = RMSNorm(hidden, eps)
        self.post_attention_layernorm = RMSNorm(hidden, eps)
        self.pre_feedforward_layernorm = RMSNorm(hidden, eps)
        self.post_feedforward_layernorm = RMSNorm(hidden, eps)
        self.register_buffer("layer_scalar", torch.ones(1))
        self.router = Router(config)
        self.experts = Experts(config)
        self.post_feedforward_layernorm_1 = RMSNorm(hidden, eps)
        self.post_feedforward_layernorm_2 = RMSNorm(hidden, eps)
        self.pre_feedforward_layernorm_2 = RMSNorm(hidden, eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        encoding: bool = False,
        layer_scalar: torch.Tensor | None = None,
    ) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states = self.self_attn(hidden_states, position_embeddings, attention_mask, cache, encoding)
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = residual + hidden_states

        residual = hidden_states
        hidden_states = self.pre_feedforward_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states)
        hidden_states_1 = self.post_feedforward_layernorm_1(hidden_states)

        flat = residual.reshape(-1, residual.shape[-1])
        for_experts = self.pre_feedforward_layernorm_2(flat)
        top_k_weights, top_k_index = self.router(flat)
        hidden_states_2 = self.experts(for_experts, top_k_index, top_k_weights)
        hidden_states_2 = hidden_states_2.reshape(residual.shape)
        hidden_states_2 = self.post_feedforward_layernorm_2(hidden_states_2)

        hidden_states = hidden_states_1 + hidden_states_2
        hidden_states = self.post_feedforward_layernorm(hidden_states)
        hidden_states = residual + hidden_states
        scalar: torch.Tensor = self.layer_scalar if layer_scalar is None else layer_scalar  # type: ignore[assignment]
        hidden_states *= scalar
        return hidden_states


class ScaledEmbedding(nn.Embedding):
    """Token embeddings times ``sqrt(hidden)``, the scale held in the model's dtype (55.4256 is 55.5 in
    bf16, as in transformers)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        self.scalar_embed_scale = embedding_dim**0.5
        self.register_buffer("embed_scale", torch.tensor(self.scalar_embed_scale), persistent=False)

    def set_dtype(self, dtype: torch.dtype) -> None:
        """The scale written straight into ``dtype`` (as transformers fills it), not cast from float32."""
        self.embed_scale = torch.full((), self.scalar_embed_scale, dtype=dtype, device=self.weight.device)

    def reset_parameters(self) -> None:
        pass  # loaded from the checkpoint (see Linear)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(input) * self.embed_scale.to(self.weight.dtype)


class SelfConditioning(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        hidden, eps = config.hidden_size, config.rms_norm_eps
        self.pre_norm = RMSNorm(hidden, eps)
        self.post_norm = RMSNorm(hidden, eps, with_scale=False)
        self.gate_proj = Linear(hidden, config.intermediate_size, bias=False)
        self.up_proj = Linear(hidden, config.intermediate_size, bias=False)
        self.down_proj = Linear(config.intermediate_size, hidden, bias=False)

    def forward(self, inputs_embeds: torch.Tensor, self_conditioning_signal: torch.Tensor) -> torch.Tensor:
        normed = self.pre_norm(self_conditioning_signal)
        signal = self.down_proj(gelu_tanh(self.gate_proj(normed)) * self.up_proj(normed))
        return self.post_norm(inputs_embeds + signal)


class Decoder(nn.Module):
    """The diffusion decoder: the canvas attends to the cached context and to itself."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.text_config = config
        self.embed_tokens = ScaledEmbedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList([Layer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)
        self.self_conditioning = SelfConditioning(config)
        self.unique_layer_types = set(config.layer_types)

    @staticmethod
    def create_diffusion_decoder_attention_mask(
        config: Any,
        inputs_embeds: torch.Tensor,
        cache: Any,
        decoder_attention_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor | None]:
        """No mask: the canvas attends to everything (transformers returns the same ``None`` masks for an
        unpadded context and a dynamic cache)."""
        if decoder_attention_mask is not None and not bool(decoder_attention_mask.all()):
            raise ValueError("the native decoder does not model a padded context")
        return {FULL: None, SLIDING: None}


class Encoder(nn.Module):
    """The causal encoder that fills the KV cache: the decoder's layers and embeddings, its own scalars."""

    def __init__(self, config: TextConfig, decoder: Decoder) -> None:
        super().__init__()
        self.config = config
        self._decoder = (decoder,)  # shared, not a second registered copy (the weights are tied)
        for i in range(config.num_hidden_layers):  # model.encoder.language_model.layers.{i}.layer_scalar
            self.register_buffer(f"layer_scalar_{i}", torch.ones(1))

    @property
    def decoder(self) -> Decoder:
        return self._decoder[0]

    @staticmethod
    def create_masks_for_generate(
        config: Any,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None,
        cache: KVCache,
        position_ids: torch.Tensor | None,
    ) -> dict[str, torch.Tensor | None]:
        """Per layer type, the boolean mask transformers' ``create_masks_for_generate`` builds for SDPA, or
        ``None`` where it leaves causality to SDPA's ``is_causal``."""
        text = config.get_text_config()
        if attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError("the native encoder does not model padding")
        batch, q_length = inputs_embeds.shape[0], inputs_embeds.shape[1]
        device = inputs_embeds.device
        masks: dict[str, torch.Tensor | None] = {}
        for kind in set(text.layer_types):
            sliding = kind == SLIDING
            layer = cache.layers[cache.first(sliding)]
            window = text.sliding_window if sliding else None
            q_offset = layer.seq_length()
            kv_length, kv_offset = layer.mask_sizes(q_length)
            needs_window = window is not None and kv_length >= window
            if not needs_window and (q_length == 1 or kv_length == q_length or q_offset == 0):
                masks[kind] = None
                continue
            q_idx = (torch.arange(q_length, device=device) + q_offset)[None, None, :, None]
            kv_idx = (torch.arange(kv_length, device=device) + kv_offset)[None, None, None, :]
            mask = kv_idx <= q_idx
            if window is not None:
                mask = (kv_idx > q_idx - window) & mask
            masks[kind] = mask.expand(batch, -1, q_length, kv_length)
        return masks

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: dict[str, torch.Tensor | None],
        cache: KVCache,
        position_ids: torch.Tensor,
    ) -> None:
        """Append ``input_ids``'s keys and values to ``cache`` (the hidden states are not needed after)."""
        decoder, types = self.decoder, self.config.layer_types
        hidden = decoder.embed_tokens(input_ids)
        tables = {t: decoder.rotary_emb(hidden, position_ids, t) for t in decoder.unique_layer_types}
        for i, layer in enumerate(decoder.layers):
            hidden = layer(
                hidden,
                position_embeddings=tables[types[i]],
                attention_mask=attention_mask[types[i]],
                position_ids=position_ids,
                cache=cache,
                encoding=True,
                layer_scalar=getattr(self, f"layer_scalar_{i}"),
            )


class Inner(nn.Module):
    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.decoder = Decoder(config)
        self.encoder = Encoder(config, self.decoder)


class NativeDiffusionGemma(nn.Module):
    """The engine's model object on the native path (see the module docstring)."""

    def __init__(self, config: ModelConfig, generation_config: GenerationConfig) -> None:
        super().__init__()
        text = config.text_config
        self.config = config
        self.generation_config = generation_config
        self.model = Inner(text)
        self.lm_head = Linear(text.hidden_size, text.vocab_size, bias=False)
        self.lm_head.weight = self.model.decoder.embed_tokens.weight  # tied, as in every DiffusionGemma
        self.final_logit_softcapping = text.final_logit_softcapping

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def make_cache(self) -> KVCache:
        """An empty encoder cache (``decoder.EncodedContext`` asks the model for one)."""
        text = self.config.text_config
        return KVCache(text.layer_types, text.sliding_window)
