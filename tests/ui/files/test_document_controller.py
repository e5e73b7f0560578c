"""The main window's safety net: autosave entries, save conflicts, reload, encodings, deletion, restore."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QTextCursor
from pytestqt.qtbot import QtBot

from diffedit.document.recovery import RecoveryEntry, new_doc_id
from diffedit.document.storage import DiskState, LoadedDocument, read_document
from diffedit.settings import Settings
from diffedit.ui.files import document_controller
from diffedit.ui.files.autosave import DEFAULT_DELAY_MS
from diffedit.ui.files.encoding_dialog import EncodingChoice
from diffedit.ui.files.file_guard import ConflictChoice
from diffedit.ui.main_window import MainWindow

CRLF = b"# Notes\r\n\r\nFirst paragraph.\r\n"


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[Callable[[], MainWindow]]:
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        # Not qtbot.addWidget: qtbot closes its widgets before fixtures tear down, and closing a window
        # with unsaved changes asks a (modal) question.
        w = MainWindow(Settings(), autoload_model=False)
        w.show()
        windows.append(w)
        return w

    yield make
    windows += [w for w in open_windows() if w not in windows]  # opened by a restore
    for w in windows:
        w.editor.document().setModified(False)
        w.bridge.shutdown()
        w.close()


@pytest.fixture
def window(make_window: Callable[[], MainWindow]) -> MainWindow:
    return make_window()


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "notes.md"
    path.write_bytes(CRLF)
    return path


def type_at_end(w: MainWindow, text: str) -> None:
    w.editor.moveCursor(QTextCursor.MoveOperation.End)
    w.editor.insertPlainText(text)


def live_texts(w: MainWindow) -> list[str]:
    return [e.text for e in w.documents.store.live_entries()]


def test_edit_autosave_then_save_keeps_crlf_and_clears_recovery(window: MainWindow, notes: Path) -> None:
    assert window.documents.open_path(notes)
    type_at_end(window, "More.\n")
    assert window.documents.autosaver.save_now()
    assert live_texts(window) == ["# Notes\n\nFirst paragraph.\nMore.\n"]
    assert window.documents.save()
    assert notes.read_bytes() == CRLF + b"More.\r\n"
    assert live_texts(window) == []


def test_save_conflict_cancel_keeps_both_versions(window: MainWindow, notes: Path) -> None:
    window.documents.open_path(notes)
    type_at_end(window, "Mine.\n")
    notes.write_bytes(b"Changed by another program.\n")
    asked: list[DiskState] = []

    def cancel(path: Path, state: DiskState, parent: object) -> ConflictChoice:
        asked.append(state)
        return ConflictChoice.CANCEL

    window.documents.ask_conflict = cancel
    assert not window.documents.save()
    assert asked == [DiskState.MODIFIED]
    assert notes.read_bytes() == b"Changed by another program.\n"
    assert window.editor.toPlainText().endswith("Mine.\n") and window.editor.document().isModified()
    assert "not saved" in window.notice_bar.label.text()

    window.documents.ask_conflict = lambda path, state, parent: ConflictChoice.OVERWRITE
    assert window.documents.save()
    assert notes.read_bytes() == CRLF + b"Mine.\r\n"


def test_save_conflict_reload_is_undoable(window: MainWindow, notes: Path) -> None:
    window.documents.open_path(notes)
    type_at_end(window, "Mine.\n")
    mine = window.editor.toPlainText()
    notes.write_bytes(b"Theirs.\r\n")
    window.documents.ask_conflict = lambda path, state, parent: ConflictChoice.RELOAD
    assert not window.documents.save()
    assert window.editor.toPlainText() == "Theirs.\n"
    assert not window.editor.document().isModified()
    window.editor.undo()
    assert window.editor.toPlainText() == mine


def test_external_change_offers_reload(window: MainWindow, notes: Path, qtbot: QtBot) -> None:
    window.documents.open_path(notes)
    questions: list[bool] = []

    def reload(path: Path, unsaved: bool, parent: object) -> bool:
        questions.append(unsaved)
        return True

    window.documents.ask_reload = reload
    notes.write_bytes(b"New version.\n")
    qtbot.waitUntil(lambda: window.editor.toPlainText() == "New version.\n", timeout=5000)
    assert questions == [False]
    type_at_end(window, "x")
    assert window.documents.save()  # the reloaded version is the new baseline: no conflict
    assert notes.read_bytes() == b"New version.\nx"


def test_deleted_file_keeps_the_text_and_marks_it_unsaved(
    window: MainWindow, notes: Path, qtbot: QtBot
) -> None:
    window.documents.open_path(notes)
    notes.unlink()
    qtbot.waitUntil(lambda: window.editor.document().isModified(), timeout=5000)
    assert window.editor.toPlainText() == "# Notes\n\nFirst paragraph.\n"
    assert "deleted" in window.notice_bar.label.text()
    window.documents.ask_conflict = lambda path, state, parent: ConflictChoice.OVERWRITE
    assert window.documents.save()
    assert notes.read_bytes() == CRLF


def test_cp1252_file_opens_via_the_encoding_question_and_saves_back(
    window: MainWindow, tmp_path: Path
) -> None:
    path = tmp_path / "legacy.md"
    raw = "caf\u00e9 \u201cquoted\u201d\r\n".encode("cp1252")
    path.write_bytes(raw)
    window.documents.ask_encoding = lambda problem, parent: EncodingChoice(problem.guesses[0], False)
    assert window.documents.open_path(path)
    assert window.editor.toPlainText() == "caf\u00e9 \u201cquoted\u201d\n"
    window.editor.document().setModified(True)
    assert window.documents.save()
    assert path.read_bytes() == raw


def test_read_only_choice_makes_the_editor_read_only(window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "legacy.md"
    path.write_bytes(b"caf\xe9\n")
    window.documents.ask_encoding = lambda problem, parent: EncodingChoice("latin-1", True)
    window.documents.open_path(path)
    assert window.editor.isReadOnly() and window.editor.toPlainText() == "caf\u00e9\n"
    window.documents.new_document()
    assert not window.editor.isReadOnly()


def test_cancelled_encoding_question_keeps_the_current_document(window: MainWindow, tmp_path: Path) -> None:
    before = window.editor.toPlainText()
    path = tmp_path / "legacy.md"
    path.write_bytes(b"caf\xe9\n")
    window.documents.ask_encoding = lambda problem, parent: None
    window.documents.open_path(path)
    assert window.editor.toPlainText() == before and window.documents.path is None


def test_binary_file_is_refused_with_a_notice(window: MainWindow, tmp_path: Path) -> None:
    path = tmp_path / "image.md"
    path.write_bytes(b"\x89PNG\x00\x00\x00")
    assert not window.documents.open_path(path)
    assert "binary" in window.notice_bar.label.text()


def test_restore_into_an_untouched_window_and_then_a_new_one(
    make_window: Callable[[], MainWindow], notes: Path, qtbot: QtBot
) -> None:
    window = make_window()
    base = read_document(notes)
    entry = RecoveryEntry(
        doc_id=new_doc_id(),
        path=str(notes),
        display_name="notes.md",
        text="Recovered edit.\n",
        newline="\r\n",
        base_sha256=base.sha256,
        base_size=base.size,
    )
    window.documents.restore(entry)
    assert (window.editor.toPlainText(), window.documents.path) == ("Recovered edit.\n", notes)
    assert window.editor.document().isModified()
    assert window.documents.snapshots.doc_id == entry.doc_id
    assert live_texts(window) == ["Recovered edit.\n"]
    assert window.documents.save()  # the file is as it was when the edits began: no conflict
    assert notes.read_bytes() == b"Recovered edit.\r\n"

    untitled = RecoveryEntry(doc_id=new_doc_id(), path=None, display_name="Untitled", text="Draft.\n")
    window.editor.document().setModified(True)  # busy window: the restore opens a new one
    window.documents.restore(untitled)
    others = [w for w in open_windows() if w is not window]
    assert len(others) == 1
    other = others[0]
    assert (other.editor.toPlainText(), other.documents.path, other.editor.document().isModified()) == (
        "Draft.\n",
        None,
        True,
    )


def open_windows() -> list[MainWindow]:
    from PySide6.QtWidgets import QApplication

    return [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]


def test_unusable_state_folder_falls_back_and_says_so(
    make_window: Callable[[], MainWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qtbot: QtBot
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be", encoding="utf-8")
    monkeypatch.setenv("DIFFEDIT_STATE_DIR", str(blocker))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    window = make_window()
    assert window.documents.store.folder.is_relative_to(tmp_path / "tmp")
    qtbot.waitUntil(lambda: "Recovery copies cannot be kept" in window.notice_bar.label.text(), timeout=3000)
    type_at_end(window, "still safe")
    assert window.documents.autosaver.save_now()
    assert live_texts(window) == [window.editor.toPlainText()]


def entry_texts_after_the_autosave_interval(w: MainWindow, qtbot: QtBot) -> list[str]:
    """Wait past the window's autosave delay (and the guard's debounce) for a recovery copy to appear."""
    qtbot.waitUntil(lambda: live_texts(w) != [], timeout=DEFAULT_DELAY_MS + 3000)
    return live_texts(w)


def test_a_file_deleted_while_open_gets_a_recovery_copy(
    window: MainWindow, notes: Path, qtbot: QtBot
) -> None:
    window.documents.open_path(notes)
    assert live_texts(window) == []  # saved and unedited: nothing to recover
    notes.unlink()
    assert entry_texts_after_the_autosave_interval(window, qtbot) == ["# Notes\n\nFirst paragraph.\n"]


def test_a_file_changed_on_disk_and_not_reloaded_gets_a_recovery_copy(
    window: MainWindow, notes: Path, qtbot: QtBot
) -> None:
    window.documents.open_path(notes)
    window.documents.ask_reload = lambda path, unsaved, parent: False  # keep the editor's version
    notes.write_bytes(b"Another program's version.\n")
    assert entry_texts_after_the_autosave_interval(window, qtbot) == ["# Notes\n\nFirst paragraph.\n"]
    assert window.editor.document().isModified()  # closing asks: the editor holds the only copy


def test_a_change_landing_after_the_conflict_check_is_not_overwritten(
    window: MainWindow, notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window.documents.open_path(notes)
    type_at_end(window, "Mine.\n")
    real_check = document_controller.check_unchanged

    def check_then_another_program_writes(path: Path, loaded: LoadedDocument) -> DiskState:
        state = real_check(path, loaded)
        notes.write_bytes(b"Theirs, written just after the check.\n")
        return state

    monkeypatch.setattr(document_controller, "check_unchanged", check_then_another_program_writes)
    assert not window.documents.save()
    assert notes.read_bytes() == b"Theirs, written just after the check.\n"
    assert "changed on disk" in window.notice_bar.label.text()
    assert window.editor.document().isModified()  # the user's text is still unsaved, and still here


def test_overwrite_chosen_in_the_conflict_dialog_writes_without_the_check(
    window: MainWindow, notes: Path
) -> None:
    window.documents.open_path(notes)
    type_at_end(window, "Mine.\n")
    notes.write_bytes(b"Theirs.\n")
    window.documents.ask_conflict = lambda path, state, parent: ConflictChoice.OVERWRITE
    assert window.documents.save()
    assert notes.read_bytes() == CRLF + b"Mine.\r\n"


def test_a_hard_link_is_named_before_the_first_save_and_cancel_writes_nothing(
    window: MainWindow, notes: Path
) -> None:
    other_name = notes.with_name("same-file.md")
    os.link(notes, other_name)
    window.documents.open_path(notes)
    type_at_end(window, "Mine.\n")
    asked: list[list[str]] = []
    answers = iter([False, True])

    def ask(path: Path, caveats: list[str], parent: object) -> bool:
        asked.append(caveats)
        return next(answers)

    window.documents.ask_save_caveats = ask
    assert not window.documents.save()  # Cancel
    assert notes.read_bytes() == CRLF and asked and "hard link" in asked[0][0]
    assert window.documents.save()  # Save anyway
    assert notes.read_bytes() == CRLF + b"Mine.\r\n"
    assert other_name.read_bytes() == CRLF  # as the warning said
    type_at_end(window, "More.\n")
    assert window.documents.save()
    assert len(asked) == 2  # asked before the first save of this document only


def plant(folder: Path) -> Path:
    """What another local user can do: a recovery folder open to all, holding a fake entry."""
    (folder / "recovery").mkdir(parents=True)
    os.chmod(folder / "recovery", 0o777)
    fake = RecoveryEntry(doc_id=new_doc_id(), path="/home/victim/notes.md", display_name="notes.md", text="x")
    owner = new_doc_id()
    (folder / "recovery" / f"{fake.doc_id}.{owner}.json").write_text(
        json.dumps({**fake.to_json(), "owner": owner}), encoding="utf-8"
    )
    return folder / "recovery"


def test_a_planted_recovery_folder_is_never_used_and_the_app_starts(
    make_window: Callable[[], MainWindow], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qtbot: QtBot
) -> None:
    planted_state = plant(tmp_path / "state")
    monkeypatch.setenv("DIFFEDIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    planted_fallback = plant(temp / f"diffedit-state-{os.getuid()}")  # the fixed fallback name, pre-created
    window = make_window()
    store = window.documents.store
    assert store.folder not in (planted_state, planted_fallback)
    assert store.folder.parent.parent == temp
    assert stat.S_IMODE(os.stat(store.folder.parent).st_mode) == 0o700
    assert store.pending() == []  # the planted entries are never offered
    qtbot.waitUntil(lambda: "Recovery copies cannot be kept" in window.notice_bar.label.text(), timeout=3000)
    assert "not private" in window.notice_bar.label.text()


@contextlib.contextmanager
def fails_instead_of_hanging(seconds: int = 5) -> Iterator[None]:
    """Turn a blocked open() into a test failure (SIGALRM interrupts the system call)."""

    def hung(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and SIGALRM")
@pytest.mark.parametrize(
    ("kind", "said"), [("fifo", "named pipe (FIFO)"), ("device", "device")], ids=["fifo", "dev-zero"]
)
def test_a_fifo_or_device_from_the_open_path_is_refused_with_what_it_is(
    window: MainWindow, tmp_path: Path, kind: str, said: str
) -> None:
    if kind == "fifo":
        special = tmp_path / "pipe.md"
        os.mkfifo(special)
    else:
        special = Path("/dev/zero")
    before = window.editor.exact_text()
    with fails_instead_of_hanging():
        assert not window.documents.open_path(special)
    message = window.notice_bar.label.text()
    assert "Could not open" in message and said in message and "MB" not in message
    assert window.editor.exact_text() == before and window.documents.path != special


@pytest.mark.parametrize(("typed", "saved"), [("edited", "edited.md"), ("notes.txt", "notes.txt")])
def test_save_as_without_an_extension_saves_markdown(
    window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, typed: str, saved: str
) -> None:
    window.editor.setPlainText("Some text.\n")
    monkeypatch.setattr(
        document_controller.QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / typed), "")
    )
    assert window.documents.save_as()
    assert (tmp_path / saved).read_bytes() == b"Some text.\n"
    assert window.documents.path == tmp_path / saved
    assert sorted(p.name for p in tmp_path.iterdir()) == [saved]
