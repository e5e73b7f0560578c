"""The preview: rendered at start-up, following the editor's scroll (and leading it with Sync Scrolling),
code blocks wrapped (issue 18)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractSlider, QApplication, QScrollBar
from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from tests.ui.conftest import WindowFactory


def test_preview_left_on_renders_at_start_up(make_window: WindowFactory) -> None:
    w = make_window(text=None, settings=Settings(show_preview=True))
    QApplication.processEvents()
    assert w.preview.isVisible() and "Welcome" in w.preview.toPlainText()


def test_preview_follows_the_editor_scroll(make_window: WindowFactory, qtbot: QtBot) -> None:
    text = "".join(f"## Part {i}\n\nSome words in paragraph {i}.\n\n" for i in range(150))
    w = make_window(text=text)
    w.resize(1100, 750)
    w.act_preview.setChecked(True)
    qtbot.waitUntil(lambda: "Part 149" in w.preview.toPlainText(), timeout=3000)
    editor_bar, preview_bar = w.editor.verticalScrollBar(), w.preview.verticalScrollBar()
    assert preview_bar.maximum() > 0
    for fraction in (0.5, 0.9, 0.2):
        editor_bar.setValue(round(fraction * editor_bar.maximum()))
        QApplication.processEvents()
        assert abs(preview_bar.value() / preview_bar.maximum() - fraction) < 0.05, fraction


def test_code_blocks_wrap_in_the_preview(make_window: WindowFactory, qtbot: QtBot) -> None:
    long_line = " ".join(f"call_number_{i}(argument)" for i in range(40))
    w = make_window(text=f"# Code\n\n```python\n{long_line}\n```\n")
    w.resize(900, 700)
    w.act_preview.setChecked(True)
    QApplication.processEvents()
    assert "call_number_39" in w.preview.toPlainText()
    assert w.preview.horizontalScrollBar().maximum() == 0


LONG = "".join(
    f"## Part {i}\n\nSome words in paragraph {i}, long enough to wrap a little.\n\n" for i in range(150)
)


def user_scrolls_preview(w: MainWindow, fraction: float) -> None:
    """What dragging the preview's scroll bar does: a slider action, then the value."""
    bar = w.preview.verticalScrollBar()
    bar.setSliderPosition(round(fraction * bar.maximum()))
    bar.triggerAction(QAbstractSlider.SliderAction.SliderMove)
    QApplication.processEvents()


def fraction_of(bar: QScrollBar) -> float:
    return bar.value() / bar.maximum()


def test_sync_scrolling_moves_the_editor_with_the_preview_without_feedback(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window(text=LONG)
    w.resize(1100, 750)  # editor and preview side by side, the outline open
    w.act_preview.setChecked(True)
    qtbot.waitUntil(lambda: "Part 149" in w.preview.toPlainText(), timeout=3000)
    editor_bar, preview_bar = w.editor.verticalScrollBar(), w.preview.verticalScrollBar()
    assert editor_bar.maximum() > 100 and preview_bar.maximum() > 100
    assert not w.act_sync_scroll.isChecked() and not w.settings.sync_scroll  # off unless the user wants it

    user_scrolls_preview(w, 0.6)
    assert editor_bar.value() == 0  # one way only: the editor stays

    w.act_sync_scroll.trigger()  # View > Sync Scrolling
    assert w.settings.sync_scroll
    moves: list[tuple[str, int]] = []
    editor_bar.valueChanged.connect(lambda v: moves.append(("editor", v)))
    preview_bar.valueChanged.connect(lambda v: moves.append(("preview", v)))
    user_scrolls_preview(w, 0.7)
    target = round(0.7 * preview_bar.maximum())
    assert preview_bar.value() == target  # the user's place is not nudged back by the editor following
    assert abs(fraction_of(editor_bar) - 0.7) < 0.02
    assert sorted(side for side, _ in moves) == ["editor", "preview"]  # each side moved once: no loop

    moves.clear()
    editor_bar.setValue(round(0.25 * editor_bar.maximum()))  # and the preview still follows the editor
    QApplication.processEvents()
    assert abs(fraction_of(preview_bar) - 0.25) < 0.02
    assert sorted(side for side, _ in moves) == ["editor", "preview"]

    # A wheel turn over the preview counts as the user's scroll too.
    before = editor_bar.value()
    qtbot.wait(50)
    viewport = w.preview.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    wheel = QWheelEvent(
        centre,
        viewport.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, -360),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewport, wheel)
    QApplication.processEvents()
    assert editor_bar.value() > before
    assert abs(fraction_of(editor_bar) - fraction_of(preview_bar)) < 0.02

    # A re-render after typing does not move the editor (only the user's scrolls are passed on).
    place = editor_bar.value()
    moves.clear()
    renders = w.preview.renders
    cursor = w.editor.cursorForPosition(w.editor.viewport().rect().center())
    cursor.insertText("x")
    qtbot.waitUntil(lambda: w.preview.renders > renders, timeout=3000)
    QApplication.processEvents()
    assert editor_bar.value() == place and ("editor", 0) not in moves  # not even for a moment


def test_sync_scrolling_is_a_view_menu_toggle_saved_in_the_settings(make_window: WindowFactory) -> None:
    w = make_window(settings=Settings(sync_scroll=True))
    assert w.act_sync_scroll.isChecked()
    view = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    assert w.act_sync_scroll in view.actions()
    w.act_sync_scroll.trigger()
    w.settings.save()
    assert Settings.load().sync_scroll is False
    w.act_sync_scroll.trigger()
    w.settings.save()
    assert Settings.load().sync_scroll is True
