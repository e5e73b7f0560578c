"""Watch an open document's file: changes by other programs, deletion, read-only; and save-time conflicts.

``FileGuard`` follows one file with a QFileSystemWatcher and compares contents with the version the editor
read or last saved (``storage.check_unchanged``), so its own saves and plain ``touch``es raise nothing. It
emits signals; the ``ask_*``/``notify_*`` functions are the dialogs a window shows in answer. The text in
the editor is never dropped by the guard: reloading happens only when the user says so.
"""

from __future__ import annotations

import enum
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from diffedit.document.storage import DiskState, LoadedDocument, check_unchanged, file_is_writable

DEBOUNCE_MS = 250
"""Other programs often save in several steps (truncate, write, rename): look once they are done."""


class FileGuard(QObject):
    """Follows one file. Call ``watch(loaded)`` after opening it and ``set_baseline(saved)`` after saving.

    Signals carry the path. ``changedOnDisk`` fires once per new external version (not again for the same
    bytes), ``deletedOnDisk`` once when the file goes away, ``writableChanged`` when it becomes read-only
    or writable again.
    """

    changedOnDisk = Signal(str)
    deletedOnDisk = Signal(str)
    writableChanged = Signal(str, bool)

    def __init__(self, parent: QObject | None = None, debounce_ms: int = DEBOUNCE_MS) -> None:
        super().__init__(parent)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._poke)
        self._watcher.directoryChanged.connect(self._poke)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self.check_now)
        self._baseline: LoadedDocument | None = None
        self._path: Path | None = None
        self._state = DiskState.UNCHANGED
        self._seen_external: str | None = None  # fingerprint of the external version already reported
        self._writable = True
        self._last_fingerprint: str | None = None  # of the file when last checked: skips needless hashing

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def baseline(self) -> LoadedDocument | None:
        return self._baseline

    def watch(self, loaded: LoadedDocument) -> None:
        """Follow ``loaded.path``; ``loaded`` is the version the editor holds."""
        self.unwatch()
        self._path = Path(loaded.path).absolute()
        self.set_baseline(loaded)
        self._writable = file_is_writable(self._path)
        self._rewatch()

    def unwatch(self) -> None:
        paths = self._watcher.files() + self._watcher.directories()
        if paths:
            self._watcher.removePaths(paths)
        self._timer.stop()
        self._path = None
        self._baseline = None

    def set_baseline(self, loaded: LoadedDocument) -> None:
        """The editor now holds (or just wrote) ``loaded``: changes are measured from it."""
        self._baseline = loaded
        self._state = DiskState.UNCHANGED
        self._seen_external = None
        self._last_fingerprint = None
        if self._path is not None and Path(loaded.path).absolute() != self._path:
            self.watch(loaded)  # Save As: follow the new file

    def disk_state(self) -> DiskState:
        """How the file on disk compares with the baseline, checked now (use it right before saving)."""
        if self._baseline is None or self._path is None:
            return DiskState.UNCHANGED
        return check_unchanged(self._path, self._baseline)

    def acknowledge_external(self) -> None:
        """The user chose to keep their version: do not ask again about the version now on disk."""
        if self._path is not None and self._path.exists():
            self._seen_external = _fingerprint(self._path)

    def check_now(self) -> None:
        if self._path is None or self._baseline is None:
            return
        self._rewatch()
        fingerprint = _fingerprint(self._path)
        if fingerprint is not None and fingerprint == self._last_fingerprint:
            return  # another file in the folder changed, not ours
        self._last_fingerprint = fingerprint
        state = check_unchanged(self._path, self._baseline)
        previous, self._state = self._state, state
        if state is DiskState.DELETED:
            if previous is not DiskState.DELETED:
                self.deletedOnDisk.emit(str(self._path))
            return
        writable = file_is_writable(self._path)
        if writable != self._writable:
            self._writable = writable
            self.writableChanged.emit(str(self._path), writable)
        if state is DiskState.MODIFIED and fingerprint != self._seen_external:
            self._seen_external = fingerprint
            self.changedOnDisk.emit(str(self._path))

    # -- internals --------------------------------------------------------------------------------------

    def _poke(self, _path: str) -> None:
        self._timer.start()

    def _rewatch(self) -> None:
        """Re-add the file after a replace-by-rename (the watcher drops it); watch the folder for returns."""
        if self._path is None:
            return
        if self._path.exists() and str(self._path) not in self._watcher.files():
            self._watcher.addPath(str(self._path))
        folder = str(self._path.parent)
        if self._path.parent.is_dir() and folder not in self._watcher.directories():
            self._watcher.addPath(folder)


