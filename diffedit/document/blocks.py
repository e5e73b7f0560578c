"""Markdown blocks with character offsets: what a selection snaps to and what the CLI numbers.

Pure Python (markdown-it-py); no Qt. A block is a paragraph, heading, list item, code block, fenced code,
block quote, table, thematic break or HTML block. Lists are split into their items; a nested list stays
inside its item. Offsets are Python string indices into the document text.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from markdown_it import MarkdownIt

_KIND_BY_TOKEN = {
    "paragraph_open": "paragraph",
    "heading_open": "heading",
    "fence": "code",
    "code_block": "code",
    "blockquote_open": "blockquote",
    "table_open": "table",
    "hr": "rule",
    "html_block": "html",
    "list_item_open": "list item",
}

# The one Markdown dialect of the document logic: CommonMark with GFM tables.
MARKDOWN = MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True)
class Block:
    """One top-level Markdown block; ``start``/``end`` are character offsets, ``end`` excludes the newline."""

    number: int
    kind: str
    start: int
    end: int
    first_line: int
    last_line: int

    def text(self, document: str) -> str:
        return document[self.start : self.end]


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def parse_blocks(text: str) -> list[Block]:
    """The document's blocks in order, numbered from 1."""
    if not text.strip():
        return []
    starts = _line_starts(text)
    tokens = MARKDOWN.parse(text)
    spans: list[tuple[str, int, int]] = []
    list_depth = 0
    quote_depth = 0
    for tok in tokens:
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
            continue
        if tok.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
            continue
        if tok.type == "blockquote_close":
            quote_depth -= 1
            continue
        kind = _KIND_BY_TOKEN.get(tok.type)
        if kind is None or tok.map is None:
            continue
        # A block counts when it is at the top, or is a list item of a top-level list.
        top_level = quote_depth == 0 and (
            (list_depth == 0 and kind != "list item") or (list_depth == 1 and kind == "list item")
        )
        if tok.type == "blockquote_open":
            quote_depth += 1
        if top_level:
            spans.append((kind, tok.map[0], tok.map[1]))
    blocks: list[Block] = []
    for kind, first, last_excl in spans:
        start = starts[first]
        end = starts[last_excl] if last_excl < len(starts) else len(text)
        while end > start and text[end - 1] in " \t\r\n":
            end -= 1
        # Leading indentation belongs to the block (indented code, nested quotes).
        # The last line is the one holding the block's last character, not a blank line after it.
        last_line = max(first + 1, bisect.bisect_right(starts, end - 1))
        blocks.append(Block(len(blocks) + 1, kind, start, end, first + 1, last_line))
    return blocks


def block_at(blocks: list[Block], offset: int) -> Block | None:
    """The block that contains ``offset`` (an offset in the gap after a block counts as that block's end)."""
    i = bisect.bisect_right([b.start for b in blocks], offset) - 1
    if i < 0:
        return None
    b = blocks[i]
    return b if offset <= b.end else None


def snap_selection(blocks: list[Block], start: int, end: int) -> tuple[Block, Block] | None:
    """The first and last block that a selection ``start..end`` touches, or None when it touches none.

    A selection inside one block snaps to that block; one that spans several snaps to all of them.
    """
    if end < start:
        start, end = end, start
    touched = [b for b in blocks if b.start <= end and start <= b.end and not (start == end == b.end + 1)]
    if end > start:
        # A selection that merely ends at the very start of a block does not take that block.
        touched = [b for b in touched if not (b.start == end and start < b.start)]
        touched = [b for b in touched if not (b.end == start and end > b.end)] or touched
    if not touched:
        return None
    return touched[0], touched[-1]


def first_words(text: str, count: int = 8) -> str:
    words = text.split()
    head = " ".join(words[:count])
    return head + (" …" if len(words) > count else "")
