"""Raw Markdown text without a parse: fenced code by CommonMark's rule, and windows of whole blocks.

Parsing a 1 MB document takes about a second, so the outline, block snapping and the long-document preview
work on the raw text. They share three things, each defined once here:

- the fence rule for one line (``fence_opener``, ``fence_closes``), also used by the highlighter;
- the fence scanner (``FenceScanner``, ``fenced_spans``, ``in_spans``): where fenced code blocks lie,
  a slice at a time if the caller wants to spread the work over several turns of an event loop;
- the safe cut (``block_window``): a span of whole blocks around a position that parses and renders as it
  does within the whole document, cut only at blank lines that no fence, list, quote or indentation
  continues across.
"""

from __future__ import annotations

import bisect
import re

Spans = list[tuple[int, int]]

_FAR = 1 << 62
# Only lines that could open or close a fence: a fast pre-filter over a 1 MB text.
_FENCE_CANDIDATE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[^\n]*", re.MULTILINE)
# A line after a blank line that may still belong to the block before it (list item, quote, indentation).
_CONTINUES = re.compile(r"[ \t]|[-*+>]\s|\d{1,9}[.)]\s")


def fence_opener(line: str) -> str | None:
    """The fence (e.g. ``````` or ``~~~~``) that ``line`` opens, or None if it opens none."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or stripped[:1] not in ("`", "~"):
        return None
    marker = stripped[0]
    run = len(stripped) - len(stripped.lstrip(marker))
    if run < 3:
        return None
    if marker == "`" and "`" in stripped[run:]:
        return None  # a backtick in the info string: inline code, not a fence
    return marker * run


def fence_closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened by ``fence``: same character, no shorter, nothing else."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    run = len(stripped) - len(stripped.lstrip(fence[0]))
    return run >= len(fence) and not stripped[run:].strip()


class FenceScanner:
    """Fenced code blocks of ``text``, a slice at a time: ``feed`` consecutive slices that start at line
    starts, then ``finish``. A span runs from its opening line to the end of its closing line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.spans: Spans = []
        self._fence: str | None = None
        self._start = 0

    def feed(self, start: int, end: int) -> None:
        for m in _FENCE_CANDIDATE.finditer(self.text, start, end):
            line = m.group(0)
            if self._fence is None:
                self._fence = fence_opener(line)
                self._start = m.start()
            elif fence_closes(line, self._fence):
                self.spans.append((self._start, m.end()))
                self._fence = None

    def finish(self) -> Spans:
        if self._fence is not None:
            self.spans.append((self._start, len(self.text)))  # an unclosed fence runs to the end (CommonMark)
            self._fence = None
        return self.spans


def fenced_spans(text: str) -> Spans:
    """``(start, end)`` of every fenced code block, from its opening line to the end of its closing line."""
    scanner = FenceScanner(text)
    scanner.feed(0, len(text))
    return scanner.finish()


def in_spans(pos: int, spans: Spans) -> bool:
    """Whether ``pos`` lies in one of the sorted, disjoint ``spans`` (``start <= pos < end``)."""
    i = bisect.bisect_right(spans, (pos, _FAR)) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]


_NESTED_FENCE = re.compile(r"^(?:[ \t]+|[ ]{0,3}(?:[>*+-]|\d{1,9}[.)]))[^\n]*?(?:`{3}|~{3})", re.M)


def _is_cut(text: str, blank: int, fences: Spans) -> bool:
    """Whether the blank line after ``blank`` (the index of a "\\n\\n") ends a run of blank lines outside
    fenced code and is followed by a line that starts a fresh top-level block."""
    after = text[blank + 2 : blank + 3]
    if after in ("", "\n") or in_spans(blank + 1, fences) or _CONTINUES.match(text, blank + 2):
        return False
    # A fence nested in a list item or quote is not in ``fences``; left open it owns the blank lines after.
    before = text[text.rfind("\n\n", 0, blank) + 1 : blank + 1]
    return not _NESTED_FENCE.search(before)


def block_window(text: str, start: int, end: int, fences: Spans | None = None) -> tuple[int, int]:
    """The span ``[lo, hi)`` of whole top-level blocks that covers ``start..end``: ``lo`` is 0 or a block's
    first character after a blank line, ``hi`` is ``len(text)`` or the end of a block's last line.

    ``fences`` are the text's ``fenced_spans`` if the caller already has them.
    """
    if fences is None:
        fences = fenced_spans(text)
    lo = max(0, min(start, len(text)))
    while lo > 0:
        blank = text.rfind("\n\n", 0, lo)
        if blank < 0:
            lo = 0
        elif _is_cut(text, blank, fences):
            lo = blank + 2
            break
        else:
            lo = blank + 1  # look before this blank line; "\n\n\n" holds two
    hi = max(lo, min(end, len(text)))
    while hi < len(text):
        blank = text.find("\n\n", hi)
        if blank < 0:
            hi = len(text)
        elif _is_cut(text, blank, fences):
            hi = blank
            break
        else:
            hi = blank + 1
    return lo, hi