def _fingerprint(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_mode}"


# ------------------------------------------------------------------------------------------ dialogs


class ConflictChoice(enum.Enum):
    RELOAD = "reload"
    OVERWRITE = "overwrite"
    SAVE_AS = "save_as"
    CANCEL = "cancel"


def conflict_box(path: str | Path, state: DiskState, parent: QWidget | None = None) -> QMessageBox:
    """The save-time conflict dialog; each button's ``property("choice")`` is a ConflictChoice value."""
    name = Path(path).name
    box = QMessageBox(parent)
    box.setObjectName("saveConflictBox")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("File changed on disk")
    if state is DiskState.DELETED:
        box.setText(f"“{name}” was deleted or moved since you opened it.")
        box.setInformativeText("Save it again at the same place, or choose another with Save As?")
        overwrite_label = "&Save Here"
    else:
        box.setText(f"“{name}” was changed by another program since you opened it.")
        box.setInformativeText(
            "Overwrite replaces those changes with yours. Reload replaces your unsaved text with the file's "
            "(it stays in Undo). Save As keeps both."
        )
        overwrite_label = "&Overwrite"
    buttons = [
        (box.addButton(overwrite_label, QMessageBox.ButtonRole.DestructiveRole), ConflictChoice.OVERWRITE),
        (box.addButton("Save &As…", QMessageBox.ButtonRole.AcceptRole), ConflictChoice.SAVE_AS),
        (box.addButton(QMessageBox.StandardButton.Cancel), ConflictChoice.CANCEL),
    ]
    if state is not DiskState.DELETED:
        buttons.insert(0, (box.addButton("&Reload", QMessageBox.ButtonRole.ResetRole), ConflictChoice.RELOAD))
    for button, choice in buttons:
        button.setProperty("choice", choice.value)
    box.setDefaultButton(buttons[-2][0])  # Save As: the choice that loses nothing
    box.setEscapeButton(buttons[-1][0])
    return box


def ask_save_conflict(path: str | Path, state: DiskState, parent: QWidget | None = None) -> ConflictChoice:
    box = conflict_box(path, state, parent)
    box.exec()
    clicked = box.clickedButton()
    value = clicked.property("choice") if clicked is not None else None
    return ConflictChoice(value) if value else ConflictChoice.CANCEL


def reload_box(path: str | Path, has_unsaved_changes: bool, parent: QWidget | None = None) -> QMessageBox:
    name = Path(path).name
    box = QMessageBox(parent)
    box.setObjectName("reloadBox")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("File changed on disk")
    box.setText(f"“{name}” was changed by another program.")
    if has_unsaved_changes:
        box.setInformativeText(
            "Reload it? Your unsaved changes would be replaced (Undo brings them back). "
            "Keep Mine leaves your text as it is; saving will then ask before overwriting."
        )
    else:
        box.setInformativeText("Reload it to see the new version?")
    reload = box.addButton("&Reload", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("&Keep Mine", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep if has_unsaved_changes else reload)
    box.setEscapeButton(keep)
    reload.setProperty("choice", "reload")
    return box


def ask_reload(path: str | Path, has_unsaved_changes: bool, parent: QWidget | None = None) -> bool:
    box = reload_box(path, has_unsaved_changes, parent)
    box.exec()
    clicked = box.clickedButton()
    return clicked is not None and clicked.property("choice") == "reload"


def save_caveats_box(path: str | Path, caveats: list[str], parent: QWidget | None = None) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("saveCaveatsBox")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Saving cannot keep everything")
    box.setText(f"Saving “{Path(path).name}” cannot keep all of the file's properties:")
    box.setInformativeText("\n".join(f"• {caveat}." for caveat in caveats))
    save = box.addButton("&Save Anyway", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    save.setProperty("choice", "save")
    return box


def ask_save_caveats(path: str | Path, caveats: list[str], parent: QWidget | None = None) -> bool:
    """True when the user saves anyway, knowing what the save cannot keep."""
    box = save_caveats_box(path, caveats, parent)
    box.exec()
    clicked = box.clickedButton()
    return clicked is not None and clicked.property("choice") == "save"


def deleted_notice(path: str | Path) -> str:
    return f"“{Path(path).name}” was deleted or moved on disk. Your text is still here; save to keep it."


def read_only_notice(path: str | Path, writable: bool) -> str:
    name = Path(path).name
    if writable:
        return f"“{name}” is writable again."
    return f"“{name}” was made read-only. Your text is still here; use Save As to keep your changes."
