"""Draws a rewrite in place without touching the document.

The document keeps the original text, byte for byte, for the whole run: no edit, no undo entry, no
"modified" flag. What the user sees instead is built from display-only layout state that Qt already has
for input methods:

* the first block of the target gets the canvas as its *pre-edit area* (``QTextLayout.setPreeditArea``):
  the layout wraps and sizes it like real text, and ranges inside it can be styled with
  ``QTextLayout.setFormats`` (the syntax highlighter keeps ranges inside a pre-edit area);
* that block's own text is drawn transparent and one point high by the highlighter;
* the other blocks of the target are hidden (``QTextBlock.setVisible(False)``), as code folding does.

All three are view state: ``clear()`` removes them and the document is exactly as it was.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from PySide6.QtGui import QColor, QFont, QTextBlock, QTextCharFormat, QTextDocument, QTextLayout

from diffedit.engine.types import Frame
from diffedit.ui.editing.editor import MarkdownEditor
from diffedit.ui.editing.theme import Theme


class PaintKind(enum.IntEnum):
    TEXT = 0  # accepted text, looks like text
    NOISE = 1  # not yet accepted: shown as noise
    FRESH = 2  # accepted and changed in this step: highlighted for one frame


@dataclass(frozen=True)
class CanvasPaint:
    """What the editor draws in place of the target for one frame: the text and styled runs over it."""

    text: str
    runs: tuple[tuple[int, int, PaintKind], ...]
    step: int = 0
    total_steps: int = 0
    final: bool = False

    @classmethod
    def plain(cls, text: str) -> CanvasPaint:
        return cls(text, ((0, len(text), PaintKind.TEXT),) if text else (), final=True)

    def led_by(self, lead: str) -> CanvasPaint:
        """This paint after ``lead`` (plain text): a drafted block's blank line before its canvas."""
        if not lead:
            return self
        n = len(lead)
        runs = ((0, n, PaintKind.TEXT), *((s + n, e + n, kind) for s, e, kind in self.runs))
        return CanvasPaint(lead + self.text, runs, self.step, self.total_steps, self.final)


def paint_frame(frame: Frame) -> CanvasPaint:
    """Styled runs for ``frame``: text before this canvas and all text of a final frame is plain text."""
    text = frame.text
    if frame.final:
        return CanvasPaint(
            text, ((0, len(text), PaintKind.TEXT),) if text else (), frame.step, frame.total_steps, True
        )
    kinds = [PaintKind.TEXT] * len(text)
    for i, (s, e) in enumerate(frame.spans):
        if e <= s:
            continue
        accepted = frame.accepted[i] if i < len(frame.accepted) else False
        changed = frame.changed[i] if i < len(frame.changed) else False
        kind = PaintKind.NOISE if not accepted else PaintKind.FRESH if changed else PaintKind.TEXT
        for j in range(max(0, s), min(e, len(text))):
            kinds[j] = kind
    runs: list[tuple[int, int, PaintKind]] = []
    start = 0
    for j in range(1, len(kinds) + 1):
        if j == len(kinds) or kinds[j] != kinds[start]:
            runs.append((start, j, kinds[start]))
            start = j
    return CanvasPaint(text, tuple(runs), frame.step, frame.total_steps, False)


_NOISE_GLYPHS = "abcdefghijklmnopqrstuvwxyz·~#%"


def noise_paint(original: str, total_steps: int) -> CanvasPaint:
    """The canvas before the first step: noise at the target's length, its line breaks and spaces kept
    (so the target keeps its shape on screen while the model loads or encodes the context)."""
    glyphs = [
        c if c.isspace() else _NOISE_GLYPHS[(i * 7919 + ord(c)) % len(_NOISE_GLYPHS)]
        for i, c in enumerate(original)
    ]
    text = "".join(glyphs)
    runs: list[tuple[int, int, PaintKind]] = []
    start = 0
    for j in range(1, len(text) + 1):
        if j == len(text) or (text[j] == "\n") != (text[start] == "\n"):
            runs.append((start, j, PaintKind.TEXT if text[start] == "\n" else PaintKind.NOISE))
            start = j
    return CanvasPaint(text, tuple(runs), 0, total_steps)


def shape_paint(pieces: list[tuple[str, bool]], total_steps: int) -> CanvasPaint:
    """The canvas before the first step of a shape-true rewrite: the held text (heading markers, list
    markers, fences, the gaps between blocks) as accepted text, each free slot as noise at its length (as
    the engine lays the held tokens in from the first step)."""
    text = ""
    runs: list[tuple[int, int, PaintKind]] = []
    for piece, held in pieces:
        start = len(text)
        if held:
            text += piece
            if piece:
                runs.append((start, len(text), PaintKind.TEXT))
            continue
        noise = noise_paint(piece, total_steps)
        text += noise.text
        runs += [(start + s, start + e, kind) for s, e, kind in noise.runs]
    return CanvasPaint(text, tuple(runs), 0, total_steps)


LINE_SEPARATOR = "\u2028"  # a line break inside one block's layout
# Same length in, same length out, so run offsets stay valid: breaks become in-block line breaks and
# control characters (random-weight models emit them) become visible replacement marks.
_DISPLAY = str.maketrans(
    {
        "\n": LINE_SEPARATOR,
        "\r": LINE_SEPARATOR,
        "\u2029": LINE_SEPARATOR,
        **{chr(c): "\ufffd" for c in range(32) if chr(c) not in "\n\r\t"},
    }
)
# Noise does not break lines: a not-yet-accepted newline is drawn as a mark, so noise cannot open gaps.
_NOISE_DISPLAY = str.maketrans(
    {
        "\n": "\u21b5",
        "\r": "\u21b5",
        "\u2029": "\u21b5",
        "\t": "\u2192",
        **{chr(c): "\ufffd" for c in range(32) if chr(c) not in "\n\r\t"},
    }
)


