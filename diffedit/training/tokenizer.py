"""A small byte-level BPE for the demo model, trained with the ``tokenizers`` library.

Byte-level pre-tokenization without prefix space and a byte-level decoder: any UTF-8 text, Markdown
punctuation, newlines and indentation included, decodes back to exactly what was encoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, EOS, BOS, UNK = "<pad>", "<eos>", "<bos>", "<unk>"
INFILL_TOKENS = ("<|prefix|>", "<|suffix|>", "<|middle|>")
SPECIAL_TOKENS = (PAD, EOS, BOS, UNK, *INFILL_TOKENS)  # ids 0..6, in this order
VOCAB_SIZE = 4096


def train_bpe(texts: Iterable[str], vocab_size: int = VOCAB_SIZE) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=BOS,
        unk_token=UNK,
        additional_special_tokens=list(INFILL_TOKENS),
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )


def save_tokenizer(tok: Tokenizer, out_dir: Path) -> PreTrainedTokenizerFast:
    out_dir.mkdir(parents=True, exist_ok=True)
    fast = wrap(tok)
    fast.save_pretrained(str(out_dir))
    check_special_ids(out_dir)
    return fast


def check_special_ids(out_dir: Path) -> None:
    vocab = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    for expected, token in enumerate(SPECIAL_TOKENS):
        if vocab.get(token) != expected:
            raise ValueError(f"{token} has id {vocab.get(token)}, expected {expected}")
