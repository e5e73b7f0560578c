"""The checkpoint's ``tokenizer.json`` through the ``tokenizers`` library, as transformers' fast tokenizer
(``TokenizersBackend``) runs it for what diffedit asks of a tokenizer.

transformers wraps the same ``tokenizers.Tokenizer``; what it adds on top for these calls is: the special
tokens named in ``tokenizer_config.json`` added to the backend as special tokens where the file does not
hold them yet (the ones it holds keep their own flags: tests/engine/native/test_load.py); truncation and
padding switched off; unknown tokens mapped to the unk id; no clean-up of decoded spaces. Checkpoints whose
tokenizer needs more (another tokenizer class, clean-up of tokenization spaces, truncation or padding in
``tokenizer.json``, a chat template to render) are :class:`~diffedit.engine.native.config.Unsupported` and
load through transformers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from diffedit.engine.native.config import Unsupported

_PLAIN_CLASSES = (None, "TokenizersBackend", "PreTrainedTokenizerFast")
_NAMED = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _token_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):  # an AddedToken as saved by older transformers
        return str(value.get("content"))
    return str(value)


class NativeTokenizer:
    """``encode``, ``decode``, ``batch_decode``, ``__call__`` (offsets), ``convert_tokens_to_ids`` and the
    special ids: the calls the engine makes, with transformers' results."""

    is_fast = True
    chat_template: str | None = None

    def __init__(self, folder: Path) -> None:
        from tokenizers import AddedToken, Tokenizer

        tokenizer_json = folder / "tokenizer.json"
        if not tokenizer_json.is_file():
            raise Unsupported("no tokenizer.json")
        cfg_path = folder / "tokenizer_config.json"
        cfg: dict[str, Any] = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
        if cfg.get("tokenizer_class") not in _PLAIN_CLASSES:
            raise Unsupported(f"tokenizer class {cfg.get('tokenizer_class')!r}")
        if cfg.get("clean_up_tokenization_spaces"):
            raise Unsupported("clean_up_tokenization_spaces")
        if cfg.get("chat_template") or (folder / "chat_template.jinja").is_file():
            raise Unsupported("a chat template")
        if cfg.get("split_special_tokens") or cfg.get("add_bos_token") or cfg.get("add_eos_token"):
            raise Unsupported("tokenizer options split_special_tokens/add_bos_token/add_eos_token")
        tok = Tokenizer.from_file(str(tokenizer_json))
        if tok.truncation is not None or tok.padding is not None:
            raise Unsupported("truncation or padding in tokenizer.json")
        if tok.post_processor is None:
            raise Unsupported("no post-processor in tokenizer.json")
        known = {str(t.content) for t in tok.get_added_tokens_decoder().values()}
        for entry in (cfg.get("added_tokens_decoder") or {}).values():
            if _token_text(entry) not in known:
                raise Unsupported("added_tokens_decoder entries missing from tokenizer.json")
        named = {k: _token_text(cfg.get(k)) for k in _NAMED}
        extra = cfg.get("extra_special_tokens") or cfg.get("additional_special_tokens") or []
        if isinstance(extra, dict):
            raise Unsupported("named extra special tokens")
        specials = [t for t in named.values() if t] + [t for t in (_token_text(e) for e in extra) if t]
        specials = list(dict.fromkeys(specials))
        missing = [t for t in specials if t not in known]
        if missing:  # as transformers' __init__ does; tokens the file already holds keep their flags
            tok.add_tokens([AddedToken(t, special=True) for t in missing])
        tok.encode_special_tokens = False
        self._tok = tok
        self.special_tokens = named
        ids = {k: (None if v is None else tok.token_to_id(v)) for k, v in named.items()}
        self.unk_token_id: int | None = ids["unk_token"]
        self.bos_token_id: int | None = ids["bos_token"]
        self.eos_token_id: int | None = ids["eos_token"]
        self.pad_token_id: int | None = ids["pad_token"]

    def __len__(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def __call__(
        self, text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False
    ) -> dict[str, Any]:
        enc = self._tok.encode(text, add_special_tokens=add_special_tokens)
        out: dict[str, Any] = {"input_ids": list(enc.ids), "attention_mask": list(enc.attention_mask)}
        if return_offsets_mapping:
            out["offset_mapping"] = [tuple(o) for o in enc.offsets]
        return out

    def decode(self, token_ids: int | Sequence[int], skip_special_tokens: bool = False) -> str:
        ids = [token_ids] if isinstance(token_ids, int) else [int(i) for i in token_ids]
        return str(self._tok.decode(ids, skip_special_tokens=skip_special_tokens))

    def batch_decode(
        self, sequences: Iterable[Sequence[int]], skip_special_tokens: bool = False
    ) -> list[str]:
        return [self.decode(s, skip_special_tokens=skip_special_tokens) for s in sequences]

    def convert_tokens_to_ids(self, token: str) -> int | None:
        index = self._tok.token_to_id(token)
        return self.unk_token_id if index is None else int(index)

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the native tokenizer has no chat template (infill checkpoints only)")
