"""Turn (document, target span, instruction) into the token ids the encoder reads.

The prompt format is a property of the checkpoint, not a constant: a checkpoint that ships
``diffedit_infill.json`` is an infill model (the bundled demo model); any other checkpoint with a chat
template is an instruct model and gets the document with the target marked plus the instruction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from diffedit.engine.types import EditRequest

INFILL_FILE = "diffedit_infill.json"
DEFAULT_INSTRUCTION = "Rewrite the marked passage."
# Characters kept around the target before tokenizing: a cheap cut so a 1 MB document never gets
# tokenized whole. Generous on purpose: no tokenizer averages fewer than 1 char per token on prose.
_CHARS_PER_TOKEN_CAP = 12


@dataclass(frozen=True)
class ModelContext:
    """What the engine feeds the encoder, plus bookkeeping for reports."""

    input_ids: list[int]
    prefix_tokens: int
    suffix_tokens: int
    truncated: bool


class Tokenizer(Protocol):
    """The slice of a transformers tokenizer the context builders use."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def convert_tokens_to_ids(self, tokens: str) -> Any: ...


class ContextFormat(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def context_tokens(self) -> int | None:
        """The longest prompt the checkpoint is meant for, if it declares one."""

    def build(self, tokenizer: Any, request: EditRequest, budget: int) -> ModelContext: ...


def follows_instructions(engine: object) -> bool:
    """False for an infill checkpoint (the demo model): it fills the gap from the text around it and
    has no place for an instruction in its prompt."""
    fmt = getattr(getattr(engine, "loaded", None), "context_format", None)
    return getattr(fmt, "name", "") != "infill"


def split_budget(prefix_len: int, suffix_len: int, budget: int, prefix_share: float = 0.6) -> tuple[int, int]:
    """Token counts to keep from the prefix (its end) and the suffix (its start) within ``budget``.

    The prefix gets ``prefix_share`` of the budget, and either side gives what it does not need to the other.
    """
    budget = max(0, budget)
    if prefix_len + suffix_len <= budget:
        return prefix_len, suffix_len
    want_prefix = int(budget * prefix_share)
    keep_prefix = min(prefix_len, max(want_prefix, budget - suffix_len))
    keep_suffix = min(suffix_len, budget - keep_prefix)
    return keep_prefix, keep_suffix


def _encode_tail(tokenizer: Any, text: str, budget: int) -> list[int]:
    text = text[-budget * _CHARS_PER_TOKEN_CAP :] if budget else ""
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


def _encode_head(tokenizer: Any, text: str, budget: int) -> list[int]:
    text = text[: budget * _CHARS_PER_TOKEN_CAP] if budget else ""
    return list(tokenizer.encode(text, add_special_tokens=False)) if text else []


@dataclass(frozen=True)
class InfillFormat:
    """Fill-in-the-middle: ``[bos] <suffix> SUFFIX <prefix> PREFIX <middle>``; the canvas holds the target.

    Suffix first, so the prefix sits right before the canvas, as in fill-in-the-middle code models.
    """

    prefix_token: str = "<|prefix|>"
    suffix_token: str = "<|suffix|>"
    middle_token: str = "<|middle|>"
    add_bos: bool = True
    context_tokens: int | None = None  # the prompt length the model was trained on; longer is not better
    name: str = "infill"

    @classmethod
    def from_checkpoint(cls, path: Path) -> InfillFormat:
        data = json.loads((path / INFILL_FILE).read_text(encoding="utf-8"))
        if data.get("format") != "infill":
            raise ValueError(f"{INFILL_FILE} declares format {data.get('format')!r}; only 'infill' is known")
        return cls(
            prefix_token=data["prefix_token"],
            suffix_token=data["suffix_token"],
            middle_token=data["middle_token"],
            add_bos=bool(data.get("add_bos", True)),
            context_tokens=int(data["context_tokens"]) if data.get("context_tokens") else None,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": "infill",
            "prefix_token": self.prefix_token,
            "suffix_token": self.suffix_token,
            "middle_token": self.middle_token,
            "add_bos": self.add_bos,
        }
        if self.context_tokens:
            data["context_tokens"] = self.context_tokens
        return data

    def special_ids(self, tokenizer: Any) -> tuple[int, int, int]:
        ids = tuple(
            int(tokenizer.convert_tokens_to_ids(t))
            for t in (self.suffix_token, self.prefix_token, self.middle_token)
        )
        unk = getattr(tokenizer, "unk_token_id", None)
        if any(i is None or i == unk for i in ids):
            raise ValueError(
                "the tokenizer lacks the infill special tokens "
                f"{self.suffix_token}, {self.prefix_token}, {self.middle_token}"
            )
        return ids  # type: ignore[return-value]

    def build(self, tokenizer: Any, request: EditRequest, budget: int) -> ModelContext:
        suf_id, pre_id, mid_id = self.special_ids(tokenizer)
        fixed = 3 + (1 if self.add_bos else 0)
        room = max(0, budget - fixed)
        prefix = _encode_tail(tokenizer, request.prefix, room)
        suffix = _encode_head(tokenizer, request.suffix, room)
        keep_p, keep_s = split_budget(len(prefix), len(suffix), room)
        truncated = (
            keep_p < len(prefix)
            or keep_s < len(suffix)
            or (
                len(request.prefix) > room * _CHARS_PER_TOKEN_CAP
                or len(request.suffix) > room * _CHARS_PER_TOKEN_CAP
            )
        )
        prefix = prefix[len(prefix) - keep_p :]
        suffix = suffix[:keep_s]
        ids: list[int] = []
        if self.add_bos:
            ids.append(int(tokenizer.bos_token_id))
        ids += [suf_id, *suffix, pre_id, *prefix, mid_id]
        return ModelContext(ids, keep_p, keep_s, truncated)


TARGET_OPEN = "<<<REWRITE"
TARGET_CLOSE = "REWRITE>>>"


@dataclass(frozen=True)
class ChatFormat:
    """Instruct checkpoints: the marked document and the instruction, in the chat template."""

    name: str = "chat"
    context_tokens: int | None = None

    def build(self, tokenizer: Any, request: EditRequest, budget: int) -> ModelContext:
        instruction = request.instruction.strip() or DEFAULT_INSTRUCTION
        head = (
            f"{instruction}\n\nBelow is a Markdown document. The passage to rewrite stands between "
            f"{TARGET_OPEN} and {TARGET_CLOSE}. Answer with the new passage only, in Markdown, "
            "without the markers.\n\n"
        )
        marked_target = f"{TARGET_OPEN}\n{request.target}\n{TARGET_CLOSE}"
        overhead = len(self._render(tokenizer, head + marked_target))
        room = max(0, budget - overhead)
        prefix = _encode_tail(tokenizer, request.prefix, room)
        suffix = _encode_head(tokenizer, request.suffix, room)
        keep_p, keep_s = split_budget(len(prefix), len(suffix), room)
        truncated = keep_p < len(prefix) or keep_s < len(suffix)
        prefix_text = tokenizer.decode(prefix[len(prefix) - keep_p :]) if keep_p else ""
        suffix_text = tokenizer.decode(suffix[:keep_s]) if keep_s else ""
        ids = self._render(tokenizer, head + prefix_text + marked_target + suffix_text)
        return ModelContext(ids, keep_p, keep_s, truncated)

    @staticmethod
    def _render(tokenizer: Any, content: str) -> list[int]:
        out = tokenizer.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True
        )
        if isinstance(out, dict) or hasattr(out, "input_ids"):
            out = out["input_ids"]
        return [int(i) for i in out]


def format_for_checkpoint(path: Path, tokenizer: Any) -> ContextFormat:
    """The checkpoint's own prompt format: infill if it declares one, else its chat template."""
    if (path / INFILL_FILE).is_file():
        return InfillFormat.from_checkpoint(path)
    if getattr(tokenizer, "chat_template", None):
        return ChatFormat()
    raise ValueError(
        f"{path} declares no prompt format: it has neither {INFILL_FILE} nor a chat template in its tokenizer"
    )
