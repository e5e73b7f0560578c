"""FileGuard: external changes, deletion and read-only are noticed; our own saves and touches are not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from diffedit.document.storage import DiskState, read_document, write_document
from diffedit.ui.files.file_guard import (
    ConflictChoice,
    FileGuard,
    ask_reload,
    ask_save_caveats,
    ask_save_conflict,
    conflict_box,
    save_caveats_box,
)


@pytest.fixture
def doc_path(tmp_path: Path) -> Path:
    path = tmp_path / "notes.md"
    path.write_text("first version\n", encoding="utf-8")
    return path


@pytest.fixture
def guard(qtbot: QtBot, doc_path: Path) -> FileGuard:
    g = FileGuard(debounce_ms=30)
    g.watch(read_document(doc_path))
    return g


def test_external_change_is_reported_once(qtbot: QtBot, guard: FileGuard, doc_path: Path) -> None:
    changed: list[str] = []
    guard.changedOnDisk.connect(changed.append)
    doc_path.write_text("changed by another program\n", encoding="utf-8")
    qtbot.waitUntil(lambda: changed == [str(doc_path)], timeout=3000)
    guard.check_now()
    assert changed == [str(doc_path)]  # the same external version is not reported again
    assert guard.disk_state() is DiskState.MODIFIED


def test_replace_by_rename_is_followed(qtbot: QtBot, guard: FileGuard, doc_path: Path) -> None:
    changed: list[str] = []
    guard.changedOnDisk.connect(changed.append)
    tmp = doc_path.with_suffix(".tmp")
    tmp.write_text("saved by vim\n", encoding="utf-8")
    os.replace(tmp, doc_path)
    qtbot.waitUntil(lambda: len(changed) == 1, timeout=3000)
    doc_path.write_text("and again\n", encoding="utf-8")  # still watched after the rename
    qtbot.waitUntil(lambda: len(changed) == 2, timeout=3000)


def test_own_saves_and_touches_are_silent(qtbot: QtBot, guard: FileGuard, doc_path: Path) -> None:
    events: list[str] = []
    guard.changedOnDisk.connect(events.append)
    guard.deletedOnDisk.connect(events.append)
    saved = write_document(doc_path, "my edit\n", like=guard.baseline)
    guard.set_baseline(saved)
    os.utime(doc_path)
    qtbot.wait(300)
    assert events == []
    assert guard.disk_state() is DiskState.UNCHANGED


def test_deletion_and_return(qtbot: QtBot, guard: FileGuard, doc_path: Path) -> None:
    deleted: list[str] = []
    guard.deletedOnDisk.connect(deleted.append)
    doc_path.unlink()
    qtbot.waitUntil(lambda: deleted == [str(doc_path)], timeout=3000)
    assert guard.disk_state() is DiskState.DELETED
    doc_path.write_text("first version\n", encoding="utf-8")
    qtbot.waitUntil(lambda: guard.disk_state() is not DiskState.DELETED, timeout=3000)
    qtbot.wait(400)  # the return is noticed (debounced) and followed again
    doc_path.unlink()  # gone a second time: reported a second time
    qtbot.waitUntil(lambda: deleted == [str(doc_path)] * 2, timeout=3000)


def test_made_read_only_is_noticed(qtbot: QtBot, guard: FileGuard, doc_path: Path) -> None:
    changes: list[tuple[str, bool]] = []
    guard.writableChanged.connect(lambda p, w: changes.append((p, w)))
    doc_path.chmod(0o444)
    qtbot.waitUntil(lambda: changes == [(str(doc_path), False)], timeout=3000)
    doc_path.chmod(0o644)
    qtbot.waitUntil(lambda: changes[-1] == (str(doc_path), True), timeout=3000)


def click_in_message_box(label: str) -> None:
    """Click the button labelled ``label`` in the modal message box as soon as it shows."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        for button in box.buttons():
            if button.text().replace("&", "") == label:
                button.click()
                return
        raise AssertionError(f"no button {label!r} in {[b.text() for b in box.buttons()]}")

    QTimer.singleShot(20, click)


@pytest.mark.parametrize(
    ("label", "choice"),
    [
        ("Reload", ConflictChoice.RELOAD),
        ("Overwrite", ConflictChoice.OVERWRITE),
        ("Save As…", ConflictChoice.SAVE_AS),
        ("Cancel", ConflictChoice.CANCEL),
    ],
)
def test_save_conflict_dialog_answers(qtbot: QtBot, label: str, choice: ConflictChoice) -> None:
    click_in_message_box(label)
    assert ask_save_conflict("/tmp/notes.md", DiskState.MODIFIED) is choice


def test_conflict_for_a_deleted_file_offers_no_reload(qtbot: QtBot) -> None:
    box = conflict_box("/tmp/notes.md", DiskState.DELETED)
    qtbot.addWidget(box)
    labels = {b.text().replace("&", "") for b in box.buttons()}
    assert "Reload" not in labels and "Save Here" in labels
    assert box.defaultButton().text().replace("&", "") == "Save As…"


def test_reload_question(qtbot: QtBot) -> None:
    click_in_message_box("Keep Mine")
    assert ask_reload("/tmp/notes.md", has_unsaved_changes=True) is False
    click_in_message_box("Reload")
    assert ask_reload("/tmp/notes.md", has_unsaved_changes=False) is True


def test_save_caveats_question(qtbot: QtBot) -> None:
    caveats = ["notes.md has 1 other hard link: saving replaces the file, so the other names keep the old"]
    box = save_caveats_box("/tmp/notes.md", caveats)
    qtbot.addWidget(box)
    assert "hard link" in box.informativeText()
    assert box.defaultButton().text().replace("&", "") == "Cancel"
    click_in_message_box("Cancel")
    assert ask_save_caveats("/tmp/notes.md", caveats) is False
    click_in_message_box("Save Anyway")
    assert ask_save_caveats("/tmp/notes.md", caveats) is True
