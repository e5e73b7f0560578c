"""Markdown syntax highlighting, one block at a time, never more than a few milliseconds per event.

Per-block state carries fenced code across lines, so typing re-highlights only the edited block. Two things
about ``QSyntaxHighlighter``'s rule "after the edited blocks, go on while a block's end state changed":

* It compares a block's new state with the one the block held, not with what the next block saw. Blocks an
  edit splits off are new (state -1), and -1 was this highlighter's "normal text", so a multi-block
  replacement (the commit of a rewrite) could stop early and leave the following code blocks highlighted
  for the old text. Each block's state now also records the state of the block before it when it was
  highlighted; when the next block saw something else, a spare bit flips so that Qt goes on to it.
* Where an end state does change (a fence opened or closed), the cascade can be the whole rest of the
  document: tens of thousands of blocks, ~100 ms on a 1 MB document full of fences. Each highlighting pass
  has a small time budget; past it, a block keeps its old formats and state (which stops Qt's cascade at
  once) and is marked stale, and stale ranges are re-highlighted in slices while the event loop is idle,
  earliest first, so the states flow down the document as one long pass would have left them. The block
  a pass starts at is always highlighted at once, and so are the others an edit touched unless they are
  thousands.

The highlighter also hides the original text under an overlay (``hidden_span``; the rewrite canvas, see
``ui/rewrite/canvas_renderer.py``): that text stays in the document, drawn invisible.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QSyntaxHighlighter,
    QTextBlock,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)

from diffedit.document.textwindow import ATX_HEADING, THEMATIC_BREAK, fence_closes, fence_opener
from diffedit.ui.editing.theme import Theme

_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])(?=\s)")
_QUOTE = re.compile(r"^\s*>")
_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![*_\w])([*_])(?=\S)(.+?)(?<=\S)\1(?![*_\w])")
_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)|<https?://[^>\s]+>|https?://[^\s)>\]]+")

# A block's end state: NORMAL, or inside a fence: 100 * (0 for ``` / 1 for ~~~) + fence length (3-99).
NORMAL = 0
# A block's user state: (end state << 9) | (the previous block's end state when this one was highlighted
# << 1) | a spare bit. Never negative once highlighted: Qt gives new blocks -1.
STALE = -2  # a block waiting to be re-highlighted (read as NORMAL by the next block)

PASS_BUDGET_S = 0.005  # highlighting per pass (an edit, one rehighlightBlock) before the rest waits
PASS_BLOCK_LIMIT = 4000  # and at most this many blocks per pass, however fast they go
IDLE_SLICE_S = 0.005  # one slice of catching up, between two turns of the event loop


def pack(end: int, seen: int, flip: int = 0) -> int:
    return (end << 9) | (seen << 1) | flip


def end_state(user_state: int) -> int:
    """The end state a block's user state records (NORMAL for a new or stale block)."""
    return user_state >> 9 if user_state >= 0 else NORMAL


def seen_state(user_state: int) -> int:
    """The previous block's end state when this block was highlighted (-1: never highlighted)."""
    return (user_state >> 1) & 0xFF if user_state >= 0 else -1


def in_fence(user_state: int) -> bool:
    return end_state(user_state) != NORMAL


