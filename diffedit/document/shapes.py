"""The shape a block's replacement must keep: a paragraph stays one paragraph, a heading keeps its level.

``shape_of(block_text)`` describes a Markdown block (as ``blocks.parse_blocks`` finds it) as a template of
segments: ``Held`` text that must appear verbatim (a heading's ``## ``, list markers with their indentation,
``> `` at each line start, fence lines with their info string, a table's header and delimiter rows and the
``|`` between cells, the indentation of indented code) and ``Slot`` s the model writes. Each slot carries its
rules as data: patterns no line of it may start with, characters it may not contain at all, patterns its
whole text may not match at its edges, and its original's length. ``render(shape, texts)`` assembles a
replacement, ``same_shape(original, new)`` is the acceptance check (markdown-it-py parses both).

How the engine is expected to use it (one canvas per slot, or one canvas with the held text laid in):

- ``Held`` segments -> held canvas positions: their tokens are written before the first step, never
  re-noised, and shown as accepted text in every frame.
- ``Slot.line_start`` -> tokens a position may not take where a line of the slot begins (the slot's first
  position, and any position after a newline): a token whose text, with the line so far, matches a pattern.
  ``Slot.anywhere`` -> characters no token of the slot may contain. ``Slot.edges`` -> what the first and
  last tokens before the end may not be. Every rule is stated on characters, so the engine maps it to a
  token set once per tokenizer and slot kind.
- ``Slot.target_chars`` -> where the end token may fall: the length band (e.g. 0.6x to 1.5x) is taken
  around the original's length, in tokens once encoded.
- ``Slot.wrap_width`` -> after the last step, ``render(..., wrap=True)`` re-wraps a hard-wrapped paragraph
  to its original line width (never putting a word that would open a block at a line start).

``violations(slot, text)`` checks a text against the slot's rules; tests use it as a safety net, the real
guarantee is the engine's constraints.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from diffedit.document.blocks import MARKDOWN, parse_blocks
from diffedit.document.textwindow import fence_closes, fence_opener


@dataclass(frozen=True)
class Rule:
    """A pattern the slot's text may not match where the rule applies; ``why`` says what it would open."""

    pattern: re.Pattern[str]
    why: str


def _rule(pattern: str, why: str) -> Rule:
    return Rule(re.compile(pattern), why)


# What may not begin a line of a paragraph (or a setext heading's text): anything that opens another block.
PARAGRAPH_LINE_START = (
    _rule(r"[ \t]*(?:\n|\Z)", "a blank line ends the paragraph"),
    _rule(r"[ \t]", "indentation: indented code at the start, and never needed after it"),
    _rule(r"#", "an ATX heading"),
    _rule(r"`{3}|~{3}", "a code fence"),
    _rule(r">", "a block quote"),
    _rule(r"[-+*](?:[ \t]|\n|\Z)", "a bullet list item"),
    _rule(r"\d{1,9}[.)](?:[ \t]|\n|\Z)", "an ordered list item"),
    _rule(r"(?:[-*_][ \t]*){3,}(?:\n|\Z)", "a thematic break"),
    _rule(r"[=-]+[ \t]*(?:\n|\Z)", "a setext heading underline"),
    _rule(r"<[A-Za-z/!?]", "an HTML block"),
    _rule(r"\|", "a table row"),
    _rule(r":?-+:?[ \t]*\||:-", "a table delimiter row"),
    _rule(r"\[[^\]\n]*\]:", "a link reference definition"),
)
_HEADING_SPACE = _rule(r"[ \t]", "a second space after the heading markers (they hold one)")
_BLANK_TEXT = _rule(r"\A[ \t]*\Z", "an empty cell")
_ESCAPES_NEXT = _rule(r"\\\Z", "a backslash would escape the '|' after the cell")
_BLANK_FIRST_LINE = _rule(r"\A[ \t]*(?:\n|\Z)", "a blank first line is not part of indented code")
_BLANK_LAST_LINE = _rule(r"\n[ \t]*\Z", "a blank last line is not part of indented code")


@dataclass(frozen=True)
class Held:
    """Characters the replacement keeps verbatim."""

    text: str


