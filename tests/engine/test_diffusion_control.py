"""Keep, inspect and polish end to end on the bundled demo model, loaded as users load it."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

from diffedit.document.keeps import landed
from diffedit.engine.canvas import layout_canvases
from diffedit.engine.decoder import EncodedContext
from diffedit.engine.engine import Engine
from diffedit.engine.types import EditRequest, GenerationSettings, KeepRefused
from diffedit.rewrites import assemble_blocks, build_job, kept_phrases

DOC = (
    "# Field notes\n\n"
    "The quick brown fox jumps over the lazy dog near the river bank, and the path winds on.\n\n"
    "- a list item with a few words in it\n\n"
    "Closing words.\n"
)
PARA = DOC.index("The quick")
ITEM_END = DOC.index("in it") + len("in it")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load(None)  # the bundled demo model


def _span(phrase: str) -> tuple[int, int]:
    a = DOC.index(phrase)
    return a, a + len(phrase)


@pytest.mark.parametrize("seed", range(8))
def test_kept_phrases_appear_verbatim_and_in_order(engine: Engine, seed: int) -> None:
    keeps = [_span("brown fox"), _span("river"), _span("few words")]
    job = build_job(DOC, PARA, ITEM_END, GenerationSettings(seed=seed, steps=3), keeps=keeps)
    assembly = assemble_blocks(job, engine.rewrite(job))
    assert kept_phrases(job) == ["brown fox", "river", "few words"]
    where = landed(assembly.text, kept_phrases(job))
    assert all(w is not None for w in where), assembly.text
    starts = [w[0] for w in where if w is not None]
    assert starts == sorted(starts)
    assert not any(b.kept_original for b in assembly.blocks)  # the blocks kept their shapes too
    assert assembly.text.split("\n\n")[1].startswith("- ")


def test_kept_words_that_cannot_fit_are_refused_before_the_run(engine: Engine) -> None:
    whole = _span("The quick brown fox jumps over the lazy dog near the river bank, and the path winds on.")
    # "shorter" allows at most 0.9 of the original's tokens: the kept words alone take more
    job = build_job(DOC, PARA, ITEM_END, GenerationSettings(seed=1, steps=2), "shorter", keeps=[whole])
    frames = []
    with pytest.raises(KeepRefused, match="more than"):
        engine.rewrite(job, on_frame=frames.append)
    assert frames == []  # nothing ran


def _direct_p(engine: Engine, prompt: list[int], canvas: list[int], before: list[int] = ()) -> torch.Tensor:
    """The model's own forward (transformers' ``model(...)``): softmax at each canvas token's id, after
    ``prompt`` and the finished canvas ``before`` (encoded as a rewrite encodes it: one append each)."""
    model = engine.model
    context = EncodedContext(model)
    with torch.no_grad():
        for part in (prompt, before):
            if part:
                context.append(torch.tensor([list(part)]))
    masks, positions = context.canvas_inputs(torch.device("cpu"))
    cache = context.cache
    ids = torch.tensor([canvas])
    with torch.no_grad():
        logits = model(
            decoder_input_ids=ids, decoder_attention_mask=masks, cache=cache, decoder_position_ids=positions
        ).logits[0]
    return torch.softmax(logits.float(), dim=-1).gather(-1, ids[0][:, None]).squeeze(-1)


def test_inspect_spans_tile_the_text_and_p_is_the_models_softmax(engine: Engine) -> None:
    long_para = " ".join(["The river bank is where the quick fox rests after a long day."] * 30)
    doc = f"# Notes\n\n{long_para}\n\nAfter.\n"
    a, b = doc.index("The river"), doc.index("\n\nAfter")
    request = EditRequest.from_document(doc, a, b)
    readings = engine.inspect(request, top_k=3)
    target = request.target
    assert readings[0].start == 0 and readings[-1].end == len(target)
    assert all(x.end == y.start for x, y in itertools.pairwise(readings))
    assert "".join(target[r.start : r.end] for r in readings) == target
    n = engine.canvas_length
    assert len(readings) > n  # canvas after canvas

    fmt = engine.loaded.context_format
    prompt = fmt.build(engine.tokenizer, request, min(1024, fmt.context_tokens or 1024)).input_ids
    ids = [r.token_id for r in readings]
    eos = min(engine.eos_ids)
    canvases = layout_canvases(ids, n, eos, engine.pad_id)
    first = _direct_p(engine, prompt, canvases[0])
    assert torch.allclose(torch.tensor([r.p for r in readings[:n]]), first, atol=1e-5)
    second = _direct_p(engine, prompt, canvases[1], before=canvases[0])
    got = torch.tensor([r.p for r in readings[n : 2 * n]])
    assert torch.allclose(got, second[: len(got)], atol=1e-5)
    for r in readings[:20]:
        assert 0.0 <= r.p <= 1.0 and r.entropy >= 0.0 and len(r.top) == 3
        assert r.top[0][1] >= r.p - 1e-6  # the best alternative is at least as likely as the token


@pytest.mark.parametrize("seed", range(4))
def test_polish_refills_only_the_weak_tokens(engine: Engine, seed: int) -> None:
    threshold = 0.3
    job = build_job(
        DOC, PARA, PARA + DOC[PARA:].index("\n\n"), GenerationSettings(seed=seed, steps=4), polish=threshold
    )
    result = engine.rewrite(job)
    original = job.request.target
    ids = engine.tokenizer.encode(original, add_special_tokens=False)
    fmt = engine.loaded.context_format
    prompt = fmt.build(engine.tokenizer, job.request, min(1024, fmt.context_tokens or 1024)).input_ids
    layout = layout_canvases(ids, engine.canvas_length, min(engine.eos_ids), engine.pad_id)[0]
    p = _direct_p(engine, prompt, layout)[: len(ids)]
    weak = [i for i in range(len(ids)) if p[i] < threshold]
    assert result.polished == len(weak) and 0 < len(weak) < len(ids)
    written = list(result.token_ids)
    assert len(written) == len(ids)
    assert all(written[i] == ids[i] for i in range(len(ids)) if i not in weak)  # every likely token kept
    # and in text: the strong tokens' characters stay byte for byte
    text = assemble_blocks(job, result).text
    pieces = [engine.decode_raw([t]) for t in written]
    assert "".join(pieces) == text
    for i in range(len(ids)):
        if i not in weak:
            assert pieces[i] == engine.decode_raw([ids[i]])


def test_a_free_form_polish_is_one_slot_of_the_targets_length(engine: Engine) -> None:
    a, b = PARA, PARA + DOC[PARA:].index("\n\n")
    job = build_job(DOC, a, b, GenerationSettings(seed=2, steps=3), free_form=True, polish=0.5)
    result: Any = engine.rewrite(job)
    assert result.polished is not None and len(result.token_ids) == len(engine.tokenizer.encode(DOC[a:b]))
