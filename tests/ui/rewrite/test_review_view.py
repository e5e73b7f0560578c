"""After a rewrite: undo, redo, Keep, the status figures and the history dock (issue 18)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from diffedit.ui.main_window import MainWindow
from tests.ui.conftest import WindowFactory, select_text

LONG = "".join(f"Paragraph {i} is filler text so the view has to scroll.\n\n" for i in range(120))
NEEDLE = "Paragraph 100 is filler"


def _rewrite_far_down(w: MainWindow, qtbot: QtBot) -> tuple[int, int]:
    w.resize(1100, 750)
    select_text(w, NEEDLE)
    w.editor.centerCursor()
    assert w.rewrite()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    assert w.review_bar.isVisible()
    entry = w.controller.history[len(w.controller.history) - 1]
    return entry.span.start, entry.span.end


def _caret_and_view_at(w: MainWindow, start: int, end: int) -> None:
    QApplication.processEvents()
    caret = w.editor.textCursor().position()
    assert start <= caret <= end, (caret, start, end)
    assert w.editor.verticalScrollBar().value() > 0  # not the top
    rect = w.editor.cursorRect()
    assert w.editor.viewport().rect().contains(rect.center())  # the caret is on screen


def test_undo_redo_and_keep_leave_the_caret_and_the_view_at_the_text(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window(text=LONG)
    start, end = _rewrite_far_down(w, qtbot)
    w.review_bar.undo_button.click()  # the bar's Undo
    original_end = start + len("Paragraph 100 is filler text so the view has to scroll.")
    assert w.editor.toPlainText() == LONG
    _caret_and_view_at(w, start, original_end)
    w.act_redo.trigger()
    assert w.editor.toPlainText() != LONG
    _caret_and_view_at(w, start, end)
    qtbot.keyClick(w.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Z
    assert w.editor.toPlainText() == LONG
    _caret_and_view_at(w, start, original_end)

    start, end = _rewrite_far_down(w, qtbot)
    w.review_bar.keep_button.click()
    _caret_and_view_at(w, start, end)
