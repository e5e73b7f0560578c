"""Looks: icons in both themes, a proportional font for prose, frames visible in the dark (issue 18)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QFontInfo, QImage
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from diffedit.ui.editing.theme import LIGHT, apply_theme
from tests.ui.conftest import WindowFactory


def _ink(image: QImage) -> QColor:
    """The mean colour of an icon's opaque pixels."""
    r = g = b = n = 0
    for y in range(image.height()):
        for x in range(image.width()):
            c = image.pixelColor(x, y)
            if c.alpha() > 200:
                r, g, b, n = r + c.red(), g + c.green(), b + c.blue(), n + 1
    assert n > 0, "an empty icon"
    return QColor(r // n, g // n, b // n)


def _border_contrast(widget: QWidget, background: QColor) -> int:
    """The largest lightness step between the widget's outer 2-pixel ring and ``background``."""
    image = widget.grab().toImage()
    w, h = image.width(), image.height()
    ring = [(x, y) for x in range(w) for y in (1, h - 2)] + [(x, y) for y in range(h) for x in (1, w - 2)]
    return max(abs(image.pixelColor(x, y).lightness() - background.lightness()) for x, y in ring)


def test_toolbar_and_menu_actions_have_icons_that_follow_the_theme(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window()
    named = [w.act_new, w.act_open, w.act_save, w.act_rewrite, w.act_stop, w.act_preview, w.act_undo]
    assert all(not a.icon().isNull() for a in named)
    light_ink = _ink(w.act_save.icon().pixmap(QSize(32, 32)).toImage())
    w.act_dark.setChecked(True)
    try:
        dark_ink = _ink(w.act_save.icon().pixmap(QSize(32, 32)).toImage())
        assert light_ink.lightness() < 100 < dark_ink.lightness()
    finally:
        apply_theme(QApplication.instance(), LIGHT)  # type: ignore[arg-type]


def test_prose_is_proportional_and_code_is_monospace(make_window: WindowFactory) -> None:
    w = make_window()
    assert not QFontInfo(w.editor.font()).fixedPitch()
    assert "monospace" in w.editor.highlighter.f_code.fontFamilies()


def test_dark_theme_frames_and_the_notice_close_button_stand_out(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window()
    w.act_dark.setChecked(True)
    try:
        QApplication.processEvents()
        window = QColor(w.theme.window)
        assert _border_contrast(w.history_dock.replay_button, window) >= 60
        assert _border_contrast(w.rewrite_bar.steps, window) >= 60
        w.notice_bar.notify("info", "Something happened.")
        close = w.notice_bar.findChild(QWidget, "noticeClose")
        assert close.palette().color(close.foregroundRole()).lightness() < 80  # dark ink on the light bar
    finally:
        apply_theme(QApplication.instance(), LIGHT)  # type: ignore[arg-type]