def display_text(paint: CanvasPaint) -> str:
    """What the layout shows: same length as ``paint.text``, so run offsets stay valid."""
    parts: list[str] = []
    pos = 0
    for s, e, kind in paint.runs:
        parts.append(paint.text[pos:s].translate(_DISPLAY))
        parts.append(paint.text[s:e].translate(_NOISE_DISPLAY if kind is PaintKind.NOISE else _DISPLAY))
        pos = e
    parts.append(paint.text[pos:].translate(_DISPLAY))
    return "".join(parts)


class CanvasRenderer:
    """The editor's overlay while a rewrite runs or replays: frames drawn over the target, never into it."""

    def __init__(self, editor: MarkdownEditor) -> None:
        self.editor = editor
        self.highlighter = editor.highlighter
        self.span: tuple[int, int] | None = None
        self.paint: CanvasPaint | None = None
        self._hidden: list[QTextBlock] = []
        self.set_theme(editor.theme)
        editor.attach_overlay(self)

    @property
    def document(self) -> QTextDocument:
        return self.editor.document()

    @property
    def active(self) -> bool:
        return self.span is not None

    def set_theme(self, theme: Theme) -> None:
        self.formats: dict[PaintKind, QTextCharFormat] = {}
        text = QTextCharFormat()
        text.setForeground(theme.color("text"))
        text.setBackground(theme.color("running_bg"))
        noise = QTextCharFormat()
        noise.setForeground(theme.color("noise_fg"))
        noise.setFontFamilies(["DejaVu Sans Mono", "monospace"])
        noise.setFontItalic(True)
        noise.setBackground(theme.color("running_bg"))
        fresh = QTextCharFormat(text)
        fresh.setBackground(theme.color("fresh_bg"))
        fresh.setFontWeight(QFont.Weight.DemiBold)
        self.formats = {PaintKind.TEXT: text, PaintKind.NOISE: noise, PaintKind.FRESH: fresh}
        self.placeholder = QTextCharFormat(noise)
        self.placeholder.setForeground(QColor(theme.muted))
        if self.span is not None and self.paint is not None:
            self.show(self.span[0], self.span[1], self.paint)

    def move(self, start: int, end: int) -> None:
        """The target moved (an edit before it); blocks and pre-edit move with the document anyway."""
        if self.span is not None:
            self.span = (start, end)

    def show(self, start: int, end: int, paint: CanvasPaint) -> None:
        """Draw ``paint`` in place of the document range ``start..end`` (Qt positions)."""
        doc = self.document
        first_time = self.span is None
        self.span = (start, end)
        self.paint = paint
        host = doc.findBlock(start)
        if not host.isValid():
            return
        if first_time:
            self._hide_rest(host, end)
        layout = host.layout()
        offset = start - host.position()
        # An empty canvas still takes one line, so the target does not vanish.
        layout.setPreeditArea(offset, display_text(paint) if paint.text else " ")
        ranges: list[QTextLayout.FormatRange] = []
        if not paint.text:
            ranges.append(self._range(offset, 1, self.placeholder))
        for s, e, kind in paint.runs:
            ranges.append(
                self._range(offset + _units(paint.text, s), _units(paint.text[s:e]), self.formats[kind])
            )
        layout.setFormats(ranges)
        self.highlighter.rehighlightBlock(host)  # adds the block's own (hidden) formats, keeps ours
        doc.markContentsDirty(host.position(), host.length())
        self.editor.viewport().update()

    def clear(self, hint: tuple[int, int] | None = None) -> None:
        """Remove every trace of the canvas. ``hint``: a document range to sweep as well (after edits)."""
        if self.span is None:
            return
        start, end = self.span
        if hint is not None:
            start, end = min(start, hint[0]), max(end, hint[1])
        self.span = None
        self.paint = None
        doc = self.document
        start = max(0, min(start, doc.characterCount() - 1))
        end = max(start, min(end, doc.characterCount() - 1))
        block = doc.findBlock(start)
        while block.isValid() and block.position() <= end:
            block.setVisible(True)
            layout = block.layout()
            if layout.preeditAreaText():
                layout.setPreeditArea(-1, "")
                layout.clearFormats()
            self.highlighter.rehighlightBlock(block)
            block = block.next()
        for b in self._hidden:  # blocks the sweep missed (an edit moved them): never leave one hidden
            if b.isValid() and not b.isVisible():
                b.setVisible(True)
        self._hidden = []
        doc.markContentsDirty(start, end - start + 1)
        self.editor.viewport().update()

    def _hide_rest(self, host: QTextBlock, end: int) -> None:
        block = host.next()
        while block.isValid() and block.position() <= end:
            block.setVisible(False)
            self._hidden.append(block)
            block = block.next()
        if self._hidden:
            last = self._hidden[-1]
            self.document.markContentsDirty(
                host.position(), last.position() + last.length() - host.position()
            )

    @staticmethod
    def _range(start: int, length: int, fmt: QTextCharFormat) -> QTextLayout.FormatRange:
        r = QTextLayout.FormatRange()
        r.start, r.length, r.format = start, length, fmt
        return r


def _units(text: str, index: int | None = None) -> int:
    """UTF-16 length of ``text[:index]`` (Qt layouts count UTF-16 units)."""
    head = text if index is None else text[:index]
    return len(head.encode("utf-16-le")) // 2
