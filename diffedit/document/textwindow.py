"""Raw Markdown text without a parse: fenced code by CommonMark's rule, and windows of whole blocks.

Parsing a 1 MB document takes about a second, so the outline, block snapping and the long-document preview
work on the raw text. They share three things, each defined once here:

- the fence rule for one line (``fence_opener``, ``fence_closes``) and the heading and rule lines
  (``ATX_HEADING``, ``THEMATIC_BREAK``), also used by the highlighter;
- the fence scanner (``FenceScanner``, ``fenced_spans``, ``in_spans``): where fenced code blocks lie, at
  the top level and in top-level list items (which it follows, so a fence in an item never shifts the
  top-level ones), a slice at a time if the caller wants to spread the work over several turns of an
  event loop;
- the safe cut (``block_window``): a span of whole blocks around a position that parses and renders as it
  does within the whole document, cut only at blank lines that no fence, list, quote or indentation
  continues across.
"""

from __future__ import annotations

import bisect
import functools
import re

Spans = list[tuple[int, int]]

_FAR = 1 << 62
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


# A line that can open a top-level list item: up to 3 spaces, a bullet or an ordered marker, then a blank.
_LIST_MARKER = re.compile(r"( {0,3})([-*+]|\d{1,9}[.)])(?=[ \t]|$)")
# A whole line that is a thematic break, or that opens an ATX heading (CommonMark: spaces and tabs only);
# the highlighter uses the same two.
THEMATIC_BREAK = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
ATX_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_QUOTE = re.compile(r" {0,3}>")
_SETEXT_DASHES = re.compile(r" {0,3}-+[ \t]*$")
_SETEXT_EQUALS = re.compile(r" {0,3}=+[ \t]*$")
# Where the scanner must look outside a list item: lines that could open or close a fence or open an item.
_SCAN = re.compile(r"^ {0,3}(?:`{3,}|~{3,}|(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$))[^\n]*", re.MULTILINE)


def _columns(line: str) -> int:
    """The width of ``line``'s leading whitespace, a tab reaching the next multiple of 4 (CommonMark)."""
    col = 0
    for ch in line:
        if ch == " ":
            col += 1
        elif ch == "\t":
            col += 4 - col % 4
        else:
            break
    return col


def _after_columns(line: str, n: int) -> str:
    """``line`` less its first ``n`` columns of indentation (a tab that straddles the cut leaves spaces)."""
    col = 0
    for i, ch in enumerate(line):
        if col >= n or ch not in " \t":
            return " " * (col - n) + line[i:]
        col += 1 if ch == " " else 4 - col % 4
    return " " * max(0, col - n)


def _is_paragraph_line(line: str) -> bool:
    """Whether ``line`` (outside fences, indented less than 4) is paragraph text rather than a heading,
    rule, fence or block quote (after a quoted paragraph any list item may start, as in markdown-it)."""
    return bool(line.strip()) and not (
        _QUOTE.match(line) or ATX_HEADING.match(line) or THEMATIC_BREAK.match(line) or fence_opener(line)
    )


def _follows_paragraph(
    text: str, pos: int, indent: int = 0, floor: int = 0, first: str = "", look_back: int = 64
) -> bool:
    """Whether the line starting at ``pos`` follows an open paragraph: at the top level (``indent`` 0), or
    in the list item whose content starts ``indent`` columns in and whose first line (at ``floor``) has
    the content ``first``. A line indented 4 or more past the content (a paragraph's continuation or
    indented code) defers to the first line above it that is not (within ``look_back`` lines)."""
    for _ in range(look_back):
        if pos <= floor:
            return False
        start = text.rfind("\n", 0, pos - 1) + 1
        if indent and start <= floor:
            line = first
        else:
            line = text[start : pos - 1]
            if indent and line.strip():
                if _columns(line) < indent:
                    return True  # a lazy line the item kept: paragraph text
                line = _after_columns(line, indent)
        if _SETEXT_DASHES.match(line):
            return False  # a setext underline, a thematic break or an empty list item: no paragraph is open
        if _SETEXT_EQUALS.match(line):  # an underline after a paragraph line, else paragraph text itself
            return not _follows_paragraph(text, start, indent, floor, first, look_back - 1)
        if not line.strip() or _columns(line) < 4:
            return _is_paragraph_line(line)
        pos = start
    return False


def _list_item(line: str, after_paragraph: bool) -> tuple[int, str] | None:
    """``(content indent, content)`` of the list item ``line`` opens at the top level, or None.
    An empty item, or an ordered one not starting at 1, cannot interrupt a paragraph (CommonMark)."""
    m = _LIST_MARKER.match(line)
    if m is None or THEMATIC_BREAK.match(line):
        return None
    marker = m.group(2)
    rest = line[m.end() :]
    if after_paragraph and (not rest.strip() or (marker[0].isdigit() and int(marker[:-1]) != 1)):
        return None
    base = len(m.group(1)) + len(marker)
    gap = _columns(" " * base + rest) - base
    if not rest.strip() or gap >= 5:  # empty, or indented code: the content starts one column after
        return base + 1, _after_columns(" " * base + rest, base + 1)
    return base + gap, rest.lstrip(" \t")


