"""Edit ▸ Preferences, Help ▸ Keyboard Shortcuts, Help ▸ About (issue 18)."""

from __future__ import annotations

from PySide6.QtGui import QFontInfo
from PySide6.QtWidgets import QApplication, QTableWidget
from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.ui.editing.theme import DARK, LIGHT, apply_theme
from tests.ui.conftest import WindowFactory


def test_preferences_apply_and_are_saved(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()
    dialog = w.preferences_dialog()
    dialog.system_font.setChecked(False)
    dialog.font_family.setCurrentFont(dialog.font_family.currentFont().__class__("DejaVu Serif"))
    dialog.font_size.setValue(14)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.line_width.setValue(60)
    dialog.autosave.setValue(10)
    dialog.steps.setValue(12)
    dialog.strength.setValue(0.6)
    try:
        dialog.accept()
        assert dialog.result() == dialog.DialogCode.Accepted
        assert QFontInfo(w.editor.font()).pointSize() == 14 and w.editor.font().family() == "DejaVu Serif"
        assert w.theme is DARK and w.act_dark.isChecked()
        assert w.editor.viewportMargins().right() > 0  # 60 characters: the rest of the view is margin
        assert (w.rewrite_bar.steps.value(), w.rewrite_bar.strength_value()) == (12, 0.6)
        saved = Settings.load()
        assert (saved.font_family, saved.font_size, saved.theme, saved.line_width) == (
            "DejaVu Serif",
            14,
            "dark",
            60,
        )
        assert (saved.autosave_delay_s, saved.steps, saved.strength) == (10, 12, 0.6)
        assert w.documents.autosaver._delay_ms == 10_000  # the autosave interval applies at once
    finally:
        apply_theme(QApplication.instance(), LIGHT)  # type: ignore[arg-type]


def test_preferences_refuse_what_the_engine_refuses(make_window: WindowFactory) -> None:
    """Fails until GenerationSettings checks its values (the engine branch)."""
    w = make_window()
    dialog = w.preferences_dialog()
    dialog.steps.setValue(0)
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted
    assert dialog.error.isVisible() or not dialog.error.isHidden()
    assert "steps" in dialog.error.text() and w.settings.steps == 24


def test_shortcuts_table_is_generated_from_the_actions(make_window: WindowFactory) -> None:
    w = make_window()
    dialog = w.show_shortcuts()
    table = dialog.findChild(QTableWidget, "shortcutTable")
    rows = {table.item(i, 0).text(): table.item(i, 1).text() for i in range(table.rowCount())}
    assert rows["Rewrite Selection"] == "Ctrl+R" and rows["Rewrite with Instruction"] == "Ctrl+I"
    assert rows["Replace"] == "Ctrl+H" and "Esc" in rows.values()
    dialog.close()


def test_about_names_version_model_and_licences(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=5000)
    box = w.show_about()
    text = box.text()
    assert "fake-dg" in text and "Apache-2.0" in text and "SIL OFL" in text and "model card" in text
    assert "diffedit 0." in text or "(not installed)" in text
    box.close()
