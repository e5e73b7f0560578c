"""Planning a draft: which sections are empty, where each drafted block goes, and what it sees."""

from __future__ import annotations

import pytest

from diffedit.document.blocks import parse_blocks
from diffedit.document.drafts import (
    DRAFT_GAP,
    OutlineChanged,
    default_sections,
    find_section,
    insert_block,
    instruction_for,
    parse_section_list,
    place_block,
    sections,
)

OUTLINE = """# Guide

## Install

- pip install guide
- needs Python 3.11

## Usage

Explain the command line.

## Design

The design is written already. It has two paragraphs of real text, which no outline note would hold.

It goes on here.

## License
"""


def test_sections_tell_empty_from_written_and_containers() -> None:
    found = sections(OUTLINE)
    assert [(s.number, s.level, s.title) for s in found] == [
        (1, 1, "Guide"),
        (2, 2, "Install"),
        (3, 2, "Usage"),
        (4, 2, "Design"),
        (5, 2, "License"),
    ]
    guide, install, usage, design, license_ = found
    assert guide.container and not guide.drafted_by_default  # a title right above its chapters
    assert install.empty and [b.kind for b in install.blocks] == ["list item", "list item"]
    assert usage.empty  # a line of intent is a note
    assert not design.empty  # two paragraphs: body text
    assert license_.empty and not license_.blocks and not license_.container
    assert default_sections(found) == [2, 3, 5]


def test_a_long_paragraph_or_code_is_body_text_and_a_comment_is_a_note() -> None:
    text = (
        "## A\n\n"
        + " ".join(["word"] * 40)
        + "\n\n## B\n\n```\ncode\n```\n\n## C\n\n<!-- say why -->\n\n## D\n"
    )
    a, b, c, d = sections(text)
    assert not a.empty and not b.empty
    assert c.empty and d.empty


def test_setext_headings_and_levels() -> None:
    text = "Title\n=====\n\nPart\n----\n\n- a note\n"
    title, part = sections(text)
    assert (title.level, title.title, title.container) == (1, "Title", True)
    assert (part.level, part.title, part.empty) == (2, "Part", True)


def test_a_block_goes_after_the_notes_and_sees_everything_around_it() -> None:
    p = place_block(OUTLINE, 2, "Install", 0, 1)
    assert OUTLINE[: p.at].endswith("- needs Python 3.11")
    assert p.prefix == OUTLINE[: p.at] + DRAFT_GAP
    assert p.suffix == OUTLINE[p.at :] and "## License" in p.suffix  # the rest of the outline is context
    assert "Install" in p.instruction and "pip install guide" in p.instruction
    assert p.block_number == 5  # "# Guide", "## Install" and its two items come first
    drafted = insert_block(OUTLINE, p, "The drafted paragraph.")
    assert drafted == OUTLINE.replace(
        "- needs Python 3.11\n", "- needs Python 3.11\n\nThe drafted paragraph.\n"
    )
    assert parse_blocks(drafted)[p.block_number - 1].text(drafted) == "The drafted paragraph."


def test_each_block_reads_the_ones_drafted_before_it_and_headings_stay_byte_identical() -> None:
    text = OUTLINE
    drafted: list[str] = []
    for number, title in ((2, "Install"), (3, "Usage"), (5, "License")):
        for i in range(2):
            p = place_block(text, number, title, i, 2)
            assert all(d in p.prefix for d in drafted)  # the document so far, blocks just drafted included
            drafted.append(f"Drafted {number}.{i} paragraph.")
            text = insert_block(text, p, drafted[-1])
    # Removing the drafted blocks (what undo does) gives the outline back exactly.
    undone = text
    for number in (2, 3, 5):
        for i in range(2):
            undone = undone.replace(f"\n\nDrafted {number}.{i} paragraph.", "")
    assert undone == OUTLINE
    # The second block of a section follows the first; the section's own lines are untouched.
    usage = "Explain the command line.\n\nDrafted 3.0 paragraph.\n\nDrafted 3.1 paragraph.\n\n## Design"
    assert usage in text
    assert text.endswith("## License\n\nDrafted 5.0 paragraph.\n\nDrafted 5.1 paragraph.\n")


def test_no_trailing_newline_and_trailing_spaces_stay_on_their_line() -> None:
    text = "## A  \n\n## B"
    p = place_block(text, 1, "A", 0, 1)
    assert insert_block(text, p, "x.") == "## A  \n\nx.\n\n## B"
    p = place_block(text, 2, "B", 0, 1)
    assert insert_block(text, p, "y.") == "## A  \n\n## B\n\ny."


def test_sections_are_found_again_after_edits() -> None:
    edited = "# New first heading\n\n" + OUTLINE
    assert find_section(edited, 2, "Install").number == 3  # renumbered: found by its title
    with pytest.raises(OutlineChanged):
        find_section(OUTLINE.replace("## Usage", "## Use"), 3, "Usage")


def test_instruction_names_the_section_and_its_notes() -> None:
    found = sections(OUTLINE)
    assert instruction_for(OUTLINE, found[4], 0, 1).startswith("Write the body of the section “License”.")
    text = instruction_for(OUTLINE, found[1], 1, 3)
    assert "paragraph 2 of 3" in text and "- pip install guide; - needs Python 3.11" in text


def test_parse_section_list() -> None:
    assert parse_section_list("3, 1-2,2", 5) == [1, 2, 3]
    bad_specs = (("7", "out of range"), ("x", "not a section"), ("4-2", "backwards"), (",", "no section"))
    for bad, why in bad_specs:
        with pytest.raises(ValueError, match=why):
            parse_section_list(bad, 5)
