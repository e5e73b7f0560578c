"""Keep, inspect and polish on an instruct-format DiffusionGemma checkpoint (a chat template, no infill file):
the same guarantees as on the bundled infill model, through the chat prompt."""

from __future__ import annotations

import itertools
import json

import pytest

from diffedit.document.keeps import landed
from diffedit.engine.context import INFILL_FILE, follows_instructions
from diffedit.engine.engine import Engine
from diffedit.engine.types import EditRequest, GenerationSettings
from diffedit.rewrites import assemble_blocks, build_job, kept_phrases
from tests.checkpoints import build_checkpoint

DOC = "# Notes\n\nthe fox and the dog ran to the river and back again today\n\nEnd.\n"
PARA = DOC.index("the fox")
PARA_END = DOC.index("\n\nEnd")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = build_checkpoint(tmp_path_factory.mktemp("chat-dg") / "chat-dg", canvas_length=32)
    (folder / INFILL_FILE).unlink()  # an instruct checkpoint: its prompt comes from the chat template
    config = folder / "tokenizer_config.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data["chat_template"] = "{% for m in messages %}<bos>{{ m['content'] }}<eos>{% endfor %}"
    config.write_text(json.dumps(data), encoding="utf-8")
    engine = Engine.load(str(folder), device="cpu")
    assert engine.loaded.context_format.name == "chat" and follows_instructions(engine)
    return engine


def _span(phrase: str) -> tuple[int, int]:
    a = DOC.index(phrase)
    return a, a + len(phrase)


@pytest.mark.parametrize("seed", range(3))
def test_kept_phrases_hold_through_the_chat_prompt(engine: Engine, seed: int) -> None:
    keeps = [_span("fox"), _span("river")]
    job = build_job(DOC, PARA, PARA_END, GenerationSettings(seed=seed, steps=4), "make it vivid", keeps=keeps)
    assembly = assemble_blocks(job, engine.rewrite(job))
    where = landed(assembly.text, kept_phrases(job))
    assert all(w is not None for w in where), assembly.text
    starts = [w[0] for w in where if w is not None]
    assert starts == sorted(starts)


def test_inspect_spans_tile_the_text_on_the_chat_format(engine: Engine) -> None:
    request = EditRequest.from_document(DOC, PARA, PARA_END, "make it vivid")
    readings = engine.inspect(request, top_k=2)
    target = request.target
    assert readings[0].start == 0 and readings[-1].end == len(target)
    assert all(x.end == y.start for x, y in itertools.pairwise(readings))
    assert all(0.0 <= r.p <= 1.0 and r.entropy >= 0.0 for r in readings)


@pytest.mark.parametrize("seed", range(2))
def test_polish_keeps_every_likely_token_on_the_chat_format(engine: Engine, seed: int) -> None:
    request = EditRequest.from_document(DOC, PARA, PARA_END)
    readings = engine.inspect(request)
    threshold = sorted(r.p for r in readings)[len(readings) // 2]  # random weights: half weak, half strong
    job = build_job(DOC, PARA, PARA_END, GenerationSettings(seed=seed, steps=4), polish=threshold)
    result = engine.rewrite(job)
    ids = engine.tokenizer.encode(job.request.target, add_special_tokens=False)
    assert [r.token_id for r in readings] == ids
    strong = [i for i, r in enumerate(readings) if r.p >= threshold]
    assert 0 < len(strong) < len(ids)
    assert result.polished == len(ids) - len(strong)
    written = list(result.token_ids)
    assert len(written) == len(ids)
    assert all(written[i] == ids[i] for i in strong)
    assert written != ids  # the weak ones were re-drawn (a random model rarely redraws them all the same)
