"""Which part of a long document the preview renders: whole blocks around the cursor, never half a fence.

Rendering a 1 MB document with markdown-it takes about a second of the UI thread (and Qt's HTML layout a
third of a second more), so past ``LARGE_DOCUMENT`` characters the preview shows about ``WINDOW`` characters
around the cursor, cut only at blank lines outside fenced code blocks so every block renders as it would in
the whole document.
"""

from __future__ import annotations

import bisect
import re

from diffedit.document.fences import fence_closes, fence_opener

LARGE_DOCUMENT = 150_000
WINDOW = 24_000

_FENCE_CANDIDATE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[^\n]*", re.MULTILINE)


def fenced_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every fenced code block, from its opening line to the end of its closing line."""
    spans: list[tuple[int, int]] = []
    fence: str | None = None
    start = 0
    for m in _FENCE_CANDIDATE.finditer(text):  # only lines that could open or close a fence: fast on 1 MB
        line = m.group(0)
        if fence is None:
            fence = fence_opener(line)
            start = m.start()
        elif fence_closes(line, fence):
            spans.append((start, m.end()))
            fence = None
    if fence is not None:
        spans.append((start, len(text)))  # an unclosed fence runs to the end, as CommonMark says
    return spans


def _inside(spans: list[tuple[int, int]], starts: list[int], pos: int) -> tuple[int, int] | None:
    i = bisect.bisect_right(starts, pos) - 1
    if i >= 0 and spans[i][0] < pos < spans[i][1]:
        return spans[i]
    return None


def preview_window(
    text: str, anchor: int, window: int = WINDOW, large: int = LARGE_DOCUMENT
) -> tuple[int, int]:
    """The span ``[start, end)`` of ``text`` to preview around ``anchor``: all of it for short texts."""
    if len(text) <= large:
        return 0, len(text)
    anchor = max(0, min(anchor, len(text)))
    spans = fenced_spans(text)
    starts = [s for s, _ in spans]

    start = max(0, anchor - window // 2)
    while start > 0:
        start = text.rfind("\n\n", 0, start)
        if start < 0:
            start = 0
            break
        span = _inside(spans, starts, start)
        if span is None:
            start += 2  # the block after the blank line
            break
        start = span[0]  # step out of the fence, then look for the blank line before it
    end = min(len(text), max(start, anchor) + window // 2)
    while end < len(text):
        found = text.find("\n\n", end)
        if found < 0:
            end = len(text)
            break
        span = _inside(spans, starts, found)
        if span is None:
            end = found
            break
        end = span[1]
    return start, end