@functools.cache
def _item_scan(indent: int) -> re.Pattern[str]:
    """The lines of a list item (content ``indent`` columns in) the scanner must look at: those indented
    less (they may end it), those with a tab in their indentation, and those that could open or close a
    fence."""
    return re.compile(
        rf"^(?:[ ]{{0,{indent - 1}}}[^ \t\n]|[ ]*\t|[ ]*(?:`{{3,}}|~{{3,}}))[^\n]*", re.MULTILINE
    )


class FenceScanner:
    """Fenced code blocks of ``text`` at the top level and in top-level list items, a slice at a time:
    ``feed`` consecutive slices that start at line starts, then ``finish``. A span runs from its opening
    line to the end of its closing line; a fence the end of its list item closes runs to the start of the
    line that ends the item (blank lines before it included, as CommonMark counts them).

    The scanner follows the top-level list item a line opens (its content indent, lazy paragraph lines, a
    fence opened inside it), so a fence in an item does not shift the top-level ones after it. It looks
    only at the lines ``_SCAN`` (outside items) and ``_item_scan`` (inside) find, and at the lines above
    one that might be a lazy continuation. Known limits: lists nested in an item are not followed (a fence
    in a nested item is taken to close by the top-level item's rules), nor are fences in block quotes.
    ``top_level`` holds the top-level spans alone.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.spans: Spans = []
        self.top_level: Spans = []
        self._fence: str | None = None
        self._start = 0
        self._item: int | None = None  # content indent of the open top-level list item
        self._item_start = 0  # where its first line starts
        self._item_first = ""  # that line's content
        self._item_fence: str | None = None  # a fence open inside the item
        self._item_fence_start = 0
        self._item_empty = False  # the item's first line is empty (a blank line next ends it)

    def feed(self, start: int, end: int) -> None:
        text = self.text
        pos = start
        while pos < end:
            if self._item is not None and self._item_empty:
                line_end = text.find("\n", pos, end)
                line_end = end if line_end < 0 else line_end
                self._item_empty = False
                if not text[pos:line_end].strip():  # an item starts with at most one blank line: empty
                    self._item = None
                else:
                    self._item_line(pos, text[pos:line_end])
                pos = line_end + 1
                continue
            scan = _SCAN if self._item is None else _item_scan(self._item)
            m = scan.search(text, pos, end)
            if m is None:
                return
            if self._item is None:
                self._top_level_line(m.start(), m.group(0))
            else:
                self._item_line(m.start(), m.group(0))
            pos = m.end() + 1

    def _top_level_line(self, pos: int, line: str, in_paragraph: bool | None = None) -> None:
        """A line outside list items; ``in_paragraph`` says whether it follows a top-level paragraph (None:
        look above)."""
        if self._fence is not None:
            if fence_closes(line, self._fence):
                self.spans.append((self._start, pos + len(line)))
                self.top_level.append(self.spans[-1])
                self._fence = None
            return
        fence = fence_opener(line)
        if fence is not None:
            self._fence, self._start = fence, pos
            return
        if in_paragraph is None:
            in_paragraph = _follows_paragraph(self.text, pos)
        item = _list_item(line, in_paragraph)
        if item is not None:
            self._open_item(pos, item)

    def _open_item(self, pos: int, item: tuple[int, str]) -> None:
        self._item, self._item_start, self._item_first = item[0], pos, item[1]
        self._item_fence = fence_opener(item[1]) if _columns(item[1]) < 4 else None
        self._item_fence_start = pos
        self._item_empty = not item[1].strip()

    def _item_line(self, pos: int, line: str) -> None:
        """A line of the open item that might matter: it may open or close a fence in it, or end it."""
        indent = self._item
        assert indent is not None
        if _columns(line) >= indent or not line.strip():
            content = _after_columns(line, indent)
            if _columns(content) >= 4:
                return  # indented code, or a paragraph's continuation line
            if self._item_fence is None:
                self._item_fence, self._item_fence_start = fence_opener(content), pos
            elif fence_closes(content, self._item_fence):
                self.spans.append((self._item_fence_start, pos + len(line)))
                self._item_fence = None
            return
        item = _list_item(line, after_paragraph=False)  # in an item's paragraph any list item ends it (cmark)
        if (
            self._item_fence is None
            and item is None
            and not (fence_opener(line) or ATX_HEADING.match(line) or THEMATIC_BREAK.match(line))
            and not _QUOTE.match(line)
            and _follows_paragraph(self.text, pos, indent, self._item_start, self._item_first)
        ):
            return  # a lazy continuation line of the item's paragraph
        if self._item_fence is not None:  # the item's end closes its fence
            self.spans.append((self._item_fence_start, pos))
        self._item = self._item_fence = None  # the item ends: the line is top-level
        if item is not None:
            self._open_item(pos, item)
        elif (fence := fence_opener(line)) is not None:
            self._fence, self._start = fence, pos

    def finish(self) -> Spans:
        if self._fence is not None:
            self.spans.append((self._start, len(self.text)))  # an unclosed fence runs to the end (CommonMark)
            self.top_level.append(self.spans[-1])
            self._fence = None
        if self._item_fence is not None:
            self.spans.append((self._item_fence_start, len(self.text)))
        self._item = self._item_fence = None
        return self.spans


def fenced_spans(text: str) -> Spans:
    """``(start, end)`` of every fenced code block at the top level or in a top-level list item (see
    ``FenceScanner``), from its opening line to the end of its closing line."""
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
