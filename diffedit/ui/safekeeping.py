"""One object per window that keeps its document safe: autosave, crash recovery, file watching, save
conflicts and encodings. The window calls a handful of hooks; everything else lives here.

Hooks the window calls (all in ``MainWindow``):
  ``read(path)``             in ``_load_path``, instead of ``read_document``: asks for an encoding if needed
  ``document_replaced()``    at the end of ``_set_text``: a new, opened or restored document is in the editor
  ``before_save(path)``      in ``_save_to``, before writing: refuses to silently overwrite a changed file
  ``after_save()``           in ``_save_to``, after writing
  ``window_closing()``       in ``closeEvent``, once the user agreed to close
The window must have ``editor``, ``path``, ``loaded``, ``notice_bar.notify(level, text)``, ``_set_text``
and ``save_as``; ``controller.committed`` (a committed rewrite) is used when present.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication, QWidget

from diffedit.document.recovery import RecoveryEntry, RecoveryStore, default_state_dir, new_doc_id
from diffedit.document.storage import DiskState, LoadedDocument, StorageError, check_unchanged, read_document
from diffedit.ui.autosave import AutoSaver, EditorSnapshots
from diffedit.ui.encoding_dialog import ask_encoding, open_with_encoding_choice
from diffedit.ui.file_guard import (
    ConflictChoice,
    FileGuard,
    ask_reload,
    ask_save_conflict,
    deleted_notice,
    read_only_notice,
)
from diffedit.ui.recovery_dialog import RecoveryDialog

_store: RecoveryStore | None = None
_store_wanted: Path | None = None  # the state folder asked for; the store may sit in a fallback
_store_warning = ""
_offered_in: set[Path] = set()  # recovery folders whose pending entries this process already offered
_extra_windows: list[QWidget] = []


def process_store() -> RecoveryStore:
    """The recovery store of this process, opened (its lock taken) on first use.

    Follows ``DIFFEDIT_STATE_DIR``: tests that point it elsewhere get a store there. When the state folder
    cannot be used, recovery files go to a private folder in the temporary directory instead (better than
    none); ``store_warning()`` then says so.
    """
    global _store, _store_wanted, _store_warning
    wanted = default_state_dir()
    if _store is not None and _store_wanted != wanted:
        _store.close()
        _store = None
    if _store is None:
        _store_wanted, _store_warning = wanted, ""
        try:
            _store = RecoveryStore(wanted).open()
        except OSError as exc:
            fallback = Path(tempfile.gettempdir()) / f"diffedit-state-{_user_tag()}"
            _store = RecoveryStore(fallback).open()
            _store_warning = (
                f"Recovery copies cannot be kept in {wanted / 'recovery'} ({exc.strerror or exc}); "
                f"they go to {_store.folder} until the next start."
            )
        app = QApplication.instance()
        if app is not None:
            # A clean quit releases the lock; the entries of documents still open stay recoverable.
            app.aboutToQuit.connect(_close_store)
    return _store


def store_warning() -> str:
    return _store_warning


def _user_tag() -> str:
    return str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")


def _close_store() -> None:
    if _store is not None:
        _store.close()


class SaveCancelled(StorageError):
    """The save was not done because the file changed on disk and the user did not choose to overwrite."""


class SafeKeeper(QObject):
    def __init__(
        self, window: Any, store: RecoveryStore | None = None, *, offer_recovery: bool = True
    ) -> None:
        super().__init__(window)
        self.window = window
        self.store = store or process_store()
        if store is None and store_warning():
            QTimer.singleShot(0, lambda: self._notify("error", store_warning()))
        self.snapshots = EditorSnapshots(window.editor)
        self.autosaver = AutoSaver(self.store, self.snapshots, self)
        self.autosaver.watch(window.editor.document())
        self.autosaver.failed.connect(lambda message: self._notify("error", message))
        self.guard = FileGuard(self)
        self.guard.changedOnDisk.connect(self._on_changed_on_disk)
        self.guard.deletedOnDisk.connect(self._on_deleted)
        self.guard.writableChanged.connect(self._on_writable_changed)
        committed = getattr(getattr(window, "controller", None), "committed", None)
        if committed is not None:
            committed.connect(lambda _entry: self.autosaver.save_now())
        # Dialogs, replaceable in tests.
        self.ask_conflict: Callable[[Path, DiskState, QWidget | None], ConflictChoice] = ask_save_conflict
        self.ask_reload: Callable[[Path, bool, QWidget | None], bool] = ask_reload
        self.ask_encoding = ask_encoding
        self.recovery_dialog: RecoveryDialog | None = None
        self._restoring: RecoveryEntry | None = None
        self._read_only_next = False
        self._asking = False
        if offer_recovery and self.store.folder not in _offered_in:
            _offered_in.add(self.store.folder)
            QTimer.singleShot(0, self.offer_recovery)
            from diffedit.ui.test_hook import maybe_run_test_script

            maybe_run_test_script(window, self)

    # -- hooks ------------------------------------------------------------------------------------------

    def read(self, path: Path) -> LoadedDocument | None:
        """Read ``path`` for the editor; None if the user cancelled the encoding question."""
        opened = open_with_encoding_choice(path, self.window, ask=self.ask_encoding)
        if opened is None:
            return None
        self._read_only_next = opened.read_only
        return opened.document

    def document_replaced(self) -> None:
        """A new document is in the editor (the old one was saved or discarded on purpose)."""
        w = self.window
        self.autosaver.discard()
        entry, self._restoring = self._restoring, None
        self.snapshots.doc_id = entry.doc_id if entry is not None else new_doc_id()
        self._describe()
        w.editor.setReadOnly(self._read_only_next)
        if self._read_only_next:
            self._notify("info", f"{w.path.name if w.path else 'This file'} is open read-only.")
        self._read_only_next = False
        if w.loaded is not None and w.path is not None:
            self.guard.watch(w.loaded)
        else:
            self.guard.unwatch()
        if entry is not None:
            w.editor.document().setModified(True)
            self.autosaver.schedule()
            self.autosaver.save_now()

    def before_save(self, path: Path) -> bool:
        """True: write now. False: already done (saved under another name). Raises SaveCancelled."""
        w = self.window
        if w.loaded is None or w.path is None or not _same_path(path, w.path):
            return True  # a new file, or Save As (the file dialog asked about overwriting)
        state = check_unchanged(path, w.loaded)
        if state is DiskState.UNCHANGED:
            return True
        choice = self.ask_conflict(path, state, w)
        if choice is ConflictChoice.OVERWRITE:
            return True
        if choice is ConflictChoice.SAVE_AS and w.save_as():
            return False
        if choice is ConflictChoice.RELOAD:
            self.reload_from_disk()
            raise SaveCancelled(path, "not saved: reloaded the version on disk", "Undo brings your text back")
        raise SaveCancelled(
            path,
            "not saved: the file was changed on disk by another program",
            "Your text is still in the editor",
        )

    def after_save(self) -> None:
        w = self.window
        self._describe()
        w.editor.setReadOnly(False)
        if w.loaded is not None:
            if self.guard.path is None:
                self.guard.watch(w.loaded)
            else:
                self.guard.set_baseline(w.loaded)
        self.autosaver.document_saved()

    def window_closing(self) -> None:
        """The user agreed to close (saved or discarded): nothing of this window needs recovering."""
        self.autosaver.discard()
        self.guard.unwatch()

    # -- recovery ---------------------------------------------------------------------------------------

    def offer_recovery(self) -> list[RecoveryEntry]:
        entries = self.store.pending()
        if not entries:
            return []
        dialog = RecoveryDialog(self.store, entries, self.restore, self.window)
        self.recovery_dialog = dialog
        dialog.exec()
        return dialog.restored

    def restore(self, entry: RecoveryEntry) -> None:
        """Open an adopted entry as an unsaved document: here if this window is untouched, else in a new."""
        w = self.window
        if w.editor.document().isModified():
            other = type(w)(w.settings, autoload_model=False)
            _extra_windows.append(other)
            other.destroyed.connect(
                lambda *_: _extra_windows.remove(other) if other in _extra_windows else None
            )
            other.show()
            other.keeper.restore(entry)
            return
        path = Path(entry.path) if entry.path else None
        w.loaded = _baseline(entry) if path is not None else None
        self._restoring = entry
        w._set_text(entry.text, path)

    # -- the file on disk -------------------------------------------------------------------------------

    def reload_from_disk(self) -> bool:
        """Replace the text with the file's, as one undoable edit (Undo brings the editor's text back)."""
        w = self.window
        if w.path is None or w.loaded is None:
            return False
        try:
            fresh = read_document(w.path, w.loaded.encoding)
        except StorageError as exc:
            self._notify("error", f"Could not reload: {exc}")
            return False
        document = w.editor.document()
        cursor = QTextCursor(document)
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(fresh.text)
        cursor.endEditBlock()
        w.loaded = fresh
        document.setModified(False)
        self.guard.set_baseline(fresh)
        self._describe()
        return True

    def _on_changed_on_disk(self, path: str) -> None:
        if self._asking:
            return
        self._asking = True
        try:
            if self.ask_reload(Path(path), self.window.editor.document().isModified(), self.window):
                self.reload_from_disk()
            else:
                self.guard.acknowledge_external()
        finally:
            self._asking = False

    def _on_deleted(self, path: str) -> None:
        # Marked modified so that closing asks, and autosave keeps a copy: the editor holds the only one now.
        self.window.editor.document().setModified(True)
        self._notify("error", deleted_notice(path))

    def _on_writable_changed(self, path: str, writable: bool) -> None:
        self._notify("info" if writable else "error", read_only_notice(path, writable))

    # -- internals --------------------------------------------------------------------------------------

    def _describe(self) -> None:
        w = self.window
        self.snapshots.path = str(w.path) if w.path is not None else None
        self.snapshots.display_name = w.path.name if w.path is not None else "Untitled"
        self.snapshots.like = w.loaded

    def _notify(self, level: str, message: str) -> None:
        bar = getattr(self.window, "notice_bar", None)
        if bar is not None:
            bar.notify(level, message)


def _baseline(entry: RecoveryEntry) -> LoadedDocument:
    """The file as it was when the recovered edits began: saving compares the disk against it."""
    return LoadedDocument(
        path=Path(entry.path or ""),
        text="",
        encoding=entry.encoding,
        bom=entry.bom,
        newline=entry.newline,
        size=entry.base_size if entry.base_size is not None else -1,
        sha256=entry.base_sha256 or "",
    )


def _same_path(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return os.path.abspath(a) == os.path.abspath(b)
