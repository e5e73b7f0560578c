"""The Markdown editor widget: a QPlainTextEdit with highlighting, target marking and room for an overlay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QContextMenuEvent,
    QFont,
    QFontDatabase,
    QKeyEvent,
    QKeySequence,
    QResizeEvent,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

from diffedit.document.targets import snap_target
from diffedit.document.textpos import from_utf16, to_utf16
from diffedit.ui.editing.highlighter import MarkdownHighlighter
from diffedit.ui.editing.theme import LIGHT, Theme
from diffedit.ui.files.exact_text import document_text, selected_text

SELECTION_MARK_DELAY_MS = 120


class Overlay(Protocol):
    """View state drawn over a span of the document (the rewrite canvas); None while nothing is drawn."""

    @property
    def span(self) -> tuple[int, int] | None: ...

    def set_theme(self, theme: Theme) -> None: ...


class MarkdownEditor(QPlainTextEdit):
    """Plain text in, plain text out; everything else (highlighting, overlay, marks) is view state."""

    undoRedone = Signal(bool)  # after an undo (False) or a redo (True) that changed the text

    def __init__(self, parent: QWidget | None = None, theme: Theme = LIGHT) -> None:
        super().__init__(parent)
        self.theme = theme
        self.setObjectName("editor")
        self.setTabChangesFocus(False)
        self.setCenterOnScroll(False)
        self.highlighter = MarkdownHighlighter(self.document(), theme)
        self.overlay: Overlay | None = None
        self.context_actions: list[QAction] = []
        self.target: tuple[int, int] | None = None  # the snapped selection, Qt positions
        self.in_undo_redo = False
        self._line_width = 0  # the document changes now come from undo or redo
        self._marks: dict[str, list[QTextEdit.ExtraSelection]] = {}
        self._normal_cursor_width = self.cursorWidth()
        self._target_timer = QTimer(self, singleShot=True, interval=SELECTION_MARK_DELAY_MS)
        self._target_timer.timeout.connect(self.update_target)
        self.selectionChanged.connect(self._target_timer.start)
        self.cursorPositionChanged.connect(self._update_cursor_visibility)
        self.set_editor_font("", 11)

    def attach_overlay(self, overlay: Overlay) -> None:
        """Draw ``overlay`` over its span: the span's own text is hidden and the caret is not drawn there."""
        self.overlay = overlay
        self.highlighter.hidden_span = lambda: overlay.span

    def overlay_span(self) -> tuple[int, int] | None:
        return self.overlay.span if self.overlay is not None else None

    # -- appearance --------------------------------------------------------------------------------
    def set_editor_font(self, family: str, size: int) -> None:
        """Prose in a proportional font by default (empty ``family``); code spans and blocks stay
        monospace through the highlighter's formats."""
        font = QFont(family) if family else QFontDatabase.systemFont(QFontDatabase.SystemFont.GeneralFont)
        font.setPointSize(size)
        self.setFont(font)
        self.setTabStopDistance(4 * self.fontMetrics().horizontalAdvance(" "))

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.highlighter.set_theme(theme)
        if self.overlay is not None:
            self.overlay.set_theme(theme)
        self.update_target()

    def set_line_width(self, characters: int) -> None:
        """Lines at most ``characters`` wide (0: the window's width); the rest of the view stays empty."""
        self._line_width = characters
        self._fit_line_width()

    def _fit_line_width(self) -> None:
        extra = 0
        if self._line_width > 0:
            want = (
                self._line_width * self.fontMetrics().averageCharWidth()
                + 2 * self.document().documentMargin()
            )
            extra = max(
                0, int(self.contentsRect().width() - self.verticalScrollBar().sizeHint().width() - want)
            )
        self.setViewportMargins(0, 0, extra, 0)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._line_width > 0:
            self._fit_line_width()

    def set_word_wrap(self, on: bool) -> None:
        mode = QPlainTextEdit.LineWrapMode
        self.setLineWrapMode(mode.WidgetWidth if on else mode.NoWrap)

    # -- text access in Qt positions ---------------------------------------------------------------
    def exact_text(self) -> str:
        """The exact text, "\\n" line breaks (``toPlainText()`` rewrites U+00A0, U+2028 and more)."""
        return document_text(self.document())

    def text_range(self, start: int, end: int) -> str:
        """Document text between two Qt positions, with "\\n" line breaks."""
        c = QTextCursor(self.document())
        c.setPosition(start)
        c.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        return selected_text(c)

    def snapped_target(self) -> tuple[int, int] | None:
        """The whole blocks the selection (or the caret) touches, in Qt positions."""
        text = self.exact_text()
        c = self.textCursor()
        a, b = from_utf16(text, c.selectionStart()), from_utf16(text, c.selectionEnd())
        snapped = snap_target(text, a, b)
        if snapped is None and a == b and text[a:].strip() == "" and text.strip():
            # A caret in the blank lines at the end (Ctrl+End) means the last block, not nothing.
            last = len(text.rstrip())
            snapped = snap_target(text, last - 1, last - 1)
        if snapped is None:
            return None
        return to_utf16(text, snapped[0]), to_utf16(text, snapped[1])

    def update_target(self) -> None:
        """Mark the snapped selection (only while something is selected and no overlay is drawn)."""
        selecting = self.textCursor().hasSelection() and self.overlay_span() is None
        target = self.snapped_target() if selecting else None
        self.target = target
        self.set_mark("target", [target] if target else [], "target_bg")

    # -- marks (ExtraSelections) -------------------------------------------------------------------
    def set_mark(self, name: str, spans: list[tuple[int, int]], color: str, underline: bool = False) -> None:
        """Background ``color`` (a Theme attribute name) over ``spans``, kept under ``name``; ``underline``:
        a thick underline in that colour instead (kept words)."""
        sels = []
        for start, end in spans:
            sel = QTextEdit.ExtraSelection()
            c = QTextCursor(self.document())
            c.setPosition(start)
            c.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = c
            if underline:
                sel.format.setFontUnderline(True)
                sel.format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
                sel.format.setUnderlineColor(self.theme.color(color))
            else:
                sel.format.setBackground(self.theme.color(color))
                sel.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            sels.append(sel)
        self._marks[name] = sels
        self.setExtraSelections([s for group in self._marks.values() for s in group])

    def clear_mark(self, name: str) -> None:
        if self._marks.pop(name, None) is not None:
            self.setExtraSelections([s for group in self._marks.values() for s in group])

    # -- caret and menus ---------------------------------------------------------------------------
    def _update_cursor_visibility(self) -> None:
        # A caret inside the overlay would be drawn at a meaningless spot of the pre-edit text: hide it.
        span = self.overlay_span()
        inside = span is not None and span[0] <= self.textCursor().position() <= span[1]
        self.setCursorWidth(0 if inside else self._normal_cursor_width)

    def move_caret_out_of(self, start: int, end: int) -> None:
        c = self.textCursor()
        c.clearSelection()
        doc_end = self.document().characterCount() - 1
        c.setPosition(end + 1 if end + 1 <= doc_end else max(0, start - 1))
        self.setTextCursor(c)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.createStandardContextMenu(event.pos())
        if self.context_actions:
            actions = menu.actions()
            if actions:
                menu.insertActions(actions[0], self.context_actions)
                menu.insertSeparator(actions[0])
            else:
                menu.addActions(self.context_actions)
        menu.exec(event.globalPos())
        menu.deleteLater()

    # -- undo and redo: the caret and the view go to the text that changed, not the top -------------
    def undo(self) -> None:
        self._undo_redo(super().undo, False)

    def redo(self) -> None:
        self._undo_redo(super().redo, True)

    def _undo_redo(self, step: Callable[[], None], redo: bool) -> None:
        changes: list[tuple[int, int]] = []

        def record(position: int, _removed: int, added: int) -> None:
            changes.append((position, position + added))

        doc = self.document()
        doc.contentsChange.connect(record)
        self.in_undo_redo = True
        try:
            step()
        finally:
            self.in_undo_redo = False
            doc.contentsChange.disconnect(record)
        if not changes:
            return
        self.place_caret(changes[-1][1])
        self.undoRedone.emit(redo)

    def place_caret(self, position: int) -> None:
        """Caret at ``position``, scrolled into the middle of the view only if it is off screen."""
        c = self.textCursor()
        c.setPosition(max(0, min(position, self.document().characterCount() - 1)))
        self.setTextCursor(c)
        if not self.viewport().rect().contains(self.cursorRect().center()):
            self.centerCursor()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Qt's own Ctrl+Z goes straight to the document; route it through undo() above instead.
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undo()
        elif event.matches(QKeySequence.StandardKey.Redo):
            self.redo()
        else:
            super().keyPressEvent(event)

    def center_on(self, position: int, select_to: int | None = None) -> None:
        c = self.textCursor()
        c.setPosition(position)
        if select_to is not None:
            c.setPosition(select_to, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(c)
        self.centerCursor()
        self.setFocus(Qt.FocusReason.OtherFocusReason)
