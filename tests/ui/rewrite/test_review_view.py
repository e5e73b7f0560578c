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


def _rewrite(w: MainWindow, qtbot: QtBot, needle: str) -> None:
    select_text(w, needle)
    assert w.rewrite()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)


def test_history_belongs_to_its_document(make_window: WindowFactory, qtbot: QtBot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    w = make_window(text=LONG)
    _rewrite(w, qtbot, NEEDLE)
    assert w.history_dock.list.count() == 1 and len(w.controller.history) == 1
    other = tmp_path / "other.md"
    other.write_text("# Other\n\nAnother document.\n", encoding="utf-8")
    assert w.documents.open_path(other)
    assert w.history_dock.list.count() == 0 and len(w.controller.history) == 0
    _rewrite(w, qtbot, "Another document.")
    assert w.history_dock.list.count() == 1
    assert w.documents.new_document()
    assert w.history_dock.list.count() == 0 and len(w.controller.history) == 0


def test_undone_rewrites_are_marked_and_clicking_one_stays_at_its_text(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window(text=LONG)
    start, _end = _rewrite_far_down(w, qtbot)
    item = w.history_dock.list.item(0)
    assert "undone" not in item.text() and not item.font().strikeOut()
    w.act_undo.trigger()
    assert w.editor.toPlainText() == LONG
    assert "undone" in item.text() and item.font().strikeOut()
    w.act_redo.trigger()
    assert "undone" not in item.text() and not item.font().strikeOut()
    w.act_undo.trigger()
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.Start)
    w.history_dock.list.itemClicked.emit(item)
    original_end = start + len("Paragraph 100 is filler text so the view has to scroll.")
    _caret_and_view_at(w, start, original_end)
    qtbot.keyClicks(w.editor, "x")  # a new edit: the undone rewrite cannot come back, it stays marked
    assert "undone" in item.text()


def test_replay_shows_its_colours_without_a_selection_over_them(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window(text=LONG)
    _rewrite_far_down(w, qtbot)
    w.review_bar.keep_button.click()
    item = w.history_dock.list.item(0)
    w.history_dock.list.setCurrentItem(item)
    w.history_dock.list.itemClicked.emit(item)
    w.history_dock.replay_button.click()
    assert w.controller.replaying
    assert not w.editor.textCursor().hasSelection()


def test_run_figures_are_cleared_on_escape_undo_and_another_file(
    make_window: WindowFactory,
    qtbot: QtBot,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    w = make_window(text=LONG)

    def figures() -> tuple[str, str, str]:
        return w.status.step.text(), w.status.tpf.text(), w.status.speed.text()

    _rewrite(w, qtbot, NEEDLE)
    assert figures()[0].startswith("Step")
    w.escape()  # Esc with the review open keeps the rewrite and closes the run's report
    assert figures() == ("", "", "")
    _rewrite(w, qtbot, "Paragraph 50 is")
    assert figures()[0].startswith("Step")
    w.act_undo.trigger()
    assert figures() == ("", "", "")
    _rewrite(w, qtbot, "Paragraph 60 is")
    other = tmp_path / "other.md"
    other.write_text("# Other\n", encoding="utf-8")
    assert w.documents.open_path(other)
    assert figures() == ("", "", "")
