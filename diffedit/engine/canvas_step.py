"""The decoder forward for one canvas, with what stays the same over the canvas computed once.

``model(decoder_input_ids=..., ...)`` runs the decoder through transformers' wrappers (``ForBlockDiffusion``,
``DiffusionGemmaModel``, the decoder's output-capturing decorators) and recomputes, at every step, the rotary
cos/sin of positions that do not change within a canvas. :class:`CanvasDecoder` calls the same modules in the
same order with the same operations, so its logits are bitwise those of ``model(...)`` (the test suite holds
it to ``torch.equal``, and reference mode's token-for-token parity with ``generate`` runs through it), but
computes the rotary tables once per canvas, skips the wrappers, and soft-caps the logits in place instead of
allocating three vocabulary-sized tensors per step.
"""

from __future__ import annotations

from typing import Any

import torch


class CanvasDecoder:
    """``model(...)``'s logits for one canvas (fixed masks, KV cache and positions)."""

    def __init__(self, model: Any, masks: dict[str, Any], cache: Any, positions: torch.Tensor) -> None:
        decoder = model.model.decoder
        text_config = decoder.text_config
        self.decoder = decoder
        self.lm_head = model.lm_head
        self.softcap = model.final_logit_softcapping
        self.cache = cache
        self.positions = positions
        self.embed = decoder.embed_tokens
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
