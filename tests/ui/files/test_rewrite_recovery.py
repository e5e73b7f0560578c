"""A committed rewrite never makes the only recovery copy lose text (issue 11 item 4): the recovery entry
keeps the text as it was before the rewrite until the user saves or presses Keep, and the recovery dialog
offers both versions."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QTextCursor
from pytestqt.qtbot import QtBot

from diffedit.document.recovery import RecoveryEntry, RecoveryStore, new_doc_id
from diffedit.ui.files.recovery_dialog import RecoveryDialog
from diffedit.ui.main_window import MainWindow
from tests.ui.conftest import DOC, TARGET, WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine, fake_loader

TYPED = "Typed by hand, never saved.\n"


def live(w: MainWindow) -> RecoveryEntry:
    assert w.documents.autosaver.save_now()
    (entry,) = w.documents.store.live_entries()
    return entry


def type_at_end(w: MainWindow, text: str) -> None:
    w.editor.moveCursor(QTextCursor.MoveOperation.End)
    w.editor.insertPlainText(text)


def rewrite_target(w: MainWindow, qtbot: QtBot) -> str:
    """Rewrite TARGET to the end; returns the text as it was just before."""
    before = w.editor.exact_text()
    select_text(w, TARGET)
    assert w.rewrite()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    assert w.editor.exact_text() != before
    return before


def opened_window(make_window: WindowFactory, tmp_path: Path) -> MainWindow:
    w = make_window(fake_loader(FakeEngine()), text=None)
    path = tmp_path / "doc.md"
    path.write_text(DOC, encoding="utf-8")
    assert w.documents.open_path(path)
    return w


def test_the_text_before_a_rewrite_stays_in_the_entry_until_keep(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path
) -> None:
    w = opened_window(make_window, tmp_path)
    type_at_end(w, TYPED)
    before = rewrite_target(w, qtbot)
    assert TYPED in before
    entry = live(w)
    assert entry.text == w.editor.exact_text() and entry.before_rewrite == before
    assert [text for _, text in entry.versions()] == [entry.text, before]
    type_at_end(w, "More typing after the rewrite.\n")  # later autosaves keep it too
    assert live(w).before_rewrite == before
    w.review_bar.keepRequested.emit()  # the user keeps the rewrite
    entry = live(w)
    assert entry.before_rewrite is None and entry.text == w.editor.exact_text()


def test_saving_drops_the_text_before_the_rewrite(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path
) -> None:
    w = opened_window(make_window, tmp_path)
    type_at_end(w, TYPED)
    rewrite_target(w, qtbot)
    assert live(w).before_rewrite is not None
    assert w.documents.save()
    assert w.documents.store.live_entries() == []
    type_at_end(w, "After the save.\n")
    assert live(w).before_rewrite is None  # saved: the file holds the rewrite, nothing to go back to


def test_the_recovery_dialog_offers_both_versions(qtbot: QtBot, tmp_path: Path) -> None:
    entry = RecoveryEntry(
        doc_id=new_doc_id(), path=None, display_name="Untitled", text="after\n", before_rewrite="before\n"
    )
    dead = RecoveryStore(tmp_path).open()
    dead.save(entry)
    dead.close()
    store = RecoveryStore(tmp_path).open()
    opened: list[RecoveryEntry] = []
    dialog = RecoveryDialog(store, store.pending(), opened.append)
    qtbot.addWidget(dialog)
    assert [dialog.version.itemText(i) for i in range(dialog.version.count())] == [
        "current text",
        "before the last rewrite",
    ]
    assert dialog.preview.toPlainText() == "after\n"
    dialog.version.setCurrentIndex(1)
    assert dialog.preview.toPlainText() == "before\n"
    dialog.restore_button.click()
    assert [(e.doc_id, e.text) for e in opened] == [(entry.doc_id, "before\n")]


def test_a_restored_entry_keeps_both_versions(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path
) -> None:
    w = make_window(fake_loader(FakeEngine()), text=None)
    w.editor.document().setModified(False)
    entry = RecoveryEntry(
        doc_id=new_doc_id(), path=None, display_name="Untitled", text="after\n", before_rewrite="before\n"
    )
    w.documents.restore(entry)
    assert live(w).before_rewrite == "before\n"  # a second crash still offers both


def test_with_the_real_engine_the_entry_keeps_the_text_before_the_rewrite(
    real_window: MainWindow, qtbot: QtBot
) -> None:
    w = real_window
    type_at_end(w, TYPED)
    before = w.editor.exact_text()
    select_text(w, TARGET)
    assert w.rewrite()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    assert w.controller.history.entries  # committed
    entry = live(w)
    assert entry.text == w.editor.exact_text() and entry.before_rewrite == before
