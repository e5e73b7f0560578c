"""Context building: the checkpoint's own format, and the nearest text kept within the budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from diffedit.engine.context import (
    TARGET_CLOSE,
    TARGET_OPEN,
    ChatFormat,
    EditRequest,
    InfillFormat,
    format_for_checkpoint,
    split_budget,
)


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint: Path):
    return AutoTokenizer.from_pretrained(tiny_checkpoint)


def test_split_budget_gives_unused_room_to_the_other_side() -> None:
    assert split_budget(10, 10, 100) == (10, 10)
    assert split_budget(1000, 1000, 100) == (60, 40)
    assert split_budget(5, 1000, 100) == (5, 95)
    assert split_budget(1000, 5, 100) == (95, 5)


def test_infill_layout_is_suffix_then_prefix(tokenizer) -> None:
    fmt = InfillFormat()
    req = EditRequest("Before text.\n\n", "Target.", "\n\nAfter text.")
    ctx = fmt.build(tokenizer, req, budget=512)
    suf, pre, mid = fmt.special_ids(tokenizer)
    ids = ctx.input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[1] == suf and ids[-1] == mid
    p = ids.index(pre)
    assert tokenizer.decode(ids[2:p]) == "\n\nAfter text."
    assert tokenizer.decode(ids[p + 1 : -1]) == "Before text.\n\n"
    assert not ctx.truncated


def test_long_documents_keep_the_nearest_text(tokenizer) -> None:
    prefix = "".join(f"early{i} " for i in range(3000)) + "NEAR BEFORE\n\n"
    suffix = "\n\nNEAR AFTER " + "".join(f"late{i} " for i in range(3000))
    ctx = InfillFormat().build(tokenizer, EditRequest(prefix, "x", suffix), budget=120)
    assert len(ctx.input_ids) <= 120
    assert ctx.truncated
    text = tokenizer.decode(ctx.input_ids)
    assert "NEAR BEFORE" in text and "NEAR AFTER" in text
    assert "early0 " not in text and "late2999" not in text


def test_chat_format_marks_the_target_and_carries_the_instruction(tokenizer) -> None:
    tokenizer.chat_template = "{% for m in messages %}<bos>{{ m['content'] }}<eos>{% endfor %}"
    req = EditRequest("Intro.\n\n", "Old text.", "\n\nOutro.", instruction="Make it shorter.")
    ctx = ChatFormat().build(tokenizer, req, budget=4096)
    text = tokenizer.decode(ctx.input_ids)
    assert text.startswith("<bos>Make it shorter.")
    assert f"Intro.\n\n{TARGET_OPEN}\nOld text.\n{TARGET_CLOSE}\n\nOutro." in text


def test_format_comes_from_the_checkpoint(tiny_checkpoint: Path, tokenizer, tmp_path: Path) -> None:
    assert isinstance(format_for_checkpoint(tiny_checkpoint, tokenizer), InfillFormat)
    tokenizer.chat_template = "{{ messages[0]['content'] }}"
    assert isinstance(format_for_checkpoint(tmp_path, tokenizer), ChatFormat)
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="declares no prompt format"):
        format_for_checkpoint(tmp_path, tokenizer)


def test_target_span_outside_document_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the document"):
        EditRequest.from_document("abc", 2, 10)


def test_a_checkpoint_can_declare_its_context_length(tmp_path: Path) -> None:
    import json

    (tmp_path / "diffedit_infill.json").write_text(json.dumps(InfillFormat(context_tokens=192).to_json()))
    fmt = InfillFormat.from_checkpoint(tmp_path)
    assert fmt.context_tokens == 192


def test_the_engine_keeps_the_prompt_within_the_models_context(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from diffedit.engine.engine import Engine
    from diffedit.engine.types import GenerationSettings, RewriteJob

    ck = tmp_path / "short-context"
    shutil.copytree(tiny_checkpoint, ck)
    (ck / "diffedit_infill.json").write_text(json.dumps(InfillFormat(context_tokens=40).to_json()))
    engine = Engine.load(ck)
    seen: list[int] = []
    real = engine.loaded.context_format.build

    def spy(tokenizer, request, budget):  # type: ignore[no-untyped-def]
        ctx = real(tokenizer, request, budget)
        seen.append(len(ctx.input_ids))
        return ctx

    object.__setattr__(
        engine.loaded, "context_format", type("F", (), {"build": staticmethod(spy), "context_tokens": 40})()
    )
    long_doc = EditRequest("word " * 500, "x", " word" * 500)
    engine.rewrite(RewriteJob(long_doc, GenerationSettings(seed=0, steps=1, context_tokens=4096)))
    assert seen == [40]
