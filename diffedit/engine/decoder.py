"""The model's two passes for block diffusion: the encoder appends to the KV cache, the decoder reads it.

:class:`EncodedContext` holds the cache of everything encoded so far (the prompt, then each finished canvas)
and makes the decoder's masks and positions for the canvas after it.

``model(decoder_input_ids=..., ...)`` runs the decoder through transformers' wrappers (``ForBlockDiffusion``,
``DiffusionGemmaModel``, the decoder's output-capturing decorators) and recomputes, at every step, the rotary
cos/sin of positions that do not change within a canvas. :class:`CanvasDecoder` calls the same modules in the
same order with the same operations, so its logits are bitwise those of ``model(...)`` (the test suite holds
it to ``torch.equal``, and reference mode's token-for-token parity with ``generate`` runs through it), but
computes the rotary tables once per canvas, skips the wrappers, and soft-caps the logits in place instead of
allocating three vocabulary-sized tensors per step.

The model is either transformers' ``DiffusionGemmaForBlockDiffusion`` or diffedit's own torch-only one
(:mod:`diffedit.engine.native`), which has the same module tree and its own KV cache (``make_cache``); this
module imports transformers only for the former.
"""

from __future__ import annotations

from typing import Any

import torch

from diffedit.engine.sampling import CanvasConstraints, SamplerConfig, StepState, sample_in_place


def new_cache(model: Any) -> Any:
    """An empty encoder KV cache for ``model``: its own where it has one (the native model), else
    transformers' ``DynamicCache``."""
    make = getattr(model, "make_cache", None)
    if make is not None:
        return make()
    from transformers.cache_utils import DynamicCache

    return DynamicCache(config=model.config.get_text_config(decoder=True))


class EncodedContext:
    """The KV cache of everything encoded so far, and what the canvas after it is decoded with."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache = new_cache(model)
        self.length = 0  # tokens encoded so far
        self.canvas_length = int(model.config.canvas_length)

    def append(self, ids: torch.Tensor) -> None:
        """Encode ``ids`` (1, n) after what is cached (the encoder is causal over all of it)."""
        model, n, device = self.model, ids.shape[1], ids.device
        positions = torch.arange(self.length, self.length + n, dtype=torch.int32, device=device)[None]
        attention_mask = torch.ones((1, self.length + n), dtype=torch.bool, device=device)
        shape_only = torch.empty((1, n, 0), dtype=model.dtype, device=device)
        masks = model.model.encoder.create_masks_for_generate(
            config=model.config,
            inputs_embeds=shape_only,
            attention_mask=attention_mask,
            cache=self.cache,
            position_ids=positions,
        )
        model.model.encoder(
            input_ids=ids.contiguous(), attention_mask=masks, cache=self.cache, position_ids=positions
        )
        self.length += n

    def canvas_inputs(self, device: torch.device) -> tuple[Any, torch.Tensor]:
        """The decoder's attention masks (per layer type) and positions for the canvas after the context."""
        length, n = self.canvas_length, self.length
        positions = torch.arange(n, n + length, dtype=torch.int32, device=device)[None]
        attention_mask = torch.ones((1, n + length), dtype=torch.bool, device=device)
        shape_only = torch.empty((1, length, 1), device=device)
        masks = self.model.model.decoder.create_diffusion_decoder_attention_mask(
            config=self.model.config,
            inputs_embeds=shape_only,
            cache=self.cache,
            decoder_attention_mask=attention_mask,
        )
        return masks, positions


class CanvasDecoder:
    """``model(...)``'s logits for one canvas (fixed masks, KV cache and positions), and the graphed loop's
    sampler to go with them (:meth:`sample`)."""

    def __init__(self, model: Any, masks: dict[str, Any], cache: Any, positions: torch.Tensor) -> None:
        decoder = model.model.decoder
        text_config = decoder.text_config
        self.decoder = decoder
        self.lm_head = model.lm_head
        self.softcap = model.final_logit_softcapping
        self.cache = cache
        self.positions = positions
        self.embed = decoder.embed_tokens
        self.vocab_size = int(text_config.vocab_size)
        self.self_cond_dtype: torch.dtype = (
            self.embed.weight.dtype
        )  # the previous step's logits are fed back in it
        types = text_config.layer_types
        layers = decoder.layers[: text_config.num_hidden_layers]
        # cos/sin depend on the positions and the dtype only (the tensor passed in gives dtype and device)
        probe = self.embed.weight[:1]
        tables = {t: decoder.rotary_emb(probe, positions, t) for t in decoder.unique_layer_types}
        self.layers = [(layer, tables[types[i]], masks[types[i]]) for i, layer in enumerate(layers)]

    def __call__(self, canvas: torch.Tensor, self_conditioning_logits: torch.Tensor | None) -> torch.Tensor:
        """float32 logits, shape (batch, canvas_length, vocab), as ``model(...).logits``."""
        embed = self.embed
        inputs_embeds = embed(canvas)
        if self_conditioning_logits is not None:
            weight = embed.weight
            soft_embeddings = torch.matmul(
                self_conditioning_logits.softmax(dim=-1, dtype=torch.float32).to(weight.dtype), weight
            ) * embed.embed_scale.to(inputs_embeds.dtype)
        else:
            soft_embeddings = torch.zeros_like(inputs_embeds)
        hidden = self.decoder.self_conditioning(inputs_embeds, soft_embeddings)
        hidden = self.decoder.norm(self.run_layers(hidden))
        logits = self.lm_head(hidden).to(torch.float32)  # a fresh tensor either way: safe to modify in place
        if self.softcap is not None:
            logits.div_(self.softcap).tanh_().mul_(self.softcap)
        return logits

    def run_layers(self, hidden: torch.Tensor) -> torch.Tensor:
        for layer, position_embeddings, mask in self.layers:
            hidden = layer(
                hidden,
                position_embeddings=position_embeddings,
                attention_mask=mask,
                position_ids=self.positions,
                cache=self.cache,
            )
        return hidden

    def sample(
        self,
        logits: torch.Tensor,
        noise: torch.Tensor,
        fresh: torch.Tensor,
        constraints: CanvasConstraints | None,
        cfg: SamplerConfig,
        state: StepState,
    ) -> None:
        """:func:`~diffedit.engine.sampling.sample_in_place` (compiled where the layers are: fused_step)."""
        sample_in_place(logits, noise, fresh, constraints, cfg, state)