class MarkdownHighlighter(QSyntaxHighlighter):
    def __init__(self, document: QTextDocument, theme: Theme) -> None:
        super().__init__(None)  # type: ignore[call-overload]  # no document yet: see setDocument below
        self.setParent(document)
        self.hidden_span: Callable[[], tuple[int, int] | None] = lambda: None
        self.pass_budget_s = PASS_BUDGET_S
        self._pass_budget = PASS_BUDGET_S
        self.pass_block_limit = PASS_BLOCK_LIMIT
        self.idle_slice_s = IDLE_SLICE_S
        self.blocks_highlighted = 0  # counters, for tests and benchmarks
        self.blocks_deferred = 0
        self._pass_start = 0.0
        self._pass_blocks = 0
        self._first_of_pass = False
        self._over = False  # this pass has used its budget: the blocks left wait for idle time
        self._stale: list[tuple[QTextCursor, QTextCursor]] = []  # ranges waiting to be re-highlighted
        self._tail: QTextCursor | None = None  # end of the range this pass's deferred blocks go to
        self._tail_end = -1
        self._sweep_end = -1  # while catching up: where the stale range being swept ends
        self._catch_up_timer = QTimer(self, singleShot=True, interval=0)
        self._catch_up_timer.timeout.connect(self._catch_up)
        # Connected before Qt's own slot (installed by setDocument), so every edit starts a fresh pass.
        document.contentsChange.connect(self._edit_pass)
        self.setDocument(document)
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

    # -- passes, budget and catching up --------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """Whether some blocks still wait to be re-highlighted (in idle time)."""
        return bool(self._stale)

    def _begin_pass(self, budget_s: float | None = None) -> None:
        self._pass_start = time.perf_counter()
        self._pass_budget = self.pass_budget_s if budget_s is None else budget_s
        self._pass_blocks = 0
        self._first_of_pass = True
        self._over = False
        self._tail = None

    def _edit_pass(self, _position: int, _removed: int, _added: int) -> None:
        self._begin_pass()

    def rehighlightBlock(self, block: QTextBlock) -> None:
        self._begin_pass()
        super().rehighlightBlock(block)

    def rehighlight(self) -> None:
        """Re-highlight the whole document: the top now, the rest in idle time (a few ms per slice)."""
        doc = self.document()
        if doc is not None:
            self._mark_stale(0, doc.characterCount())
            self._catch_up()

    def finish_pending(self) -> None:
        """Re-highlight every stale block now (tests; correctness never needs it)."""
        while self._stale:
            self._catch_up(budget_s=float("inf"))

    def _check_budget(self) -> bool:
        self._pass_blocks += 1
        if (
            self._pass_blocks > self.pass_block_limit
            or time.perf_counter() - self._pass_start > self._pass_budget
        ):
            self._over = True
        return self._over

    def _defer(self, block: QTextBlock) -> None:
        """Keep ``block`` as it is (formats and state, so Qt's cascade stops here) and highlight it later."""
        for r in block.layout().formats():
            self.setFormat(r.start, r.length, r.format)
        self.blocks_deferred += 1
        pos = block.position()
        end = pos + block.length()
        if self._tail is not None and self._tail_end == pos:  # the usual case: the block after the last
            if end > self._tail.position():  # (the range may reach further already)
                self._tail.setPosition(min(end, self.document().characterCount() - 1))
        else:
            self._tail = self._mark_stale(pos, end)
        self._tail_end = end

    def _mark_stale(self, start: int, end: int) -> QTextCursor:
        """Add ``start..end`` to the stale ranges (merged with one it touches); returns the range's end."""
        last = self.document().characterCount() - 1  # a cursor's last position
        start, end = min(start, last), min(end, last)
        for a, b in self._stale:
            if start <= b.position() and end >= a.position():
                if start < a.position():
                    a.setPosition(start)
                if end > b.position():
                    b.setPosition(end)
                break
        else:
            a, b = QTextCursor(self.document()), QTextCursor(self.document())
            a.setPosition(start)
            b.setPosition(end)
            self._stale.append((a, b))
        if not self._catch_up_timer.isActive():
            self._catch_up_timer.start()
        return b

    def _mark_fresh(self, block: QTextBlock) -> None:
        """``block`` was just highlighted: a stale range that starts in it now starts after it."""
        pos = block.position()
        end = pos + block.length()
        for rng in list(self._stale):
            a, b = rng
            if pos <= a.position() < end:
                if b.position() <= end:
                    self._stale.remove(rng)
                else:
                    a.setPosition(end)
        if self._sweep_end >= 0:
            # Qt goes on to the next block only while states change: give the next stale block a state
            # that highlighting never produces, so one Qt pass walks the whole stale range.
            nxt = block.next()
            if nxt.isValid() and nxt.position() < self._sweep_end:
                nxt.setUserState(STALE)

    def _catch_up(self, budget_s: float | None = None) -> None:
        """One slice of re-highlighting stale ranges, earliest first; schedules the next slice if needed."""
        doc = self.document()
        if doc is None:
            self._stale = []
            return
        self._begin_pass(self.idle_slice_s if budget_s is None else budget_s)
        try:
            while (
                self._stale and not self._over and time.perf_counter() - self._pass_start <= self._pass_budget
            ):
                rng = min(self._stale, key=lambda r: r[0].position())
                start, end = rng[0].position(), rng[1].position()
                block = doc.findBlock(start)
                if start > end or not block.isValid():
                    self._stale.remove(rng)
                    continue
                block.setUserState(STALE)
                self._sweep_end = end
                self._first_of_pass = True
                self._tail = None
                QSyntaxHighlighter.rehighlightBlock(self, block)
        finally:
            self._sweep_end = -1
        if self._stale:
            self._catch_up_timer.start()

    # -- highlighting ------------------------------------------------------------------------------
    def highlightBlock(self, text: str) -> None:
        block = self.currentBlock()
        if self._first_of_pass:  # the block a pass was started for is always highlighted
            self._first_of_pass = False
        elif self._over or self._check_budget():
            if not block.layout().preeditAreaText():  # the canvas host is always highlighted
                self._defer(block)
                return
            self._tail = None
        self.blocks_highlighted += 1
        self._highlight(text)
        if self._stale:
            self._mark_fresh(block)

    def _highlight(self, text: str) -> None:
        block = self.currentBlock()
        before = block.userState()
        prev = end_state(self.previousBlockState())
        if prev != NORMAL:
            end = self._fence_line(text, prev)
        else:
            mark = fence_opener(text)
            if mark:
                self.setFormat(0, len(text), self.f_fence)
                end = (100 if mark[0] == "~" else 0) + min(len(mark), 99)
            else:
                end = NORMAL
                self._inline(text)
        state = pack(end, prev)
        if state == before:
            # Qt stops here (the state did not change), right only if the next block saw this end state.
            nxt = block.next()
            if nxt.isValid() and seen_state(nxt.userState()) != end:
                state |= 1
        self.setCurrentBlockState(state)
        hidden = self.hidden_span()
        if hidden is not None:
            pos = block.position()
            start = hidden[0]
            if pos <= start < pos + block.length():  # Qt positions: UTF-16 units, clamped by setFormat
                self.setFormat(start - pos, 1 << 30, self.f_hidden)

    def _fence_line(self, text: str, fence: int) -> int:
        self.setFormat(0, len(text), self.f_fence)
        kind, length = divmod(fence, 100)
        return NORMAL if fence_closes(text, ("~" if kind == 1 else "`") * length) else fence

    def _inline(self, text: str) -> None:
        if not text:
            return
        if ATX_HEADING.match(text):
            self.setFormat(0, len(text), self.f_heading)
            return
        if THEMATIC_BREAK.match(text):
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
