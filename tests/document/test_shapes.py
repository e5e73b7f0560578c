"""The shape a block's replacement keeps: templates reproduce every block kind, and any slot texts that
obey the slots' rules render to a block that markdown-it-py reads as the same kind, level and marker."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from diffedit.document.blocks import parse_blocks
from diffedit.document.shapes import (
    PARAGRAPH_LINE_START,
    Held,
    Shape,
    Slot,
    forbidden_anywhere,
    forbidden_at_line_start,
    render,
    rewrap,
    same_shape,
    shape_of,
    violations,
)

BLOCKS = {
    "paragraph": ["Plain paragraph with *emphasis*.", "A hard-wrapped\nparagraph of three\nlines, width 18."],
    "heading": [
        "# One",
        "## Two ##",
        "### Three",
        "#### Four",
        "##### Five",
        "###### Six",
        "Title\n=====",
        "Sub\n---",
    ],
    "list item": [
        "- dash item",
        "* star item\n  continued",
        "+ plus item",
        "1. first",
        "3) third",
        "10. tenth\n    wrapped",
        "- outer\n  - inner one\n  - inner two\n\n  more outer",
        "- ```sh\n  ls -l\n  ```",
    ],
    "blockquote": ["> quoted\n> more\n>\n> second para", "> - in a list\n>   wrapped"],
    "code": [
        "```py\nx = 1\n\ny = 2\n```",
        "~~~~ text\ncode\n~~~~",
        "```\nnever closed",
        "    indented\n\n    code",
    ],
    "table": ["| a | b |\n|---|:-:|\n| c | d |\n| e | f |", "a | b\n--- | ---\nc | d"],
}
EXAMPLES = [(kind, text) for kind, texts in BLOCKS.items() for text in texts]


@pytest.mark.parametrize(("kind", "text"), EXAMPLES)
def test_the_template_with_the_original_texts_is_the_original_byte_for_byte(kind: str, text: str) -> None:
    shape = shape_of(text, kind)
    assert shape.kind == kind and shape.slots
    assert render(shape, shape.originals()) == text
    assert same_shape(text, text)
    assert [s.target_chars for s in shape.slots] == [len(s.original) for s in shape.slots]


@pytest.mark.parametrize(("kind", "text"), EXAMPLES)
def test_a_change_of_kind_is_rejected(kind: str, text: str) -> None:
    other = "# Now a heading" if kind != "heading" else "Now a paragraph."
    verdict = same_shape(text, other)
    assert not verdict and "expected" in verdict.reason
    if not text.endswith("never closed"):  # an unclosed fence takes everything after it as code
        assert not same_shape(text, text + "\n\nA second block.")


@pytest.mark.parametrize(
    ("original", "new"),
    [
        ("## Two", "### Two"),  # level
        ("Title\n=====", "Title\n-----"),  # setext level
        ("- item", "* item"),  # marker
        ("3. item", "4. item"),  # number
        ("1. item", "1) item"),  # delimiter
        ("```py\nx\n```", "```sh\nx\n```"),  # info string
        ("```\nx\n```", "```\nx\n```\ny\n```"),  # closed early
        ("| a | b |\n|---|---|\n| c | d |", "| a | b |\n|---|---|\n| c | d |\n| e | f |"),  # rows
        ("| a | b |\n|---|---|\n| c | d |", "| a | b | c |\n|---|---|---|\n| c | d | e |"),  # columns
        ("- a\n- b", "- a\n\n- b"),  # tight list made loose
        ("| a | b |\n|---|---|\n| c | d |", "| a | b |\n|---|---|\n| c\\| d |"),  # a cell lost
    ],
)
def test_level_marker_number_info_and_cells_are_part_of_the_shape(original: str, new: str) -> None:
    assert not same_shape(original, new)


def test_held_parts_are_the_markers_and_slots_the_text() -> None:
    shape = shape_of("| a | b |\n|---|---|\n| c\\| | d |")
    assert shape.segments[0] == Held("| a | b |\n|---|---|\n|")
    assert [s.original for s in shape.slots] == [" c\\| ", " d "]  # an escaped pipe stays in its cell
    quote = shape_of("> one\n> two")
    assert quote.segments[0] == Held("> ") and quote.slots[0].line_prefix == "> "
    heading = shape_of("## Title")
    assert forbidden_anywhere(heading.slots[0]) == frozenset("\n")
    assert forbidden_at_line_start(shape_of("para").slots[0]) == tuple(
        r.pattern for r in PARAGRAPH_LINE_START
    )
    assert shape_of("```\nx\n```").slots[0].line_start[0].pattern.match("````")  # a longer fence closes it


def test_a_hard_wrapped_paragraph_keeps_its_width_and_a_one_line_paragraph_has_none() -> None:
    assert shape_of("one line").slots[0].wrap_width is None
    assert shape_of("first line\nsecond, longer line").slots[0].wrap_width == len("second, longer line")


def test_violations_name_what_a_line_would_open() -> None:
    para = shape_of("para").slots[0]
    assert violations(para, "fine text\nstill fine") == []
    assert any("heading" in v for v in violations(para, "fine\n# heading"))
    assert any("blank" in v for v in violations(para, "one\n\ntwo"))
    assert any("list" in v for v in violations(para, "one\n2. two"))
    assert violations(shape_of("| a |\n|---|\n| c |").slots[0], "x\\") != []


def test_shape_of_wants_exactly_one_block_of_the_named_kind() -> None:
    with pytest.raises(ValueError, match="2 blocks"):
        shape_of("one\n\ntwo")
    with pytest.raises(ValueError, match="not a heading"):
        shape_of("para", "heading")
    with pytest.raises(ValueError, match="slot texts"):
        render(shape_of("para"), [])


@given(words=st.lists(st.sampled_from(["a", "bb", "- x", "#", "1.", ">", "---", "ccc", "dddd"]), max_size=30))
def test_rewrap_keeps_the_words_and_opens_no_block(words: list[str]) -> None:
    text = " ".join(words)
    wrapped = rewrap(text, 12)
    assert wrapped.split() == text.split()
    for line in wrapped.split("\n")[1:]:  # the first line begins as the text does
        assert not any(r.pattern.match(line + "\n") for r in PARAGRAPH_LINE_START), line


@given(words=st.lists(st.text("abc", min_size=1, max_size=12), max_size=30))
def test_rewrap_fills_lines_up_to_the_width(words: list[str]) -> None:
    lines = rewrap(" ".join(words), 12).split("\n")
    assert all(len(line) <= 12 for line in lines)
    assert all(len(a) + 1 + len(b.split()[0]) > 12 for a, b in itertools.pairwise(lines))


# Pieces a model might write, among them everything that would open another block at a line start.
PIECES = [
    "word",
    "x",
    "#",
    "##",
    "-",
    "*",
    "+",
    "1.",
    "2)",
    ">",
    "```",
    "~~~",
    "~~~~",
    "|",
    "\\",
    "=",
    "===",
    "---",
]
PIECES += ["___", "* * *", "<div>", "[a]: /u", ":-", "`", " ", "  ", "\t", "a|b", "**b**", "x\\"]


def _obeying(slot: Slot, pieces: list[str], breaks: list[bool]) -> str:
    """Text built from ``pieces``, made to obey ``slot``'s rules using only the rules' own data."""
    text = "".join(p + ("\n" if b else " ") for p, b in zip(pieces, breaks, strict=False)).rstrip(" \n")
    for ch in forbidden_anywhere(slot):
        text = text.replace(ch, " ")
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if any(p.match("\n".join(lines[i:])) for p in forbidden_at_line_start(slot)):
            lines[i] = "x " + line
    text = "\n".join(lines)
    if any(rule.pattern.search(text) for rule in slot.edges):
        text = "x" + text + "x"
    return text


@st.composite
def slot_texts(draw: st.DrawFn, shape: Shape) -> list[str]:
    texts = []
    for slot in shape.slots:
        pieces = draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
        breaks = draw(st.lists(st.booleans(), min_size=len(pieces), max_size=len(pieces)))
        text = _obeying(slot, pieces, breaks)
        assume(not violations(slot, text))
        texts.append(text)
    return texts


@pytest.mark.parametrize(("kind", "original"), EXAMPLES)
@settings(max_examples=150, deadline=None)
@given(data=st.data(), wrap=st.booleans())
def test_any_texts_that_obey_the_rules_keep_the_shape(
    kind: str, original: str, data: st.DataObject, wrap: bool
) -> None:
    shape = shape_of(original)
    texts = data.draw(slot_texts(shape))
    new = render(shape, texts, wrap=wrap)
    verdict = same_shape(original, new)
    assert verdict, (verdict.reason, new)
    assert [b.kind for b in parse_blocks(new)] == [kind]


def test_a_heading_title_may_not_start_with_a_second_space() -> None:
    # "# " is held; a title starting with a space would write "#  Title" (seen on the demo model).
    (title,) = shape_of("## Title").slots
    assert violations(title, " Title") and not violations(title, "Title")
