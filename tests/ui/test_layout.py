"""Window layout: the bars under the editor and the side panels at small window sizes (issue 18)."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.ui.conftest import WindowFactory


def _all_panels_open(w, qtbot: QtBot, width: int, height: int) -> None:  # type: ignore[no-untyped-def]
    w.act_preview.setChecked(True)
    w.outline_dock.show()
    w.history_dock.show()
    w.resize(width, height)
    qtbot.waitUntil(lambda: w.width() <= width + 1, timeout=2000)
    QApplication.processEvents()


def test_instruction_field_stays_usable_with_every_panel_open_down_to_800x600(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window()
    for width, height in ((1100, 750), (800, 600)):
        _all_panels_open(w, qtbot, width, height)
        assert (w.width(), w.height()) == (width, height)
        assert w.rewrite_bar.instruction.width() >= 200, (width, w.rewrite_bar.instruction.width())
        # the bar spans the window, not the editor's column between the docks
        assert w.rewrite_bar.width() >= width - 20


def test_side_panels_keep_their_width_when_the_review_bar_comes_and_goes(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window()
    _all_panels_open(w, qtbot, 1100, 750)

    def widths() -> tuple[int, int, int]:
        QApplication.processEvents()
        return w.outline_dock.width(), w.history_dock.width(), w.rewrite_bar.instruction.width()

    before = widths()
    w.review_bar.offer("Rewrote block 4 in 2.0 s (24 steps, 3.1 tokens/forward).")
    assert w.review_bar.isVisible() and widths() == before
    w.review_bar.hide()
    assert widths() == before


def test_find_fields_keep_their_width_when_a_count_appears(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window(text="word " * 40)
    w.resize(1100, 750)
    w.find_bar.open(replace=True)
    QApplication.processEvents()
    before = (w.find_bar.find_edit.width(), w.find_bar.replace_edit.width())
    w.find_bar.find_edit.setText("word")
    w.find_bar.replace_edit.setText("term")
    assert w.find_bar.replace_all() == 40
    QApplication.processEvents()
    assert "40 replaced" in w.find_bar.status.text()
    assert (w.find_bar.find_edit.width(), w.find_bar.replace_edit.width()) == before