@dataclass(frozen=True)
class Slot:
    """Text the model writes, with the rules that keep the block's shape.

    ``role`` is "paragraph", "heading", "code" or "cell"; ``original`` is the original's text for this slot
    (container prefixes removed); ``line_prefix`` is written after each newline of the text (a list item's
    indentation, a quote's ``> ``); ``wrap_width`` is the original's line width when it was hard-wrapped.
    """

    role: str
    original: str
    line_start: tuple[Rule, ...] = ()
    anywhere: frozenset[str] = frozenset()
    edges: tuple[Rule, ...] = ()
    line_prefix: str = ""
    wrap_width: int | None = None

    @property
    def target_chars(self) -> int:
        return len(self.original)


Segment = Held | Slot


@dataclass(frozen=True)
class Shape:
    """A block's template: ``kind`` as ``blocks.py`` names it, and its segments in order."""

    kind: str
    segments: tuple[Segment, ...]
    slots: tuple[Slot, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", tuple(s for s in self.segments if isinstance(s, Slot)))

    def originals(self) -> list[str]:
        return [s.original for s in self.slots]


def forbidden_at_line_start(slot: Slot) -> tuple[re.Pattern[str], ...]:
    """Patterns no line of the slot's text may start with."""
    return tuple(r.pattern for r in slot.line_start)


def forbidden_anywhere(slot: Slot) -> frozenset[str]:
    """Characters the slot's text may not contain."""
    return slot.anywhere


def violations(slot: Slot, text: str) -> list[str]:
    """What in ``text`` breaks the slot's rules (empty when it obeys them)."""
    found = [f"{ch!r} is not allowed here" for ch in sorted(slot.anywhere) if ch in text]
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    for rule in slot.line_start:
        if any(rule.pattern.match(text, pos) for pos in starts):
            found.append(f"a line starts {rule.why}" if rule.why.startswith("a") else rule.why)
    found += [rule.why for rule in slot.edges if rule.pattern.search(text)]
    return found


def _breaks_line(line: str, rules: tuple[Rule, ...]) -> bool:
    return any(r.pattern.match(line) or r.pattern.match(line + "\n") for r in rules)


def rewrap(text: str, width: int, rules: tuple[Rule, ...] = PARAGRAPH_LINE_START) -> str:
    """``text``'s words filled into lines of at most ``width`` characters (a longer word gets its own line);
    a line that would start with something ``rules`` forbid is joined to the line before it."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    i = 0
    while i < len(lines):
        if len(lines) > 1 and _breaks_line(lines[i], rules):
            j = max(i, 1)  # the first line joins the second: its start is the text's start, which obeyed
            lines[j - 1 : j + 1] = [lines[j - 1] + " " + lines[j]]
            i = max(0, j - 2)
        else:
            i += 1
    return "\n".join(lines)


def render(shape: Shape, texts: list[str], wrap: bool = False) -> str:
    """The replacement: held text verbatim, each slot's text with its line prefix after every newline
    (``wrap``: hard-wrapped slots re-wrapped to their original width first)."""
    if len(texts) != len(shape.slots):
        raise ValueError(f"{len(shape.slots)} slot texts needed, {len(texts)} given")
    out: list[str] = []
    given = iter(texts)
    for seg in shape.segments:
        if isinstance(seg, Held):
            out.append(seg.text)
            continue
        text = next(given)
        if wrap and seg.wrap_width:
            text = rewrap(text, seg.wrap_width, seg.line_start)
        lines = text.split("\n")
        out.append(lines[0])
        for line in lines[1:]:
            out.append("\n" + (seg.line_prefix + line if line else seg.line_prefix.rstrip()))
    return "".join(out)


# --- from a block to its shape ------------------------------------------------------------------------

_ATX = re.compile(r"( {0,3}#{1,6}(?:[ \t]+|$))(.*?)((?:(?<=[ \t])#+)?[ \t]*)$")
_SETEXT_UNDERLINE = re.compile(r" {0,3}(?:=+|-+)[ \t]*$")
_LIST_MARKER = re.compile(r"( {0,3}(?:[-*+]|\d{1,9}[.)]))([ \t]*)")
_QUOTE_MARKER = re.compile(r" {0,3}> ?")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def shape_of(block_text: str, kind: str | None = None) -> Shape:
    """The shape of one block; ``kind`` (as ``blocks.py`` names it), when given, must be what it parses as."""
    blocks = parse_blocks(block_text)
    if len(blocks) != 1 or blocks[0].start != 0:
        raise ValueError(f"not one Markdown block: {len(blocks)} blocks")
    found = blocks[0].kind
    if kind is not None and kind != found:
        raise ValueError(f"the block is a {found}, not a {kind}")
    return Shape(found, tuple(_merged(_segments(block_text, found))))


def _merged(segments: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for seg in segments:
        if isinstance(seg, Held) and not seg.text:
            continue
        if isinstance(seg, Held) and out and isinstance(out[-1], Held):
            out[-1] = Held(out[-1].text + seg.text)
        else:
            out.append(seg)
    return out


def _segments(text: str, kind: str) -> list[Segment]:
    if kind == "paragraph":
        return [_paragraph(text)]
    if kind == "heading":
        return _heading(text)
    if kind == "code":
        return _fenced(text) if fence_opener(text.split("\n", 1)[0]) else _indented(text)
    if kind == "table":
        return _table(text)
    if kind == "list item":
        return _list_item(text)
    if kind == "blockquote":
        return _quote(text)
    return [Held(text)]  # a thematic break or an HTML block: nothing to write


def _paragraph(text: str) -> Slot:
    lines = text.split("\n")
    width = max(len(line) for line in lines) if len(lines) > 1 else None
    return Slot("paragraph", text, PARAGRAPH_LINE_START, wrap_width=width)


def _heading(text: str) -> list[Segment]:
    lines = text.split("\n")
    if len(lines) > 1 and _SETEXT_UNDERLINE.match(lines[-1]):
        # "|" in a setext heading's text would make "text |" + "---" a table
        body = Slot("heading", "\n".join(lines[:-1]), PARAGRAPH_LINE_START, frozenset("|"))
        return [body, Held("\n" + lines[-1])]
    m = _ATX.match(text)
    if m is None or (not m.group(2) and not m.group(1)[-1:].isspace()):
        return [Held(text)]  # "##" alone: an empty heading, nothing to write
    title = Slot("heading", m.group(2), (_HEADING_SPACE,), frozenset("\n"))
    return [Held(m.group(1)), title, Held(m.group(3))]


def _fenced(text: str) -> list[Segment]:
    lines = text.split("\n")
    fence = fence_opener(lines[0]) or ""
    closed = len(lines) > 1 and fence_closes(lines[-1], fence)
    body = lines[1:-1] if closed else lines[1:]
    if not body:
        return [Held(text)]
    # Any indentation, tabs included: in a list item a tab can bring a line back to the closing column.
    closer = _rule(r"[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + ",}", "closes the fence")
    segments: list[Segment] = [Held(lines[0] + "\n"), Slot("code", "\n".join(body), (closer,))]
    return [*segments, Held("\n" + lines[-1])] if closed else segments


def _indented(text: str) -> list[Segment]:
    prefix = "\t" if text.startswith("\t") else "    "
    body = "\n".join(line[len(prefix) :] if line.strip() else "" for line in text.split("\n"))
    edges = (_BLANK_FIRST_LINE, _BLANK_LAST_LINE)
    return [Held(prefix), Slot("code", body, edges=edges, line_prefix=prefix)]


def _table(text: str) -> list[Segment]:
    lines = text.split("\n")
    segments: list[Segment] = [Held("\n".join(lines[:2]))]
    for row in lines[2:]:
        segments.append(Held("\n"))
        pipes = [m.start() for m in _UNESCAPED_PIPE.finditer(row)]
        bounds = [-1, *pipes, len(row)]
        for k, (a, b) in enumerate(itertools.pairwise(bounds)):
            if k > 0:
                segments.append(Held("|"))
            cell = row[a + 1 : b]
            if (k == 0 and pipes and not cell.strip()) or (k == len(pipes) and k > 0 and not cell.strip()):
                segments.append(Held(cell))  # outside the outer pipes: indentation or trailing spaces
                continue
            line_start = PARAGRAPH_LINE_START if k == 0 else ()  # a row without a leading pipe
            segments.append(Slot("cell", cell, line_start, frozenset("\n|"), (_BLANK_TEXT, _ESCAPES_NEXT)))
    return segments


def _list_item(text: str) -> list[Segment]:
    lines = text.split("\n")
    m = _LIST_MARKER.match(lines[0])
    assert m is not None  # parse_blocks said this is a list item
    spaces = m.group(2)
    if not spaces or len(spaces) > 4 or len(lines[0]) == m.end():
        spaces = spaces[:1]  # content starts one column after the marker (or is indented code)
    first = m.group(1) + spaces
    width = len(first)
    prefixes = [first]
    for line in lines[1:]:
        indent = len(line) - len(line.lstrip(" "))
        prefixes.append(line if not line.strip() else " " * min(indent, width))
    return _contained(lines, prefixes, " " * width)


def _quote(text: str) -> list[Segment]:
    lines = text.split("\n")
    prefixes = []
    for line in lines:
        m = _QUOTE_MARKER.match(line)
        prefixes.append(m.group(0) if m else "")  # a lazy continuation line has none
    return _contained(lines, prefixes, prefixes[0] if prefixes[0].endswith(" ") else prefixes[0] + " ")


def _contained(lines: list[str], prefixes: list[str], continuation: str) -> list[Segment]:
    """A container's segments: its content shaped as blocks of their own, each line's prefix held."""
    inner = "\n".join(line[len(p) :] for line, p in zip(lines, prefixes, strict=True))
    content: list[Segment] = []
    done = 0
    for block in parse_blocks(inner):
        content.append(Held(inner[done : block.start]))
        content += _segments(inner[block.start : block.end], block.kind)
        done = block.end
    content.append(Held(inner[done:]))

    out: list[Segment] = [Held(prefixes[0])]
    line = 0
    for seg in content:
        if isinstance(seg, Held):
            parts = seg.text.split("\n")
            out.append(Held(parts[0]))
            for part in parts[1:]:
                line += 1
                out.append(Held("\n" + prefixes[line] + part))
            continue
        spanned = seg.original.count("\n")
        # the prefix of the slot's continuation lines (blank lines hold none): the usual one if they differ
        continued = zip(prefixes[line + 1 :], seg.original.split("\n")[1:], strict=False)
        used = Counter(p for p, inner_line in continued if inner_line).most_common(1)
        own = used[0][0] if used else continuation
        out.append(replace(seg, line_prefix=own + seg.line_prefix))
        line += spanned
    return out


# --- the acceptance check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Whether a replacement keeps the original's shape; ``reason`` says what changed when it does not."""

    same: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.same


def _written_cells(line: str) -> int:
    """Cells a table row holds as written: markdown-it-py pads or cuts rows to the header's count."""
    cells = _UNESCAPED_PIPE.split(line.strip())
    return len(cells) - (cells[0] == "") - (len(cells) > 1 and cells[-1] == "")


def _skeleton(text: str) -> list[tuple[Any, ...]]:
    """The block structure markdown-it-py reads: every block token but the inline text inside."""
    lines = text.split("\n")
    return [
        (
            t.type,
            t.tag,
            t.markup,
            t.info.strip(),
            sorted((t.attrs or {}).items()),
            t.level,
            t.hidden,
            _written_cells(lines[t.map[0]]) if t.type == "tr_open" and t.map else None,
        )
        for t in MARKDOWN.parse(text)
        if t.type != "inline"
    ]


def _describe(token: tuple[Any, ...] | None) -> str:
    if token is None:
        return "nothing"
    kind, tag, markup, info = token[:4]
    cells = f"with {token[-1]} cells" if token[-1] is not None else ""
    return " ".join(str(x) for x in (kind.removesuffix("_open"), tag, markup, info, cells) if x)


def same_shape(original: str, new: str) -> Verdict:
    """Whether ``new`` is one block of ``original``'s kind with the same level, marker, number, info string
    and cells per row (markdown-it-py parses both); the text inside may differ."""
    want, got = _skeleton(original), _skeleton(new)
    if want == got:
        return Verdict(True)
    for i in range(max(len(want), len(got))):
        a = want[i] if i < len(want) else None
        b = got[i] if i < len(got) else None
        if a != b:
            return Verdict(False, f"expected {_describe(a)}, found {_describe(b)}")
    return Verdict(False, "the block structure differs")  # pragma: no cover - the loop finds it
