"""Small random-weight DiffusionGemma checkpoints that tests build, save and load back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    DiffusionGemmaConfig,
    DiffusionGemmaForBlockDiffusion,
    DiffusionGemmaTextConfig,
    PreTrainedTokenizerFast,
)

from diffedit.engine.context import INFILL_FILE, InfillFormat
from diffedit.training.model_config import TINY_VISION

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<|prefix|>", "<|suffix|>", "<|middle|>"]

TRAINING_TEXT = """# Getting started

The editor rewrites a paragraph by diffusion. Select some text, press Ctrl+R and watch it settle.

- Lists hold items.
- Each item is a block.

Code blocks are kept as they are:

```python
def hello(name: str) -> str:
    return f"hello {name}"
```

> A quote is one block too.

Paragraphs are separated by blank lines. Words, numbers 0123456789 and punctuation: ,.;:!?()[]{}*_`#-+=/\\|"'
"""


def build_tokenizer(folder: Path, vocab_size: int = 320) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([TRAINING_TEXT] * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        additional_special_tokens=["<|prefix|>", "<|suffix|>", "<|middle|>"],
    )
    fast.save_pretrained(folder)
    return fast


def build_checkpoint(
    folder: Path,
    *,
    canvas_length: int = 16,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    max_steps: int = 8,
    confidence_threshold: float = 0.005,
    t_min: float = 0.4,
    t_max: float = 0.8,
    dtype: torch.dtype = torch.float32,
    text_overrides: dict[str, object] | None = None,
) -> Path:
    """A random-weight DiffusionGemma with the infill format, saved like a real checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder)
    vocab = len(tok)
    fields: dict[str, object] = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        global_head_dim=32,
        num_experts=2,
        top_k_experts=1,
        moe_intermediate_size=hidden,
        sliding_window=64,
        max_position_embeddings=4096,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    text = DiffusionGemmaTextConfig(**{**fields, **(text_overrides or {})})  # type: ignore[arg-type]
    config = DiffusionGemmaConfig(
        text_config=text.to_dict(), vision_config=TINY_VISION, canvas_length=canvas_length
    )
    torch.manual_seed(seed)
    model = DiffusionGemmaForBlockDiffusion(config).to(dtype).eval()
    model.generation_config.update(
        max_denoising_steps=max_steps,
        eos_token_id=1,
        pad_token_id=0,
        bos_token_id=2,
        confidence_threshold=confidence_threshold,
        t_min=t_min,
        t_max=t_max,
    )
    model.save_pretrained(folder)
    (folder / INFILL_FILE).write_text(json.dumps(InfillFormat().to_json()), encoding="utf-8")
    return folder
