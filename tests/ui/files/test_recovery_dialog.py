"""The startup recovery dialog: lists what a dead editor left; Restore and Discard act on each entry."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from diffedit.document.recovery import RecoveryEntry, RecoveryStore, new_doc_id
from diffedit.document.storage import read_document
from diffedit.ui.files.recovery_dialog import RecoveryDialog, describe_disk_state, offer_recovery


def leave_behind(state: Path, *entries: RecoveryEntry) -> None:
    """Entries as a crashed editor leaves them: saved, lock released."""
    dead = RecoveryStore(state).open()
    for entry in entries:
        dead.save(entry)
    dead.close()


def untitled(text: str, name: str = "Untitled 1") -> RecoveryEntry:
    return RecoveryEntry(doc_id=new_doc_id(), path=None, display_name=name, text=text)


def test_restore_discard_and_preview(qtbot: QtBot, tmp_path: Path) -> None:
    a, b = untitled("first draft\nwith two lines\n", "Untitled 1"), untitled("second\n", "Untitled 2")
    leave_behind(tmp_path, a, b)
    store = RecoveryStore(tmp_path).open()
    opened: list[RecoveryEntry] = []
    dialog = RecoveryDialog(store, store.pending(), opened.append)
    qtbot.addWidget(dialog)
    assert dialog.list.count() == 2
    dialog.list.setCurrentRow([e.doc_id for e in dialog.entries()].index(a.doc_id))
    assert dialog.preview.toPlainText() == "first draft\nwith two lines\n"
    assert "Never saved" in dialog.details.text()
    dialog.restore_button.click()
    assert [e.text for e in opened] == [a.text]
    assert opened[0].doc_id == a.doc_id  # the restored document keeps its id: autosave continues it
    assert [e.doc_id for e in store.live_entries()] == [a.doc_id]
    dialog.discard_button.click()
    assert dialog.result() == QDialog.DialogCode.Accepted  # nothing left to decide
    assert store.pending() == []
    assert len(list(store.discarded_folder.glob("*.json"))) == 1


def test_decide_later_keeps_everything(qtbot: QtBot, tmp_path: Path) -> None:
    leave_behind(tmp_path, untitled("keep me\n"))
    store = RecoveryStore(tmp_path).open()
    dialog = RecoveryDialog(store, store.pending())
    qtbot.addWidget(dialog)
    dialog.later_button.click()
    assert dialog.result() == QDialog.DialogCode.Rejected
    store.close()
    assert [e.text for e in RecoveryStore(tmp_path).open().pending()] == ["keep me\n"]


def test_restore_all(qtbot: QtBot, tmp_path: Path) -> None:
    leave_behind(tmp_path, untitled("one\n"), untitled("two\n"))
    store = RecoveryStore(tmp_path).open()
    opened: list[RecoveryEntry] = []
    dialog = RecoveryDialog(store, store.pending(), opened.append)
    qtbot.addWidget(dialog)
    dialog.restore_all_button.click()
    assert sorted(e.text for e in opened) == ["one\n", "two\n"]
    assert store.pending() == []


def test_no_dialog_when_nothing_is_pending(qtbot: QtBot, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path).open()
    assert offer_recovery(store, lambda e: None) == []


def test_disk_state_of_the_original_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("on disk\n", encoding="utf-8")
    doc = read_document(path)
    entry = RecoveryEntry(
        doc_id=new_doc_id(),
        path=str(path),
        display_name="notes.md",
        text="edited\n",
        base_sha256=doc.sha256,
        base_size=doc.size,
    )
    assert "unchanged on disk" in describe_disk_state(entry)
    path.write_text("changed elsewhere\n", encoding="utf-8")
    assert "changed on disk" in describe_disk_state(entry)
    path.unlink()
    assert "no longer exists" in describe_disk_state(entry)
