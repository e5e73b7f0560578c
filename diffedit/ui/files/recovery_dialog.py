"""At startup: offer the unsaved text a crashed or killed editor left behind.

Each recoverable document is listed with its name, when it was last autosaved and a preview. Restore opens
the text as an unsaved document (the user's own file is not touched until they save); Discard moves the
recovery file aside (kept a while in ``recovery/discarded``); "Decide later" keeps the rest for next time.
An entry that also holds the text from before a rewrite offers both versions (``entry.versions()``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.recovery import RecoveryEntry, RecoveryStore
from diffedit.document.storage import DiskState, LoadedDocument, check_unchanged

OpenDocument = Callable[[RecoveryEntry], None]
"""Opens an adopted entry as an unsaved document that keeps the entry's doc id."""


def describe_disk_state(entry: RecoveryEntry) -> str:
    """One line about the file the entry belongs to, as it is on disk now."""
    if entry.path is None:
        return "Never saved."
    path = Path(entry.path)
    if entry.base_sha256 is None or entry.base_size is None:
        return f"From {path} (a new file)." if not path.exists() else f"From {path}."
    base = LoadedDocument(path=path, text="", size=entry.base_size, sha256=entry.base_sha256)
    state = check_unchanged(path, base)
    if state is DiskState.DELETED:
        return f"From {path}, which no longer exists."
    if state is DiskState.MODIFIED:
        return f"From {path}, which has changed on disk since: saving will ask before overwriting it."
    return f"From {path}, unchanged on disk since."


def when(entry: RecoveryEntry) -> str:
    saved = _dt.datetime.fromtimestamp(entry.saved_at)
    today = _dt.date.today()
    if saved.date() == today:
        return saved.strftime("today %H:%M")
    if saved.date() == today - _dt.timedelta(days=1):
        return saved.strftime("yesterday %H:%M")
    return saved.strftime("%Y-%m-%d %H:%M")


class RecoveryDialog(QDialog):
    """Lists recoverable documents; Restore or Discard each. ``restored`` holds what was restored."""

    def __init__(
        self,
        store: RecoveryStore,
        entries: list[RecoveryEntry],
        open_document: OpenDocument | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recover unsaved documents")
        self.setObjectName("recoveryDialog")
        self._store = store
        self._open_document = open_document
        self.restored: list[RecoveryEntry] = []
        self.discarded: list[RecoveryEntry] = []

        intro = QLabel(
            "diffedit did not close normally. These documents had changes that were not saved.\n"
            "Restored documents open unsaved; your files are not changed until you save."
        )
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("recoveryList")
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setObjectName("recoveryPreview")
        self.details = QLabel()
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.version = QComboBox()  # which text to restore, when a rewrite left a version from before it
        self.version.setObjectName("recoveryVersion")
        self.version.currentIndexChanged.connect(self._show_version)

        self.restore_button = QPushButton("&Restore")
        self.discard_button = QPushButton("&Discard")
        self.discard_button.setToolTip(
            "Discarded text is kept for 14 days in the recovery folder's 'discarded'."
        )
        self.restore_all_button = QPushButton("Restore &All")
        buttons = QDialogButtonBox()
        self.later_button = buttons.addButton("Decide &Later", QDialogButtonBox.ButtonRole.RejectRole)
        self.later_button.setToolTip("Keep the remaining documents; they are offered again next start.")
        self.restore_button.clicked.connect(self.restore_current)
        self.discard_button.clicked.connect(self.discard_current)
        self.restore_all_button.clicked.connect(self.restore_all)
        buttons.rejected.connect(self.reject)

        side = QVBoxLayout()
        side.addWidget(self.list)
        row = QHBoxLayout()
        for button in (self.restore_button, self.discard_button, self.restore_all_button):
            row.addWidget(button)
        side.addLayout(row)
        body = QHBoxLayout()
        body.addLayout(side, 2)
        right = QVBoxLayout()
        right.addWidget(self.details)
        right.addWidget(self.version)
        right.addWidget(self.preview, 1)
        body.addLayout(right, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(body, 1)
        layout.addWidget(buttons)
        self.resize(820, 440)

        for entry in entries:
            item = QListWidgetItem(self._label(entry))
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(entry.path or "Never saved")
            self.list.addItem(item)
        self.list.currentItemChanged.connect(self._show_current)
        if self.list.count():
            self.list.setCurrentRow(0)

    # -- actions ----------------------------------------------------------------------------------------

    def entries(self) -> list[RecoveryEntry]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def current_entry(self) -> RecoveryEntry | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def restore_current(self) -> None:
        entry = self.current_entry()
        if entry is not None:
            self._restore(entry, self.version.currentData())

    def restore_all(self) -> None:
        for entry in self.entries():
            self._restore(entry)

    def discard_current(self) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        self._store.discard(entry)
        self.discarded.append(entry)
        self._drop(entry)

    # -- internals --------------------------------------------------------------------------------------

    def _restore(self, entry: RecoveryEntry, text: str | None = None) -> None:
        """Restore ``entry``, with ``text`` (one of its versions) in place of its current text if given."""
        adopted = self._store.adopt(entry)
        if adopted is None:
            # Another editor restored it a moment ago; it is safe there.
            self._drop(entry)
            return
        if text is not None and text != adopted.text:
            adopted = dataclasses.replace(adopted, text=text)
        if self._open_document is not None:
            self._open_document(adopted)
        self.restored.append(adopted)
        self._drop(entry)

    def _drop(self, entry: RecoveryEntry) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole).doc_id == entry.doc_id:
                self.list.takeItem(i)
                break
        if self.list.count() == 0:
            self.accept()

    def _show_current(self) -> None:
        entry = self.current_entry()
        has = entry is not None
        for button in (self.restore_button, self.discard_button):
            button.setEnabled(has)
        self.version.blockSignals(True)
        self.version.clear()
        for label, text in entry.versions() if entry is not None else []:
            self.version.addItem(label, text)
        self.version.blockSignals(False)
        self.version.setVisible(self.version.count() > 1)
        self._show_version()

    def _show_version(self) -> None:
        entry = self.current_entry()
        if entry is None:
            self.preview.clear()
            self.details.clear()
            return
        text = self.version.currentData()
        shown = dataclasses.replace(entry, text=text) if isinstance(text, str) else entry
        p = RecoveryStore.preview(shown, max_lines=60, max_chars=6000)
        self.preview.setPlainText(p.head)
        self.details.setText(
            f"<b>{_escape(entry.display_name)}</b><br>{_escape(describe_disk_state(entry))}<br>"
            f"Autosaved {when(entry)}; {_count(p.words, 'word')}, {_count(p.lines, 'line')}."
            + (
                "<br>A rewrite was not yet saved or kept: choose which text to restore."
                if len(entry.versions()) > 1
                else ""
            )
        )

    @staticmethod
    def _label(entry: RecoveryEntry) -> str:
        words = len(entry.text.split())
        return f"{entry.display_name} — {when(entry)} — {_count(words, 'word')}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def offer_recovery(
    store: RecoveryStore, open_document: OpenDocument, parent: QWidget | None = None
) -> list[RecoveryEntry]:
    """Show the dialog if a previous editor left unsaved text; returns the restored entries."""
    entries = store.pending()
    if not entries:
        return []
    dialog = RecoveryDialog(store, entries, open_document, parent)
    dialog.exec()
    return dialog.restored
