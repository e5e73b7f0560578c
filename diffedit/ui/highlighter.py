"""Markdown syntax highlighting, one block at a time.

Per-block state carries fenced code across lines, so typing re-highlights only the edited block (and the
following ones only when a fence opens or closes). The highlighter also hides the original text of a
target that is being rewritten (see ``ui/canvas.py``): that text stays in the document, drawn invisible.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument

from diffedit.document.fences import fence_closes, fence_opener
from diffedit.ui.theme import Theme

_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])(?=\s)")
_QUOTE = re.compile(r"^\s*>")
_RULE = re.compile(r"^ {0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$")
_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*_\w])([*_])(?=\S)(.+?)(?<=\S)\1(?![*_\w])")
_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)|<https?://[^>\s]+>|https?://[^\s)>\]]+")

NORMAL = -1
# Block state inside a fence: FENCE_BASE + 100 * (0 for ``` / 1 for ~~~) + fence length.
FENCE_BASE = 1000


class MarkdownHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument, theme: Theme) -> None:
        super().__init__(document)
        self.hidden_span: Callable[[], tuple[int, int] | None] = lambda: None
        self.set_theme(theme, rehighlight=False)

    def set_theme(self, theme: Theme, rehighlight: bool = True) -> None:
        def fmt(
            color: str, bold: bool = False, italic: bool = False, bg: str | None = None, mono: bool = False
        ) -> QTextCharFormat:
            f = QTextCharFormat()
            f.setForeground(QColor(color))
            if bold:
                f.setFontWeight(QFont.Weight.Bold)
            if italic:
                f.setFontItalic(True)
            if bg:
                f.setBackground(QColor(bg))
            if mono:
                f.setFontFamilies(["DejaVu Sans Mono", "monospace"])
            return f

        t = theme
        self.f_heading = fmt(t.heading, bold=True)
        self.f_bold = fmt(t.text, bold=True)
        self.f_italic = fmt(t.emphasis, italic=True)
        self.f_code = fmt(t.code_fg, bg=t.code_bg, mono=True)
        self.f_fence = fmt(t.code_fg, bg=t.code_bg, mono=True)
        self.f_link = fmt(t.link)
        self.f_link.setFontUnderline(True)
        self.f_marker = fmt(t.marker, bold=True)
        self.f_quote = fmt(t.quote, italic=True)
        self.f_rule = fmt(t.muted)
        # The original text under a canvas: no colour and next to no size, so the canvas takes its place.
        self.f_hidden = QTextCharFormat()
        self.f_hidden.setForeground(QColor(0, 0, 0, 0))
        self.f_hidden.setFontPointSize(1)
        if rehighlight:
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        prev = self.previousBlockState()
        if prev >= FENCE_BASE:
            self.setCurrentBlockState(self._fence_line(text, prev))
        else:
            mark = fence_opener(text)
            if mark:
                self.setFormat(0, len(text), self.f_fence)
                self.setCurrentBlockState(FENCE_BASE + (100 if mark[0] == "~" else 0) + min(len(mark), 99))
            else:
                self.setCurrentBlockState(NORMAL)
                self._inline(text)
        hidden = self.hidden_span()
        if hidden is not None:
            block = self.currentBlock()
            pos = block.position()
            start = hidden[0]
            if pos <= start < pos + block.length():  # Qt positions: UTF-16 units, clamped by setFormat
                self.setFormat(start - pos, 1 << 30, self.f_hidden)

    def _fence_line(self, text: str, state: int) -> int:
        self.setFormat(0, len(text), self.f_fence)
        kind = (state - FENCE_BASE) // 100
        length = (state - FENCE_BASE) % 100
        return NORMAL if fence_closes(text, ("~" if kind == 1 else "`") * length) else state

    def _inline(self, text: str) -> None:
        if not text:
            return
        if _HEADING.match(text):
            self.setFormat(0, len(text), self.f_heading)
            return
        if _RULE.match(text):
            self.setFormat(0, len(text), self.f_rule)
            return
        m = _QUOTE.match(text)
        if m:
            self.setFormat(0, len(text), self.f_quote)
        m = _LIST.match(text)
        if m:
            self.setFormat(0, m.end(), self.f_marker)
        for m in _BOLD.finditer(text):
            self.setFormat(m.start(), m.end() - m.start(), self.f_bold)
        for m in _ITALIC.finditer(text):
            self.setFormat(m.start(), m.end() - m.start(), self.f_italic)
        for m in _LINK.finditer(text):
            self.setFormat(m.start(), m.end() - m.start(), self.f_link)
        for m in _CODE.finditer(text):
            self.setFormat(m.start(), m.end() - m.start(), self.f_code)
