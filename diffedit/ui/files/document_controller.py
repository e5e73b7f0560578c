"""The open document's file side, in one object: path, the version read (encoding, BOM, newlines),
read-only, the disk watcher, save conflicts, autosave and crash recovery.

The window owns one ``DocumentController`` and talks to it through its methods and signals only:
  ``new_document()``, ``open_path(path)``, ``save()``, ``save_as()``, ``confirm_discard()``, ``close()``,
  ``offer_recovery()``, ``restore(entry)``, ``save_recovery_now()`` (after a committed rewrite);
  ``aboutToReplace`` / ``replaced`` around every new text in the editor, ``pathChanged``, ``notice``, and
  ``restoreElsewhere`` when a recovered document should open in another window (this one holds edits).
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox, QPlainTextEdit, QWidget

from diffedit.document.recovery import (
    RecoveryEntry,
    RecoveryStore,
    default_state_dir,
    new_doc_id,
    open_recovery_store,
)
from diffedit.document.storage import (
    DiskState,
    LoadedDocument,
    StorageError,
    check_unchanged,
    read_document,
    save_caveats,
    write_document,
)
from diffedit.settings import Settings
from diffedit.ui.files.autosave import AutoSaver, EditorSnapshots
from diffedit.ui.files.encoding_dialog import ask_encoding, open_with_encoding_choice
from diffedit.ui.files.exact_text import document_text, insert_text, set_editor_text
from diffedit.ui.files.file_guard import (
    ConflictChoice,
    FileGuard,
    ask_reload,
    ask_save_caveats,
    ask_save_conflict,
    deleted_notice,
    read_only_notice,
)
from diffedit.ui.files.recovery_dialog import offer_recovery

MD_FILTER = "Markdown (*.md *.markdown *.mdown *.txt);;All files (*)"

# The recovery store holds this process's lock, so there is one per process (per state folder).
_store: RecoveryStore | None = None
_store_wanted: Path | None = None  # the state folder asked for; the store may sit in a fallback
_store_warning = ""


def shared_store() -> RecoveryStore:
    """The recovery store of this process, opened (its lock taken) on first use.

    Follows ``DIFFEDIT_STATE_DIR``: tests that point it elsewhere get a store there. When the state folder
    cannot be used, or is not private to this user (another could plant or remove entries there),
    ``open_recovery_store`` picks a private fallback; ``store_warning()`` then says so.
    """
    global _store, _store_wanted, _store_warning
    wanted = default_state_dir()
    if _store is not None and _store_wanted != wanted:
        _store.close()
        _store = None
    if _store is None:
        _store_wanted = wanted
        _store, _store_warning = open_recovery_store(wanted)
        app = QApplication.instance()
        if app is not None:
            # A clean quit releases the lock; the entries of documents still open stay recoverable.
            app.aboutToQuit.connect(_close_store)
    return _store


def store_warning() -> str:
    return _store_warning


def _close_store() -> None:
    if _store is not None:
        _store.close()


class SaveCancelled(StorageError):
    """The save was not done because the file changed on disk and the user did not choose to overwrite."""


class _DiskCheck(enum.Enum):
    WRITE = "write, checking right before the replace that the file is still as read"
    OVERWRITE = "write over the file whatever it holds: the user chose Overwrite"
    DONE = "already saved under another name"


class DocumentController(QObject):
    notice = Signal(str, str)  # level ("info" | "error"), message
    aboutToReplace = Signal()  # new text is about to go into the editor: stop whatever runs over the old
    replaced = Signal()  # a new, opened or restored document is in the editor
    pathChanged = Signal()
    restoreElsewhere = Signal(object)  # RecoveryEntry: this window holds edits, open it in another one

    def __init__(
        self,
        editor: QPlainTextEdit,
        settings: Settings,
        window: QWidget,
        store: RecoveryStore | None = None,
    ) -> None:
        super().__init__(window)
        self.editor = editor
        self.settings = settings
        self.window = window  # the parent of the dialogs this controller asks through
        self.path: Path | None = None
        self.loaded: LoadedDocument | None = None  # the version on disk the editor's text started from
        self.store = store or shared_store()
        if store is None and store_warning():
            QTimer.singleShot(0, lambda: self.notice.emit("error", store_warning()))
        self.snapshots = EditorSnapshots(editor)
        self.autosaver = AutoSaver(self.store, self.snapshots, self)
        self.autosaver.set_delay(settings.autosave_delay_s)
        self.autosaver.watch(editor.document())
        self.autosaver.failed.connect(lambda message: self.notice.emit("error", message))
        self.guard = FileGuard(self)
        self.guard.changedOnDisk.connect(self._on_changed_on_disk)
        self.guard.deletedOnDisk.connect(self._on_deleted)
        self.guard.writableChanged.connect(self._on_writable_changed)
        # Dialogs, replaceable in tests.
        self.ask_conflict: Callable[[Path, DiskState, QWidget | None], ConflictChoice] = ask_save_conflict
        self.ask_reload: Callable[[Path, bool, QWidget | None], bool] = ask_reload
        self.ask_encoding = ask_encoding
        self.ask_save_caveats: Callable[[Path, list[str], QWidget | None], bool] = ask_save_caveats
        self._caveats_shown_for: Path | None = None  # what a save cannot keep is said once per document
        self._asking = False

    def text(self) -> str:
        """The editor's text, exactly (what a save writes)."""
        return document_text(self.editor.document())

    @property
    def display_name(self) -> str:
        return self.path.name if self.path is not None else "Untitled"

    # -- new, open, restore -----------------------------------------------------------------------------

    def new_document(self, text: str = "") -> bool:
        """An unsaved, never-saved document holding ``text``, once the current one may go."""
        if not self.confirm_discard():
            return False
        self._replace(text, None, None)
        return True

    def open_dialog(self) -> None:
        if not self.confirm_discard():
            return
        start = str(self.path.parent) if self.path else ""
        name, _ = QFileDialog.getOpenFileName(self.window, "Open", start, MD_FILTER)
        if name:
            self.open_path(Path(name))

    def open_path(self, path: Path) -> bool:
        """Read ``path`` into the editor, asking for an encoding when it is not UTF-8; False on failure."""
        try:
            opened = open_with_encoding_choice(path, self.window, ask=self.ask_encoding)
        except StorageError as exc:
            self.notice.emit("error", f"Could not open: {exc}")
            return False
        if opened is None:  # the user cancelled the encoding question
            return True
        self._replace(opened.document.text, path, opened.document, read_only=opened.read_only)
        self.settings.add_recent(path)
        self.settings.save()
        return True

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        for p in self.settings.recent_files:
            action = menu.addAction(p)
            action.triggered.connect(lambda _c=False, p=p: self._open_recent(Path(p)))
        if not self.settings.recent_files:
            menu.addAction("(none)").setEnabled(False)

    def _open_recent(self, path: Path) -> None:
        if self.confirm_discard():
            self.open_path(path)

    def offer_recovery(self) -> list[RecoveryEntry]:
        """Offer what a crashed or killed editor left behind (once per process, at start)."""
        return offer_recovery(self.store, self.restore, self.window)

    def restore(self, entry: RecoveryEntry) -> None:
        """Open an adopted entry as an unsaved document: here if this one is untouched, else elsewhere."""
        if self.editor.document().isModified():
            self.restoreElsewhere.emit(entry)
            return
        path = Path(entry.path) if entry.path else None
        self._replace(entry.text, path, _baseline(entry) if path is not None else None, restoring=entry)

    def _replace(
        self,
        text: str,
        path: Path | None,
        loaded: LoadedDocument | None,
        *,
        read_only: bool = False,
        restoring: RecoveryEntry | None = None,
    ) -> None:
        self.aboutToReplace.emit()
        set_editor_text(self.editor, text)  # a new document: its undo history starts empty
        document = self.editor.document()
        document.setModified(False)
        self.path, self.loaded = path, loaded
        self._caveats_shown_for = None
        self.autosaver.discard()  # the old document was saved or dropped on purpose
        self.snapshots.doc_id = restoring.doc_id if restoring is not None else new_doc_id()
        self.snapshots.before_rewrite = restoring.before_rewrite if restoring is not None else None
        self._describe()
        self.editor.setReadOnly(read_only)
        if read_only:
            self.notice.emit("info", f"{path.name if path else 'This file'} is open read-only.")
        if loaded is not None and path is not None:
            self.guard.watch(loaded)
        else:
            self.guard.unwatch()
        if restoring is not None:  # unsaved text: keep it recoverable under its own id at once
            document.setModified(True)
            self.autosaver.schedule()
            self.autosaver.save_now()
        self.pathChanged.emit()
        self.replaced.emit()

    # -- save ---------------------------------------------------------------------------------------

    def save(self) -> bool:
        if self.path is None:
            return self.save_as()
        return self._save_checked(self.path)

    def save_as(self) -> bool:
        start = str(self.path) if self.path else "untitled.md"
        name, _ = QFileDialog.getSaveFileName(self.window, "Save As", start, MD_FILTER)
        if not name:
            return False
        path = Path(name)
        # A name typed without an extension becomes Markdown, so the Open dialog's filter shows it again.
        return self._save_checked(path if path.suffix else path.with_name(path.name + ".md"))

    def _save_checked(self, path: Path) -> bool:
        try:
            self._save_to(path)
        except StorageError as exc:
            self.notice.emit("error", f"Not saved: {exc}")
            return False
        return True

    def _save_to(self, path: Path) -> None:
        """Write the document to ``path`` atomically (raises StorageError); the canvas is never saved."""
        check = self._disk_check(path)
        if check is _DiskCheck.DONE:
            return
        if not self._caveats_accepted(path):
            raise SaveCancelled(path, "not saved: cancelled", "Your text is still in the editor")
        like = self.loaded if self.loaded is not None and self.path == path else None
        # The conflict check above and the replace are apart (a dialog may sit between them): expect= makes
        # write_document look again right before the replace, unless the user chose to overwrite.
        expect = like if check is _DiskCheck.WRITE else None
        self.loaded = write_document(path, self.text(), like, expect=expect)
        self.path = path
        self.snapshots.before_rewrite = None  # the file holds the rewrite now: nothing to go back to
        self.editor.document().setModified(False)
        self._describe()
        self.editor.setReadOnly(False)
        if self.guard.path is None:
            self.guard.watch(self.loaded)
        else:
            self.guard.set_baseline(self.loaded)
        self.autosaver.document_saved()
        self.settings.add_recent(path)
        self.settings.save()
        self.pathChanged.emit()

    def _caveats_accepted(self, path: Path) -> bool:
        """Before the first save of this document to ``path``: say what the save cannot keep, if anything."""
        if self._caveats_shown_for is not None and _same_path(path, self._caveats_shown_for):
            return True
        caveats = save_caveats(path)
        if caveats and not self.ask_save_caveats(path, caveats, self.window):
            return False
        self._caveats_shown_for = path
        return True

    def _disk_check(self, path: Path) -> _DiskCheck:
        """How to write ``path``, after asking when the file changed on disk. Raises SaveCancelled."""
        if self.loaded is None or self.path is None or not _same_path(path, self.path):
            return _DiskCheck.WRITE  # a new file, or Save As (the file dialog asked about overwriting)
        state = check_unchanged(path, self.loaded)
        if state is DiskState.UNCHANGED:
            return _DiskCheck.WRITE
        choice = self.ask_conflict(path, state, self.window)
        if choice is ConflictChoice.OVERWRITE:
            return _DiskCheck.OVERWRITE
        if choice is ConflictChoice.SAVE_AS and self.save_as():
            return _DiskCheck.DONE
        if choice is ConflictChoice.RELOAD:
            self.reload_from_disk()
            raise SaveCancelled(path, "not saved: reloaded the version on disk", "Undo brings your text back")
        raise SaveCancelled(
            path,
            "not saved: the file was changed on disk by another program",
            "Your text is still in the editor",
        )

    def confirm_discard(self) -> bool:
        """True when there are no unsaved changes or the user agrees to drop them (or saves them)."""
        if not self.editor.document().isModified():
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved changes",
            "The document has unsaved changes. Save them first?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def rewrite_about_to_commit(self) -> None:
        """Keep the text as it is before a rewrite in the recovery entry, until Save or Keep: the entry may
        be the only copy of what the user typed, and a rewrite may shrink or replace it."""
        self.snapshots.before_rewrite = self.text()

    def rewrite_kept(self) -> None:
        """The user kept the rewrite: the recovery entry no longer needs the text from before it."""
        if self.snapshots.before_rewrite is None:
            return
        self.snapshots.before_rewrite = None
        if self.editor.document().isModified():
            self.autosaver.schedule()
            self.autosaver.save_now()

    def save_recovery_now(self) -> None:
        """Write the recovery copy now (a committed rewrite is too much work to lose to the debounce)."""
        self.autosaver.save_now()

    def close(self) -> None:
        """The user agreed to close (saved or discarded): nothing of this document needs recovering."""
        self.autosaver.discard()
        self.guard.unwatch()

    # -- the file on disk -------------------------------------------------------------------------------

    def reload_from_disk(self) -> bool:
        """Replace the text with the file's, as one undoable edit (Undo brings the editor's text back)."""
        if self.path is None or self.loaded is None:
            return False
        try:
            fresh = read_document(self.path, self.loaded.encoding)
        except StorageError as exc:
            self.notice.emit("error", f"Could not reload: {exc}")
            return False
        document = self.editor.document()
        cursor = QTextCursor(document)
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        insert_text(cursor, fresh.text)
        cursor.endEditBlock()
        self.loaded = fresh
        document.setModified(False)
        self.guard.set_baseline(fresh)
        self._describe()
        return True

    def _on_changed_on_disk(self, path: str) -> None:
        if self._asking:
            return
        self._asking = True
        try:
            if self.ask_reload(Path(path), self.editor.document().isModified(), self.window):
                self.reload_from_disk()
            else:
                self.guard.acknowledge_external()
                # The editor's text now differs from the file: closing asks, and autosave keeps a copy.
                self.editor.document().setModified(True)
        finally:
            self._asking = False

    def _on_deleted(self, path: str) -> None:
        # Marked modified so that closing asks, and autosave keeps a copy: the editor holds the only one now.
        self.editor.document().setModified(True)
        self.notice.emit("error", deleted_notice(path))

    def _on_writable_changed(self, path: str, writable: bool) -> None:
        self.notice.emit("info" if writable else "error", read_only_notice(path, writable))

    def _describe(self) -> None:
        """What the recovery copy says about the document: where it belongs and how the file is stored."""
        self.snapshots.path = str(self.path) if self.path is not None else None
        self.snapshots.display_name = self.display_name
        self.snapshots.like = self.loaded


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
