"""evaluate_demo's pure parts: which held-out examples the one-pass accuracy reads."""

from __future__ import annotations

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
