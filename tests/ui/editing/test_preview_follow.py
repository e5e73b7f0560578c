"""The preview: rendered at start-up, following the editor's scroll, code blocks wrapped (issue 18)."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
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
