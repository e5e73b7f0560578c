"""evaluate_demo's pure parts: which held-out examples the one-pass accuracy reads."""

from __future__ import annotations

from pathlib import Path

from diffedit.training.evaluate_demo import accuracy_subset
from diffedit.training.examples import Example


def _examples(n: int) -> list[Example]:
    return [Example(prompt=[2, i], canvas=[i, 1]) for i in range(n)]


def test_all_examples_when_uncapped_or_under_the_cap() -> None:
    ex = _examples(5)
    assert accuracy_subset(ex, None) == ex
    assert accuracy_subset(ex, 5) == ex and accuracy_subset(ex, 9) == ex


def test_a_capped_subset_is_a_fixed_draw_of_distinct_examples() -> None:
    ex = _examples(200)
    first = accuracy_subset(ex, 20)
    assert len(first) == 20 and len({e.prompt[1] for e in first}) == 20
    assert accuracy_subset(ex, 20) == first  # the seed, not the run, decides
    assert [e.prompt[1] for e in first] != list(range(20))  # drawn, not the first twenty


def test_the_training_cache_is_used_only_for_the_same_tokenizer_budget_and_canvas(tmp_path: Path) -> None:
    import pickle

    from diffedit.training.evaluate_demo import train_target_examples

    cached = _examples(3)
    (tmp_path / "train_examples.pkl").write_bytes(pickle.dumps(("1185-99-192-128-8192", cached)))
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "train.jsonl").write_text("", encoding="utf-8")

    class Tok:
        def __init__(self, n: int) -> None:
            self.n = n

        def __len__(self) -> int:
            return self.n

    assert train_target_examples(Tok(8192), 192, 128, tmp_path) == cached
    # the first demo's 4096-entry tokenizer: another tokenizer's cache, so it builds its own (none here)
    assert train_target_examples(Tok(4096), 192, 128, tmp_path) == []
    assert train_target_examples(Tok(8192), 256, 128, tmp_path) == []
