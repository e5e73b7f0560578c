"""The demo model's shape: a small DiffusionGemma, text only (its always-built vision tower kept minimal)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from transformers import DiffusionGemmaConfig, DiffusionGemmaTextConfig

# The smallest Gemma 4 vision tower that builds: it is never used, but DiffusionGemma always constructs one.
TINY_VISION = dict(
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=1,
    num_key_value_heads=1,
    head_dim=16,
    position_embedding_size=8,
    patch_size=2,
)

# The tokenizer's ids (diffedit.training.tokenizer.SPECIAL_TOKENS), on both the text and the top-level config.
SPECIAL_IDS: dict[str, Any] = dict(pad_token_id=0, eos_token_id=1, bos_token_id=2)


@dataclass(frozen=True)
class Shape:
    vocab_size: int = 4096
    hidden_size: int = 256
    intermediate_size: int = 512
    num_hidden_layers: int = 5
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    global_head_dim: int = 64
    num_experts: int = 4
    top_k_experts: int = 2
    moe_intermediate_size: int = 256
    canvas_length: int = 128
    max_position_embeddings: int = 2048
    sliding_window: int = 512


# Named shapes: the first demo's, and the second's (issue 14): an 8192-entry vocabulary so that more English
# words are one token, wider and one layer deeper, within the engine-time target (a paragraph rewrite under
# 1 s median on 2 CPU cores) and 40 MB of bf16 weights. benchmarks/demo_shape.py measures both.
SHAPES: dict[str, Shape] = {
    "demo-1": Shape(),
    "demo-2": Shape(
        vocab_size=8192,
        hidden_size=384,
        intermediate_size=768,
        num_hidden_layers=6,
        num_attention_heads=6,
        num_key_value_heads=2,
        head_dim=64,
        global_head_dim=64,
        num_experts=4,
        top_k_experts=2,
        moe_intermediate_size=192,
    ),
}


def build_config(shape: Shape) -> DiffusionGemmaConfig:
    text = asdict(shape)
    canvas_length = text.pop("canvas_length")
    layers = shape.num_hidden_layers
    layer_types = ["sliding_attention"] * (layers - 1) + ["full_attention"]
    text_config = DiffusionGemmaTextConfig(layer_types=layer_types, **SPECIAL_IDS, **text)
    return DiffusionGemmaConfig(
        text_config=text_config.to_dict(),
        vision_config=dict(TINY_VISION),
        canvas_length=canvas_length,
        # boi/eoi/image token ids keep their defaults (outside this vocabulary): generate() compares
        # input ids with image_token_id and fails if it is None.
        **SPECIAL_IDS,
    )
