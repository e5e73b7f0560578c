"""Kept words on the document side: which slot a kept span is in, phrases found and landed, marks."""

from __future__ import annotations

import pytest

from diffedit.document.keeps import KeepMarks, KeepProblem, find_phrases, landed, slot_offset
from diffedit.document.shapes import shape_of


def _offset(block: str, phrase: str) -> tuple[int, int]:
    a = block.index(phrase)
    return slot_offset(shape_of(block), block, a, a + len(phrase))


def test_a_phrase_maps_to_its_slot_and_offset() -> None:
    assert _offset("The quick brown fox.", "brown") == (0, 10)
    assert _offset("## Working with paths", "with") == (0, 8)  # after the held "## "
    # a list item's second line: the slot's original has no indentation, the block does
    block = "- first line\n  second line here"
    slot, offset = _offset(block, "line here")
    original = shape_of(block).slots[slot].original
    assert original[offset : offset + len("line here")] == "line here"
    quote = "> one two\n> three four"
    slot, offset = _offset(quote, "four")
    assert shape_of(quote).slots[slot].original[offset:].startswith("four")


def test_a_table_cell_phrase_is_in_its_own_cell() -> None:
    table = "| a | b |\n|---|---|\n| alpha | beta |"
    slot, offset = _offset(table, "beta")
    cell = shape_of(table).slots[slot].original
    assert cell[offset : offset + 4] == "beta"


@pytest.mark.parametrize(
    ("block", "phrase", "why"),
    [
        ("## Heading", "##", "markup"),
        ("one two\nthree four", "two\nthree", "line break"),
        ("| a | b |\n|---|---|\n| x | y |", "x | y", "markup"),
        ("words here", " ", "blank"),
    ],
)
def test_a_phrase_outside_the_written_text_is_refused(block: str, phrase: str, why: str) -> None:
    with pytest.raises(KeepProblem, match=why):
        _offset(block, phrase)


def test_find_phrases_in_order_and_refuse_the_missing() -> None:
    text = "intro\n\nthe cat sat on the mat\n\noutro"
    a, b = text.index("the cat"), text.index("mat") + 3
    assert find_phrases(text, ["the", "the"], a, b) == [
        (a, a + 3),
        (text.index("the mat"), text.index(" mat")),
    ]
    with pytest.raises(KeepProblem, match="not in the text"):
        find_phrases(text, ["intro"], a, b)
    with pytest.raises(KeepProblem, match="after the phrase before it"):
        find_phrases(text, ["mat", "cat"], a, b)


def test_landed_finds_phrases_in_order_even_across_a_rewrap() -> None:
    text = "a brown\nfox ran by the river and the river"
    first, second = text.index("river"), text.rindex("river")
    assert landed(text, ["brown fox", "river", "river"]) == [
        (2, 11),
        (first, first + 5),
        (second, second + 5),
    ]
    assert landed(text, ["zebra", "fox"]) == [None, (8, 11)]


def test_marks_toggle_follow_edits_and_drop_when_their_words_change() -> None:
    marks = KeepMarks()
    assert marks.toggle(10, 15, "brown")
    assert marks.toggle(20, 23, "fox")
    assert not marks.toggle(12, 13, "o")  # touching a mark unmarks it
    assert marks.spans == [(20, 23)]
    marks.toggle(10, 15, "brown")
    marks.apply_change(0, 0, 4)  # typed before both
    assert marks.spans == [(14, 19), (24, 27)] and marks.texts[(24, 27)] == "fox"
    marks.apply_change(25, 1, 1)  # typed inside the second: its words changed
    assert marks.spans == [(14, 19)]
    marks.apply_change(19, 0, 3)  # typed right after the first: it stays
    assert marks.spans == [(14, 19)]
    assert marks.within(0, 30) == [(14, 19)] and marks.within(15, 30) == []
    assert not marks.still_marking(lambda a, b: "brown")
    assert marks.still_marking(lambda a, b: "BROWN") and marks.spans == []
