"""heldout_sets: the fixed-seed prose blocks, and the evaluation's blocks kept apart from the sweep's."""

from __future__ import annotations

import json
from pathlib import Path

from diffedit.training import corpus
from diffedit.training.corpus import Document
from diffedit.training.heldout_sets import CHOICE_FILE, SWEEP_FILE, load_sets, selection_blocks_used

PARAGRAPH = (
    "Paragraph {i} of document {d} says something plain about the subject at hand, at a useful length for "
    "a rewrite."
)


def data_dir(tmp_path: Path, documents: int = 8, paragraphs: int = 5) -> Path:
    docs = [
        Document(f"doc-{d}", "\n\n".join(PARAGRAPH.format(i=i, d=d) for i in range(paragraphs)), "python")
        for d in range(documents)
    ]
    data = tmp_path / "data"
    (data / "corpus").mkdir(parents=True)
    corpus.write_jsonl(data / "corpus" / "heldout.jsonl", docs)
    return data


def test_skipping_the_sweeps_blocks_reads_only_blocks_it_never_saw(tmp_path: Path) -> None:
    data = data_dir(tmp_path)
    swept = [s.target for s in load_sets(tmp_path, data, 6)["selection"]]
    evaluated = [s.target for s in load_sets(tmp_path, data, 10, skip=6)["selection"]]
    unskipped = [s.target for s in load_sets(tmp_path, data, 16)["selection"]]
    assert len(swept) == 6 and len(evaluated) == 10
    assert not set(swept) & set(evaluated)
    assert unskipped == swept + evaluated  # one fixed order: the sweep's blocks come first


def test_the_blocks_to_skip_are_the_most_any_choice_read(tmp_path: Path) -> None:
    assert selection_blocks_used(tmp_path) == 0  # no sweep, no snapshot choice: nothing to skip
    (tmp_path / SWEEP_FILE).write_text(json.dumps({"blocks": {"selection": 24, "heldout_source": 24}}))
    assert selection_blocks_used(tmp_path) == 24
    (tmp_path / CHOICE_FILE).write_text(json.dumps({"blocks": 32}))  # snapshots chosen on more blocks
    assert selection_blocks_used(tmp_path) == 32
