"""The editor around the rewrite: files, find/replace, outline, preview, word count, themes, settings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from diffedit import app as app_module
from diffedit.document.outline import outline
from diffedit.settings import Settings, config_dir
from diffedit.ui.editing.theme import DARK, LIGHT, apply_theme
from diffedit.ui.main_window import welcome_text
from tests.ui.conftest import DOC, WindowFactory


def test_welcome_document_explains_the_rewrite(make_window: WindowFactory) -> None:
    w = make_window(text=None)
    text = w.editor.toPlainText()
    assert text == welcome_text() and "Ctrl+R" in text and "Esc" in text
    assert not w.editor.document().isModified() and w.documents.path is None


def test_open_edit_save_round_trip(make_window: WindowFactory, tmp_path: Path, qtbot: QtBot) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(b"# Notes\r\n\r\nOne line.\r\n")
    w = make_window(text=None)
    assert w.documents.open_path(path)
    assert w.editor.toPlainText() == "# Notes\n\nOne line.\n" and w.windowTitle().startswith("notes.md")
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.End)
    qtbot.keyClicks(w.editor, "Two.")
    assert w.isWindowModified()
    assert w.documents.save()
    assert path.read_bytes() == b"# Notes\r\n\r\nOne line.\r\nTwo."  # line endings kept
    assert not w.isWindowModified()
    assert str(path.resolve()) in Settings.load().recent_files


def test_open_failure_is_a_message(make_window: WindowFactory, tmp_path: Path) -> None:
    w = make_window()
    assert not w.documents.open_path(tmp_path / "missing.md")
    assert w.notice_bar.level == "error" and "missing.md" in w.notice_bar.label.text()
    assert w.editor.toPlainText() == DOC


def test_find_and_replace(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()
    w.find_bar.open(replace=True)
    qtbot.keyClicks(w.find_bar.find_edit, "paragraph")
    assert w.find_bar.find_next() and w.editor.textCursor().selectedText() == "paragraph"
    first = w.editor.textCursor().selectionStart()
    assert w.find_bar.find_next() and w.editor.textCursor().selectionStart() > first
    assert w.find_bar.find_previous() and w.editor.textCursor().selectionStart() == first
    w.find_bar.case.setChecked(True)
    w.find_bar.find_edit.setText("PARAGRAPH")
    assert not w.find_bar.find_next()
    w.find_bar.case.setChecked(False)
    w.find_bar.replace_edit.setText("section")
    assert w.find_bar.replace_all() == DOC.count("paragraph")
    assert w.editor.toPlainText() == DOC.replace("paragraph", "section")
    w.editor.undo()  # replace all is one step
    assert w.editor.toPlainText() == DOC
    qtbot.keyClick(w.find_bar.find_edit, Qt.Key.Key_Escape)
    assert not w.find_bar.isVisible()


def test_outline_and_word_count_follow_typing_debounced(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()
    w.summary.refresh_now()
    assert w.outline_dock.tree.topLevelItem(0).text(0) == "Title"
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.End)
    qtbot.keyClick(w.editor, Qt.Key.Key_Return)
    qtbot.keyClicks(w.editor, "## Second part")
    qtbot.waitUntil(lambda: w.outline_dock.tree.topLevelItem(0).childCount() == 1, timeout=3000)
    assert w.status.words.text() == f"{len((DOC + '## Second part').split())} words"
    item = w.outline_dock.tree.topLevelItem(0).child(0)
    w.outline_dock.tree.itemClicked.emit(item, 0)
    assert w.editor.textCursor().block().text() == "## Second part"


def test_preview_renders_markdown(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()
    w.act_preview.setChecked(True)
    assert w.preview.isVisible() and "Title" in w.preview.toPlainText()
    before = w.preview.renders
    qtbot.keyClicks(w.editor, "Fresh words ")
    assert w.preview.renders == before  # not per keystroke
    qtbot.waitUntil(lambda: "Fresh words" in w.preview.toPlainText(), timeout=3000)
    assert w.preview.renders == before + 1


def test_a_long_document_is_previewed_around_the_cursor(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path
) -> None:
    w = make_window()
    text = "".join(f"## Section {i}\n\nParagraph number {i} of a long document.\n\n" for i in range(6000))
    doc = tmp_path / "long.md"
    doc.write_text(text, encoding="utf-8")
    assert w.documents.open_path(doc)
    w.act_preview.setChecked(True)
    shown = w.preview.toPlainText()
    assert "A long document: the preview shows the part around the cursor" in shown
    assert "Paragraph number 0 of" in shown and "Paragraph number 5999 of" not in shown
    c = w.editor.textCursor()
    c.setPosition(text.index("Paragraph number 5000 of"))
    w.editor.setTextCursor(c)  # the cursor leaves the part shown: the preview follows after a pause
    qtbot.waitUntil(lambda: "Paragraph number 5000 of" in w.preview.toPlainText(), timeout=3000)
    assert "Paragraph number 0 of" not in w.preview.toPlainText()
    bar = w.preview.verticalScrollBar()  # scrolled to the cursor's place in the new part (about its middle)
    assert 0.3 * bar.maximum() < bar.value() < 0.7 * bar.maximum()


def test_dark_theme_and_settings_persist(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()
    w.act_dark.setChecked(True)
    qtbot.wait(20)  # palette changes arrive as events
    try:
        assert w.editor.palette().color(QPalette.ColorRole.Base) == QColor("#1e1f22")
        assert w.editor.highlighter.f_heading.foreground().color() == QColor(DARK.heading)
        w.rewrite_bar.steps.setValue(7)
        w.close()
        saved = Settings.load()
        assert saved.theme == "dark" and saved.steps == 7
        assert (config_dir() / "settings.json").is_file()
    finally:
        apply_theme(QApplication.instance(), LIGHT)  # type: ignore[arg-type]  # the palette is app-wide


def test_settings_survive_bad_values(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(
        '{"theme": "neon", "steps": "many", "strength": 9, '
        '"font_size": 3,'
        ' "recent_files": [1, 2], "unknown": true}'
    )
    s = Settings.load(tmp_path)
    assert (s.theme, s.steps, s.strength, s.font_size, s.recent_files) == ("light", 24, 1.0, 6, [])
    (tmp_path / "settings.json").write_text("not json")
    assert Settings.load(tmp_path) == Settings()


def test_app_arguments() -> None:
    args = app_module.parse_args(["notes.md", "--model", "/m", "--no-model"])
    assert args.file == Path("notes.md") and args.model == "/m" and args.no_model


def test_large_document_keystrokes_do_not_recompute_views(make_window: WindowFactory, qtbot: QtBot) -> None:
    big = ("## Heading\n\nSome *words* with `code` and [a link](http://x).\n\n" * 16_000)[:1_000_000]
    w = make_window(text=big)
    w.outline_dock.show()
    calls = []
    original = w.summary.start
    w.summary.start = lambda: (calls.append(1), original())[1]  # type: ignore[method-assign]
    w.summary.timer.timeout.disconnect()
    w.summary.timer.timeout.connect(w.summary.start)
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.Start)
    qtbot.keyClicks(w.editor, "abc")
    assert calls == []  # debounced: nothing per keystroke
    qtbot.waitUntil(lambda: calls == [1], timeout=5000)
    # The 1 MB refresh runs in slices of a few ms between events, not in one go.
    assert w.summary.job is not None
    qtbot.waitUntil(lambda: w.summary.job is None, timeout=5000)
    text = w.editor.toPlainText()
    assert w.status.words.text() == f"{len(text.split()):,} words"
    assert w.outline_dock._keys == [(h.level, h.title) for h in outline(text)]


def test_pyside_refcount_guard_targets_only_the_broken_pair() -> None:
    from diffedit.qt_compat import needs_guard

    assert needs_guard((3, 11), "6.12.0") and not needs_guard((3, 12), "6.12.0")
    assert not needs_guard((3, 11), "6.11.3")


def test_model_options_in_the_menu_reload_the_model_with_them(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    from tests.ui.fake_engine import FakeEngine

    loads: list[dict[str, object]] = []

    def loader(path=None, device=None, dtype=None, progress=None, **options):  # type: ignore[no-untyped-def]
        loads.append(options)
        engine = FakeEngine()
        engine.device = "cuda:0"  # the options apply to a CUDA GPU only (elsewhere they are disabled)
        return engine

    w = make_window(loader)
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=5000)
    assert loads == [{}] and not w.act_compile.isChecked() and not w.act_fp8.isChecked()
    w.act_compile.trigger()  # Rewrite ▸ Compile the Decoder Step
    qtbot.waitUntil(lambda: len(loads) == 2 and w.bridge.state == "ready", timeout=5000)
    assert loads[-1] == {"compile_step": True}
    w.act_fp8.trigger()
    qtbot.waitUntil(lambda: len(loads) == 3 and w.bridge.state == "ready", timeout=5000)
    assert loads[-1] == {"compile_step": True, "fp8": True}
    saved = Settings.load()
    assert saved.compile_step and saved.fp8  # kept for the next start
    w.act_compile.trigger()
    qtbot.waitUntil(lambda: len(loads) == 4 and w.bridge.state == "ready", timeout=5000)
    assert loads[-1] == {"fp8": True} and not Settings.load().compile_step
