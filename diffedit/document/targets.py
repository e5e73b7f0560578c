"""What a selection regenerates: whole Markdown blocks, found quickly even in a 1 MB document.

``parse_blocks`` reads the whole text (about 1 s per MB); for large documents only a window of whole blocks
around the selection is parsed (``textwindow.block_window``).
"""

from __future__ import annotations

from diffedit.document.blocks import Block, parse_blocks, snap_selection
from diffedit.document.textwindow import block_window

WHOLE_DOCUMENT_LIMIT = 64_000
WINDOW_MARGIN = 2_000


def blocks_near(text: str, start: int, end: int) -> list[Block]:
    """Blocks around ``start..end`` with offsets into ``text`` (all blocks for small documents)."""
    if len(text) <= WHOLE_DOCUMENT_LIMIT:
        return parse_blocks(text)
    lo, hi = block_window(text, start - WINDOW_MARGIN, end + WINDOW_MARGIN)
    return [
        Block(b.number, b.kind, b.start + lo, b.end + lo, b.first_line, b.last_line)
        for b in parse_blocks(text[lo:hi])
    ]


def snap_target(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The whole-block span a selection ``start..end`` regenerates, or None outside every block."""
    snapped = snap_selection(blocks_near(text, start, end), start, end)
    if snapped is None:
        return None
    return snapped[0].start, snapped[1].end


def block_numbers(text: str, start: int, end: int) -> str:
    """'4' or '4-6': the block numbers a span covers; in large documents line numbers (no full parse)."""
    if len(text) > WHOLE_DOCUMENT_LIMIT:
        first, last = text.count("\n", 0, start) + 1, text.count("\n", 0, end) + 1
        return f"lines {first}-{last}" if last > first else f"line {first}"
    blocks = [b for b in parse_blocks(text) if (b.start < end and start < b.end) or b.start == start]
    if not blocks:
        return "?"
    first, last = blocks[0].number, blocks[-1].number
    return str(first) if first == last else f"{first}-{last}"
