"""Dictionary-word rate and repetition of generated Markdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffedit.training.text_metrics import (
    MissingWordList,
    dictionary_word_rate,
    dictionary_words,
    load_words,
    prose_words,
    repetition,
)

WORDS = frozenset({"the", "cat", "sat", "on", "mat", "a", "dog's"})


def test_only_prose_words_count_not_code_or_urls() -> None:
    text = "The cat `sys.path` sat on https://example.org/x the mat.\n\n```python\nimport zzz\n```\n"
    assert prose_words(text) == ["The", "cat", "sat", "on", "the", "mat"]


def test_rate_is_known_over_total_case_insensitive_with_possessives() -> None:
    count = dictionary_words("The cat's zorble sat on a mat", WORDS)
    assert (count.known, count.total) == (6, 7)  # "cat's" via "cat"; "zorble" unknown
    pooled = dictionary_word_rate(["the cat", "qq zz"], WORDS)
    assert (pooled.known, pooled.total) == (2, 4) and pooled.rate == 0.5
    assert dictionary_word_rate([], WORDS).rate == 0.0


def test_repetition_is_the_share_of_repeated_word_pairs() -> None:
    assert repetition("the the the the") == pytest.approx(2 / 3)
    assert repetition("the cat sat on the mat") == 0.0
    assert repetition("the cat the cat the cat") == pytest.approx(3 / 5)
    assert repetition("one") == 0.0


def test_missing_word_list_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(MissingWordList, match="apt-get install wamerican"):
        load_words(tmp_path / "words")
    (tmp_path / "words").write_text("Cat\nmat\n\n", encoding="utf-8")
    assert load_words(tmp_path / "words") == frozenset({"cat", "mat"})
