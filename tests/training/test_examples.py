"""The example builder: splits at block boundaries, prompts and canvases from the engine's own code."""

from __future__ import annotations

import random

import pytest
from transformers import AutoTokenizer

from diffedit.engine.canvas import layout_canvases
from diffedit.engine.context import InfillFormat
from diffedit.engine.types import EditRequest
from diffedit.resources import resources_dir
from diffedit.training.corpus import block_kind, keep_block, split_blocks
from diffedit.training.examples import (
    BUCKET,
    Split,
    block_spans,
    build_examples,
    candidate_splits,
    encode_split,
)

DEMO = resources_dir() / "models" / "diffedit-demo"

DOC = """# Sorting

Python lists have a built-in `list.sort` method that modifies the list in-place.

-   The first item of a list.
-   The second item, with *emphasis*.

```python
>>> sorted([5, 2, 3, 1, 4])
[1, 2, 3, 4, 5]

>>> a = [5, 2]
```

## Key functions

Both methods take a *key* parameter to specify a function to be called on each element."""


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return AutoTokenizer.from_pretrained(str(DEMO))


def test_blocks_keep_fenced_code_whole() -> None:
    blocks = split_blocks(DOC)
    kinds = [block_kind(b) for b in blocks]
    assert kinds == ["heading", "paragraph", "list", "code", "heading", "paragraph"]
    assert blocks[3].startswith("```python") and blocks[3].endswith("```") and "\n\n>>> a" in blocks[3]


def test_prose_filter_drops_tables_and_fragments() -> None:
    assert not keep_block("| a | b |\n|---|---|")
    assert not keep_block("`os.path.join(a, b)`")
    assert keep_block("Both methods take a *key* parameter to specify a function to be called.")


def test_every_split_reassembles_the_document() -> None:
    spans = block_spans(DOC)
    assert len(spans) == 6
    for split in candidate_splits(DOC, random.Random(0)):
        assert split.prefix + split.target + split.suffix == DOC
        assert split.prefix == "" or split.prefix.endswith("\n\n")
        assert split.suffix == "" or split.suffix.startswith("\n\n")
        assert not split.target.endswith("\n")


def test_encoded_example_uses_infill_format_and_layout_canvases(tokenizer: object) -> None:
    fmt = InfillFormat()
    split = next(s for s in candidate_splits(DOC, random.Random(0)) if s.target.startswith("Python lists"))
    ex = encode_split(tokenizer, fmt, split, budget=192, canvas_length=128)
    assert ex is not None
    assert len(ex.prompt) % BUCKET == 0
    target_ids = tokenizer.encode(split.target, add_special_tokens=False)
    assert [ex.canvas] == layout_canvases(target_ids, 128, tokenizer.eos_token_id, tokenizer.pad_token_id)
    request = EditRequest(split.prefix, split.target, split.suffix)
    assert ex.prompt == fmt.build(tokenizer, request, len(ex.prompt)).input_ids
    suf, pre, mid = fmt.special_ids(tokenizer)
    assert ex.prompt[0] == tokenizer.bos_token_id and ex.prompt[1] == suf and ex.prompt[-1] == mid
    assert pre in ex.prompt


def test_target_longer_than_one_canvas_is_skipped(tokenizer: object) -> None:
    long = Split("Intro.\n\n", " ".join(["word"] * 200), "")
    assert encode_split(tokenizer, InfillFormat(), long, budget=192, canvas_length=128) is None


def test_examples_encoded_in_worker_processes_are_the_ones_one_process_makes(tokenizer: object) -> None:
    docs = [
        DOC.replace("Sorting", f"Sorting {i}").replace("list", "sequence" if i % 2 else "list")
        for i in range(6)
    ]
    one = build_examples(tokenizer, docs, budget=96, canvas_length=128, seed=3)
    two = build_examples(tokenizer, docs, budget=96, canvas_length=128, seed=3, workers=2)
    assert len(one) > 12 and one == two
    # and they are the splits candidate_splits draws with the same seed, in the same order
    rng = random.Random(3)
    splits = [s for d in docs for s in candidate_splits(d, rng)]
    encoded = [encode_split(tokenizer, InfillFormat(), s, 96, 128) for s in splits]
    assert one == [e for e in encoded if e is not None]
