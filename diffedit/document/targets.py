"""What a selection regenerates: whole Markdown blocks, found quickly even in a 1 MB document.

``parse_blocks`` reads the whole text (about 1 s per MB); for large documents only a window around the
selection is parsed, cut at blank lines that no fenced code, list or indentation continues across.
"""

from __future__ import annotations

import bisect
import re

from diffedit.document.blocks import Block, parse_blocks, snap_selection

WHOLE_DOCUMENT_LIMIT = 64_000
WINDOW_MARGIN = 2_000
_FAR = 1 << 62
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.M)
_LIST_OR_INDENT = re.compile(r"[ \t]|[-*+>]\s|\d{1,9}[.)]\s")


def fence_ranges(text: str) -> list[tuple[int, int]]:
    """Character ranges of fenced code blocks (an unclosed fence runs to the end)."""
    scanner = FenceScanner(text)
    scanner.feed(0, len(text))
    return scanner.finish()


class FenceScanner:
    """``fence_ranges`` a slice at a time: ``feed`` consecutive slices that start at line starts, then
    ``finish``. Lets a caller spread the scan of a large document over several turns of an event loop."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.ranges: list[tuple[int, int]] = []
        self._open_at = -1
        self._open_mark = ""

    def feed(self, start: int, end: int) -> None:
        text = self.text
        for m in _FENCE.finditer(text, start, end):
            mark = m.group(1)
            if self._open_at < 0:
                self._open_at, self._open_mark = m.start(), mark
            elif mark[0] == self._open_mark[0] and len(mark) >= len(self._open_mark):
                line_end = text.find("\n", m.end())
                rest = text[m.end() : line_end if line_end >= 0 else len(text)]
                if not rest.strip():
                    self.ranges.append((self._open_at, m.end()))
                    self._open_at = -1

    def finish(self) -> list[tuple[int, int]]:
        if self._open_at >= 0:
            self.ranges.append((self._open_at, len(self.text)))
            self._open_at = -1
        return self.ranges


def in_ranges(pos: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether ``pos`` lies in one of the sorted, disjoint ``ranges``."""
    i = bisect.bisect_right(ranges, (pos, _FAR)) - 1
    return i >= 0 and ranges[i][0] <= pos < ranges[i][1]


def _safe_cut_before(text: str, pos: int, fences: list[tuple[int, int]]) -> int:
    """Start of a line after a blank line, at or before ``pos``, that starts a fresh top-level block."""
    p = pos
    while p > 0:
        blank = text.rfind("\n\n", 0, p)
        if blank < 0:
            return 0
        line_start = blank + 2
        if not in_ranges(line_start, fences) and not _LIST_OR_INDENT.match(text, line_start):
            return line_start
        p = blank
    return 0


def _safe_cut_after(text: str, pos: int, fences: list[tuple[int, int]]) -> int:
    p = pos
    while True:
        blank = text.find("\n\n", p)
        if blank < 0:
            return len(text)
        line_start = blank + 2
        if not in_ranges(line_start, fences) and not _LIST_OR_INDENT.match(text, line_start):
            return blank
        p = line_start


def blocks_near(text: str, start: int, end: int) -> list[Block]:
    """Blocks around ``start..end`` with offsets into ``text`` (all blocks for small documents)."""
    if len(text) <= WHOLE_DOCUMENT_LIMIT:
        return parse_blocks(text)
    fences = fence_ranges(text)
    lo = _safe_cut_before(text, max(0, start - WINDOW_MARGIN), fences)
    hi = _safe_cut_after(text, min(len(text), end + WINDOW_MARGIN), fences)
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
