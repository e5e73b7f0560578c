"""Training examples: a Markdown document split at block boundaries into prefix, target and suffix.

The prompt is built with the engine's own :class:`~diffedit.engine.context.InfillFormat` and the target's
canvas with :func:`~diffedit.engine.canvas.layout_canvases`, so training and inference agree exactly.
Targets are restricted to one canvas (target tokens + eos fit in ``canvas_length``); longer runs are skipped.
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from diffedit.engine.canvas import layout_canvases
from diffedit.engine.context import InfillFormat
from diffedit.engine.types import EditRequest
from diffedit.training.corpus import split_blocks

MAX_TARGET_BLOCKS = 3
BUCKET = 16  # prompt lengths are cut to a multiple of this, so a batch needs no padding


@dataclass(frozen=True)
class Split:
    prefix: str
    target: str
    suffix: str


@dataclass(frozen=True)
class Example:
    prompt: list[int]
    canvas: list[int]


def block_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the document's Markdown blocks, in order."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for block in split_blocks(text):
        start = text.find(block, pos)
        if start < 0:
            raise ValueError("block not found in its document: the corpus is not normalized")
        spans.append((start, start + len(block)))
        pos = start + len(block)
    return spans


def split_at(text: str, spans: Sequence[tuple[int, int]], first: int, count: int) -> Split:
    """Blocks ``first .. first+count-1`` as the target; everything before and after as prefix and suffix."""
    start, end = spans[first][0], spans[first + count - 1][1]
    return Split(text[:start], text[start:end], text[end:])


def candidate_ranges(blocks: int, rng: random.Random) -> list[tuple[int, int]]:
    """(first block, block count) of every candidate target: for every block, the block alone, and a run of
    2..MAX_TARGET_BLOCKS blocks starting there (its length drawn from ``rng``)."""
    ranges = []
    for first in range(blocks):
        ranges.append((first, 1))
        longest = min(MAX_TARGET_BLOCKS, blocks - first)
        if longest >= 2:
            ranges.append((first, rng.randint(2, longest)))
    return ranges


def candidate_splits(text: str, rng: random.Random) -> Iterator[Split]:
    """The document split at each of :func:`candidate_ranges`."""
    spans = block_spans(text)
    for first, count in candidate_ranges(len(spans), rng):
        yield split_at(text, spans, first, count)


def bucketed_budget(natural_length: int, budget: int) -> int:
    """The prompt length an example gets: its full length, at most ``budget``, cut to a multiple of BUCKET."""
    return max(BUCKET, min(budget, natural_length) // BUCKET * BUCKET)


def encode_split(
    tokenizer: Any, fmt: InfillFormat, split: Split, budget: int, canvas_length: int
) -> Example | None:
    """Prompt ids (exactly a multiple of BUCKET long) and the one canvas, or None if the target needs two."""
    target_ids = list(tokenizer.encode(split.target, add_special_tokens=False))
    if not target_ids or len(target_ids) + 1 > canvas_length:
        return None
    request = EditRequest(split.prefix, split.target, split.suffix)
    natural = len(fmt.build(tokenizer, request, budget).input_ids)
    if natural < BUCKET:
        return None
    prompt = fmt.build(tokenizer, request, bucketed_budget(natural, budget)).input_ids
    if len(prompt) % BUCKET:
        return None
    (canvas,) = layout_canvases(target_ids, canvas_length, tokenizer.eos_token_id, tokenizer.pad_token_id)
    return Example(prompt, canvas)


def encode_document(
    tokenizer: Any, text: str, ranges: Sequence[tuple[int, int]], budget: int, canvas_length: int
) -> list[Example]:
    """The examples of one document's candidate ``ranges`` (those that fit one canvas)."""
    fmt = InfillFormat()
    spans = block_spans(text)
    out = []
    for first, count in ranges:
        ex = encode_split(tokenizer, fmt, split_at(text, spans, first, count), budget, canvas_length)
        if ex is not None:
            out.append(ex)
    return out


_worker: tuple[Any, int, int] | None = None  # a pool worker's (tokenizer, budget, canvas_length)


def _start_worker(tokenizer: Any, budget: int, canvas_length: int) -> None:
    global _worker
    _worker = (tokenizer, budget, canvas_length)


def _encode_in_worker(item: tuple[str, list[tuple[int, int]]]) -> list[Example]:
    assert _worker is not None
    tokenizer, budget, canvas_length = _worker
    return encode_document(tokenizer, item[0], item[1], budget, canvas_length)


def build_examples(
    tokenizer: Any, texts: Sequence[str], budget: int, canvas_length: int, seed: int = 0, workers: int = 1
) -> list[Example]:
    """Every document's examples, in document order. The candidate targets are drawn first, in one pass
    with one ``rng`` (cheap); encoding them (the tokenizer, the cost) then runs in ``workers`` processes,
    which yields the same list as one process."""
    rng = random.Random(seed)
    items = [(text, candidate_ranges(len(block_spans(text)), rng)) for text in texts]
    if workers <= 1 or len(items) < 2 * workers:
        per_doc = [encode_document(tokenizer, t, r, budget, canvas_length) for t, r in items]
    else:
        spawn = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
        with ProcessPoolExecutor(
            workers, mp_context=spawn, initializer=_start_worker, initargs=(tokenizer, budget, canvas_length)
        ) as pool:
            per_doc = list(pool.map(_encode_in_worker, items, chunksize=max(1, len(items) // (8 * workers))))
    return [ex for doc in per_doc for ex in doc]
