"""Drafting from an outline: which sections to fill, where each drafted block goes, what it sees. Pure Python.

An outline is a Markdown document of headings, each optionally followed by *notes*: list items, HTML
comments, or one short line of intent. A section is a heading and the blocks under it up to the next
heading (of any level). A section is *empty* when it holds notes only; a heading directly followed by a
deeper heading is a *container* (a title, a chapter) and is not drafted by default.

Drafted blocks go at the end of their section (after its notes and after the blocks drafted before them),
separated by one blank line (``DRAFT_GAP``). Nothing else moves: the user's headings and notes stay byte for
byte, so undoing every drafted block returns the outline exactly. Each block is planned from the text as it
is *now* (``place_block``), so it sees every block drafted before it, and everything after the insertion
point (the rest of the outline) as fixed context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diffedit.document.blocks import Block, parse_blocks

DRAFT_GAP = "\n\n"  # between the section's last block and a drafted block
NOTE_WORDS = 25  # a paragraph of one line and at most this many words is a line of intent, not body text
_ATX_TITLE = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")


class OutlineChanged(Exception):
    """The section to draft is no longer where the plan put it (the user edited its heading away)."""


@dataclass(frozen=True)
class Section:
    """A heading and what stands under it, up to the next heading."""

    number: int  # from 1, one per heading, in document order
    level: int
    title: str
    heading: Block
    blocks: tuple[Block, ...]  # the blocks under the heading
    empty: bool  # notes only: drafting fills it by default
    container: bool  # nothing under it but a deeper heading next (a title or a chapter)

    @property
    def end(self) -> int:
        """Offset of the end of the section's last block (its heading's, when it has none)."""
        return (self.blocks[-1] if self.blocks else self.heading).end

    @property
    def drafted_by_default(self) -> bool:
        return self.empty and not self.container


def heading_level_and_title(text: str) -> tuple[int, str]:
    """``(level, title)`` of an ATX or setext heading block's text."""
    lines = text.split("\n")
    if len(lines) > 1:  # setext: the title's lines, then the underline
        return (1 if lines[-1].strip().startswith("=") else 2), " ".join(s.strip() for s in lines[:-1])
    m = _ATX_TITLE.match(lines[0])
    level = len(lines[0].lstrip(" ")) - len(lines[0].lstrip(" ").lstrip("#"))
    return level, ((m.group(1) or "") if m else lines[0].lstrip(" #")).strip()


def is_note(block: Block, text: str) -> bool:
    """A list item, an HTML comment, or a paragraph of one short line (a line of intent)."""
    body = block.text(text)
    if block.kind == "list item":
        return True
    if block.kind == "html":
        return body.lstrip().startswith("<!--")
    return block.kind == "paragraph" and "\n" not in body and len(body.split()) <= NOTE_WORDS


def sections(text: str, blocks: list[Block] | None = None) -> list[Section]:
    """The document's sections in order (text before the first heading belongs to none)."""
    blocks = parse_blocks(text) if blocks is None else blocks
    heads = [i for i, b in enumerate(blocks) if b.kind == "heading"]
    out: list[Section] = []
    for n, i in enumerate(heads):
        stop = heads[n + 1] if n + 1 < len(heads) else len(blocks)
        under = tuple(blocks[i + 1 : stop])
        level, title = heading_level_and_title(blocks[i].text(text))
        notes = [b for b in under if is_note(b, text)]
        empty = len(notes) == len(under) and sum(b.kind == "paragraph" for b in notes) <= 1
        next_level = heading_level_and_title(blocks[stop].text(text))[0] if stop < len(blocks) else 0
        container = not under and next_level > level
        out.append(Section(n + 1, level, title, blocks[i], under, empty, container))
    return out


def default_sections(found: list[Section]) -> list[int]:
    """The numbers of the sections Draft Sections fills unless told otherwise: the empty ones."""
    return [s.number for s in found if s.drafted_by_default]


def parse_section_list(spec: str, count: int) -> list[int]:
    """``"1,3-4"`` -> ``[1, 3, 4]`` (sorted, once each); ValueError naming what is wrong."""
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            a, b = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"{part!r} is not a section number or range (e.g. 2 or 2-4)") from None
        if b < a:
            raise ValueError(f"{part!r} runs backwards")
        for n in (a, b):
            if not 1 <= n <= count:
                raise ValueError(f"section {n} is out of range: the outline has sections 1..{count}")
        chosen.update(range(a, b + 1))
    if not chosen:
        raise ValueError("no section numbers given")
    return sorted(chosen)


@dataclass(frozen=True)
class Placement:
    """Where one drafted block goes and what the model sees around it.

    The block is inserted at ``at`` as ``DRAFT_GAP`` + the paragraph; ``prefix`` (the document up to ``at``
    plus the gap) and ``suffix`` (the rest, the outline still to draft included) are the fixed context.
    """

    section: Section
    index: int  # of the section's drafted blocks, from 0
    count: int  # blocks to draft in this section
    at: int
    prefix: str
    suffix: str
    instruction: str
    block_number: int  # the number the drafted block will have (for the history)


def find_section(text: str, number: int, title: str) -> Section:
    """Section ``number`` if it still has ``title``, else the one section with that title."""
    found = sections(text)
    if 1 <= number <= len(found) and found[number - 1].title == title:
        return found[number - 1]
    same = [s for s in found if s.title == title]
    if len(same) == 1:
        return same[0]
    raise OutlineChanged(f"the section “{title}” is no longer in the outline")


def insertion_point(text: str, section: Section) -> int:
    """The end of the line that ends the section: trailing spaces of that line stay where they are."""
    newline = text.find("\n", section.end)
    return len(text) if newline < 0 else newline


def notes_of(text: str, section: Section) -> list[str]:
    """The section's notes as one line each (markers and comment brackets left in)."""
    return [" ".join(b.text(text).split()) for b in section.blocks if is_note(b, text)]


def instruction_for(text: str, section: Section, index: int, count: int) -> str:
    """What an instruct model is asked (the heading and notes; an infill model reads them in the context)."""
    which = "the body" if count == 1 else f"paragraph {index + 1} of {count} of the body"
    notes = notes_of(text, section)
    follow = f", following its notes ({'; '.join(notes)})" if notes else ""
    return (
        f"Write {which} of the section “{section.title}”{follow}. One paragraph of prose that continues the "
        "document; no heading, no list."
    )


def place_block(text: str, number: int, title: str, index: int, count: int) -> Placement:
    """The next drafted block of section ``number`` (titled ``title``) in ``text`` as it is now."""
    section = find_section(text, number, title)
    at = insertion_point(text, section)
    block_number = (section.blocks[-1] if section.blocks else section.heading).number + 1
    return Placement(
        section,
        index,
        count,
        at,
        text[:at] + DRAFT_GAP,
        text[at:],
        instruction_for(text, section, index, count),
        block_number,
    )


def insert_block(text: str, placement: Placement, paragraph: str) -> str:
    """``text`` with the drafted ``paragraph`` in place (what the editor's commit does, for the CLI)."""
    return text[: placement.at] + DRAFT_GAP + paragraph + text[placement.at :]
