"""Autosave on a bare QPlainTextEdit: debounced, capped by a longest delay, forced, removed on save."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QPlainTextEdit
from pytestqt.qtbot import QtBot

from diffedit.document.recovery import RecoveryStore
from diffedit.document.storage import read_document
from diffedit.ui.files.autosave import AutoSaver, EditorSnapshots


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecoveryStore]:
    s = RecoveryStore(tmp_path / "state").open()
    yield s
    s.close()


def make(
    qtbot: QtBot, store: RecoveryStore, delay_ms: int = 200, **kw: object
) -> tuple[QPlainTextEdit, EditorSnapshots, AutoSaver]:
    editor = QPlainTextEdit()
    qtbot.addWidget(editor)
    snapshots = EditorSnapshots(editor, **kw)  # type: ignore[arg-type]
    saver = AutoSaver(store, snapshots, editor, delay_ms=delay_ms, max_delay_ms=5000)
    saver.watch(editor.document())
    return editor, snapshots, saver


def texts(store: RecoveryStore) -> list[str]:
    return [e.text for e in store.live_entries()]


def test_typing_is_saved_shortly_after_the_last_key(qtbot: QtBot, store: RecoveryStore) -> None:
    editor, snapshots, _saver = make(qtbot, store)
    qtbot.keyClicks(editor, "Hello")
    assert texts(store) == []  # not on every keystroke
    qtbot.waitUntil(lambda: texts(store) != [], timeout=3000)
    (entry,) = store.live_entries()
    assert entry.doc_id == snapshots.doc_id
    assert (entry.text, entry.path, entry.display_name) == ("Hello", None, "Untitled")


def test_continuous_typing_is_saved_by_the_max_delay(qtbot: QtBot, store: RecoveryStore) -> None:
    editor = QPlainTextEdit()
    qtbot.addWidget(editor)
    saver = AutoSaver(store, EditorSnapshots(editor), editor, delay_ms=400, max_delay_ms=600)
    saver.watch(editor.document())
    for _ in range(12):  # a key every 100 ms: the 400 ms debounce alone would never fire
        editor.insertPlainText("x")
        qtbot.wait(100)
    assert texts(store) and texts(store)[0].startswith("xxxx")


def test_save_now_writes_without_waiting_for_the_delay(qtbot: QtBot, store: RecoveryStore) -> None:
    editor, _, saver = make(qtbot, store, delay_ms=60_000)
    editor.setPlainText("Original paragraph.")
    cursor = editor.textCursor()
    cursor.select(QTextCursor.SelectionType.Document)
    cursor.insertText("Rewritten paragraph.")
    assert saver.save_now()
    assert texts(store) == ["Rewritten paragraph."]


def test_saving_the_file_or_undoing_to_it_removes_the_entry(
    qtbot: QtBot, store: RecoveryStore, tmp_path: Path
) -> None:
    path = tmp_path / "notes.md"
    path.write_bytes(b"line one\r\n")
    doc = read_document(path)
    editor, _, saver = make(qtbot, store, path=str(path), display_name="notes.md", like=doc)
    editor.setPlainText(doc.text)
    editor.document().setModified(False)
    editor.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClicks(editor, "more")
    assert saver.save_now()
    (entry,) = store.live_entries()
    assert (entry.path, entry.newline, entry.base_sha256) == (str(path), "\r\n", doc.sha256)
    editor.document().setModified(False)  # what a window does after a successful save
    assert store.live_entries() == []
    qtbot.keyClicks(editor, "!")
    assert saver.save_now() and len(store.live_entries()) == 1
    editor.undo()  # back to the saved text: nothing to recover
    assert not editor.document().isModified()
    saver.save_now()
    assert store.live_entries() == []


def test_a_failing_store_reports_once_and_keeps_trying(
    qtbot: QtBot, store: RecoveryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor, _, saver = make(qtbot, store, delay_ms=50)
    failures: list[str] = []
    saver.failed.connect(failures.append)

    def disk_full(_entry: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "save", disk_full)
    editor.insertPlainText("a")
    assert not saver.save_now()
    editor.insertPlainText("b")
    assert not saver.save_now()
    assert len(failures) == 1 and "Untitled" in failures[0] and "No space" in failures[0]
    assert saver.pending
    monkeypatch.undo()
    assert saver.save_now()
    assert texts(store) == ["ab"]


def test_discard_forgets_the_entry(qtbot: QtBot, store: RecoveryStore) -> None:
    editor, _, saver = make(qtbot, store)
    editor.insertPlainText("throwaway")
    saver.save_now()
    saver.discard()
    assert store.live_entries() == []
