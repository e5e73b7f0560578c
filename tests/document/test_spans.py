"""Chunks for the confidence view (whole paragraphs, cut at blank lines) and the polish review's word diff."""

from __future__ import annotations

from diffedit.document.spans import changed_words, chunk_spans


def test_chunks_are_whole_paragraphs_within_the_size_and_cover_every_word() -> None:
    text = "\n\nA para.\n\nB two\nlines\n\n\n" + "x" * 50 + "\n\nlast  \n"
    spans = chunk_spans(text, 0, len(text), 20)
    assert [text[a:b] for a, b in spans] == ["A para.\n\nB two\nlines", "x" * 50, "last"]
    assert [text[a:b] for a, b in chunk_spans(text, 0, len(text), 10_000)] == [text.strip()]
    words = " ".join(text[a:b] for a, b in spans).split()
    assert words == text.split()


def test_chunks_of_a_part_stay_inside_it() -> None:
    text = "one\n\ntwo\n\nthree\n\nfour"
    a, b = text.index("two"), text.index("three") + 5
    assert [text[x:y] for x, y in chunk_spans(text, a, b, 3)] == ["two", "three"]


def test_changed_words_mark_what_differs_in_the_new_text() -> None:
    old, new = "the quick brown fox jumps over", "the quick red fox leaps over it"
    assert [new[a:b] for a, b in changed_words(old, new)] == ["red", "leaps", "it"]
    assert changed_words(old, old) == []
