"""Held-out prose blocks for the sampling sweep and the dictionary-word evaluation, chosen by a fixed seed.

Two sets: ``selection``, single prose blocks of the held-out documents of the training sources
(``data/corpus/heldout.jsonl``; without a corpus, the checkpoint's ``heldout_sample.jsonl``), and
``heldout_source``, blocks of the sources held out whole (``data/corpus/heldout_source.jsonl``).
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Sequence
from pathlib import Path

from diffedit.engine.engine import Engine
from diffedit.engine.types import EditRequest, GenerationSettings, RewriteJob, RewriteResult
from diffedit.rewrites import assemble_blocks, build_job
from diffedit.training import corpus
from diffedit.training.examples import Split, candidate_splits
from diffedit.training.text_metrics import dictionary_word_rate, repetition

SPLIT_SEED = 11
SWEEP_FILE = "sampling_sweep.json"  # written by diffedit.training.sweep_sampling
CHOICE_FILE = "snapshot_choice.json"  # written by diffedit.training.pick_snapshot


def is_prose_target(target: str) -> bool:
    return 40 <= len(target) <= 450 and corpus.block_kind(target) in ("paragraph", "list")


def prose_splits(docs: Sequence[corpus.Document], count: int, seed: int = SPLIT_SEED) -> list[Split]:
    """``count`` single-block prose splits of ``docs``, chosen by ``seed``: one block per document before
    any document gives a second, and the documents taken in turn from each source (origin), so that no
    document or source dominates."""
    rng = random.Random(seed)
    by_origin: dict[str, list[list[Split]]] = {}
    for d in docs:
        splits = [
            s for s in candidate_splits(d.text, rng) if "\n\n" not in s.target and is_prose_target(s.target)
        ]
        if splits:
            rng.shuffle(splits)
            by_origin.setdefault(d.origin, []).append(splits)
    for lists in by_origin.values():
        rng.shuffle(lists)
    longest = max((len(v) for v in by_origin.values()), default=0)
    per_doc = [by_origin[o][k] for k in range(longest) for o in sorted(by_origin) if k < len(by_origin[o])]
    chosen: list[Split] = []
    depth = 0
    while len(chosen) < count and any(len(s) > depth for s in per_doc):
        chosen += [s[depth] for s in per_doc if len(s) > depth][: count - len(chosen)]
        depth += 1
    return chosen


def trim_context(split: Split, chars: int = 1500) -> Split:
    return Split(split.prefix[-chars:], split.target, split.suffix[:chars])


def load_sets(checkpoint: Path, data_dir: Path, n: int, skip: int = 0) -> dict[str, list[Split]]:
    """``n`` blocks of each set. ``skip`` passes over the first ``skip`` selection blocks (the ones a sweep
    chose its sampler on), so that an evaluation reads blocks the choice never saw; the order is fixed, so
    the first ``skip`` blocks are exactly those a sweep of ``--n skip`` read."""
    corpus_dir = data_dir / "corpus"
    heldout = corpus.read_documents(corpus_dir / "heldout.jsonl", missing_ok=True)
    if heldout:
        selection = [trim_context(s) for s in prose_splits(heldout, skip + n)[skip:]]
    else:
        sample = read_sample(checkpoint / "heldout_sample.jsonl")
        selection = [s for s in sample if is_prose_target(s.target)][skip : skip + n]
    sets = {"selection": selection}
    other = corpus.read_documents(corpus_dir / "heldout_source.jsonl", missing_ok=True)
    if other:
        sets["heldout_source"] = [trim_context(s) for s in prose_splits(other, n)]
    return sets


def selection_blocks_used(checkpoint: Path) -> int:
    """How many selection blocks the checkpoint's choices read: its sampling sweep (the setting) and its
    snapshot choice (the weights); 0 where neither ran."""
    used = 0
    sweep, choice = checkpoint / SWEEP_FILE, checkpoint / CHOICE_FILE
    if sweep.is_file():
        used = int(json.loads(sweep.read_text(encoding="utf-8")).get("blocks", {}).get("selection", 0))
    if choice.is_file():
        used = max(used, int(json.loads(choice.read_text(encoding="utf-8")).get("blocks", 0)))
    return used


def read_sample(path: Path) -> list[Split]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [Split(r["prefix"], r["target"], r["suffix"]) for r in rows]


def reference_score(splits: Sequence[Split], words: frozenset[str]) -> dict[str, float]:
    """The original blocks' own figures: the ceiling a rewrite can reach on this text."""
    targets = [s.target for s in splits]
    return {
        "dictionary_word_rate": round(dictionary_word_rate(targets, words).rate, 4),
        "repetition": round(statistics.fmean(repetition(t) for t in targets), 4),
    }


def rewrite_split(
    engine: Engine, split: Split, settings: GenerationSettings, free_form: bool = False
) -> tuple[str, RewriteResult]:
    """``split``'s target rewritten as the editor rewrites it: block by block, each keeping its Markdown
    shape (``diffedit.rewrites``: a paragraph stays one paragraph, a list item one item), or ``free_form``
    (the engine alone: the model may write any blocks in the target's place)."""
    if free_form:
        res = engine.rewrite(RewriteJob(EditRequest(split.prefix, split.target, split.suffix), settings))
        return res.text, res
    text = split.prefix + split.target + split.suffix
    start = len(split.prefix)
    job = build_job(text, start, start + len(split.target), settings)
    res = engine.rewrite(job)
    return assemble_blocks(job, res).text, res
