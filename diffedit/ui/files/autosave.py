"""Autosave into recovery files: a few seconds after the last change, at once after a committed rewrite.

One ``AutoSaver`` per open document. It knows nothing about the window: it asks its ``provider`` for a
``DocumentSnapshot`` whenever it is time to save, and writes that to the ``RecoveryStore``. A snapshot with
``modified=False`` means the text matches the file on disk, and the recovery entry is removed instead.
A running rewrite needs no pause: its frames are view state, never in the document's text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit

from diffedit.document.recovery import RecoveryEntry, RecoveryStore, new_doc_id
from diffedit.document.storage import LoadedDocument
from diffedit.ui.files.exact_text import document_text

DEFAULT_DELAY_MS = 3000
"""Save this long after the last change: long enough not to write on every keystroke."""
DEFAULT_MAX_DELAY_MS = 30_000
"""...but never later than this after the first unsaved change, however long the typing goes on."""


@dataclass(frozen=True)
class DocumentSnapshot:
    """What the autosaver needs to know about a document at one moment."""

    doc_id: str
    path: str | None
    display_name: str
    text: str
    modified: bool
    like: LoadedDocument | None = None
    """How the file was stored (encoding, BOM, newlines), and its fingerprint when it was read."""
    before_rewrite: str | None = None
    """The text before the last committed rewrite, until the user saves or keeps it."""

    def to_entry(self) -> RecoveryEntry:
        like = self.like
        return RecoveryEntry(
            doc_id=self.doc_id,
            path=self.path,
            display_name=self.display_name,
            text=self.text,
            saved_at=time.time(),
            encoding=like.encoding if like else "utf-8",
            bom=like.bom if like else False,
            newline=like.newline if like else "\n",
            base_sha256=like.sha256 if like else None,
            base_size=like.size if like else None,
            before_rewrite=self.before_rewrite,
        )


DocumentProvider = Callable[[], DocumentSnapshot]


class EditorSnapshots:
    """A ``DocumentProvider`` over a text widget; on Save As, update ``path``, ``display_name``, ``like``;
    ``before_rewrite`` is set after a committed rewrite and cleared on Save or Keep."""

    def __init__(
        self,
        editor: QPlainTextEdit | QTextEdit,
        *,
        doc_id: str | None = None,
        path: str | None = None,
        display_name: str = "Untitled",
        like: LoadedDocument | None = None,
    ) -> None:
        self.editor = editor
        self.doc_id = doc_id or new_doc_id()
        self.path = path
        self.display_name = display_name
        self.like = like
        self.before_rewrite: str | None = None

    def __call__(self) -> DocumentSnapshot:
        document = self.editor.document()
        return DocumentSnapshot(
            doc_id=self.doc_id,
            path=self.path,
            display_name=self.display_name,
            text=document_text(document),
            modified=document.isModified(),
            like=self.like,
            before_rewrite=self.before_rewrite,
        )


class AutoSaver(QObject):
    """Keeps one document's recovery entry up to date.

    Call ``schedule()`` on every change (or let ``watch()`` connect it), ``save_now()`` after a committed
    rewrite, ``document_saved()`` after the user saved the file, and ``discard()`` when the document is
    closed on purpose without saving.
    """

    failed = Signal(str)
    """Writing the recovery file failed; a one-line message for the status bar (emitted once per streak)."""

    def __init__(
        self,
        store: RecoveryStore,
        provider: DocumentProvider,
        parent: QObject | None = None,
        *,
        delay_ms: int = DEFAULT_DELAY_MS,
        max_delay_ms: int = DEFAULT_MAX_DELAY_MS,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._provider = provider
        self._delay_ms = delay_ms
        self._max_delay_ms = max_delay_ms
        self._dirty = False
        self._first_change: float | None = None
        self._failing = False
        self._written: dict[str, int] = {}  # doc id -> hash of what was last written for it
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.save_now)

    def set_delay(self, seconds: float) -> None:
        """The wait after the last change (Preferences); the longest wait grows with it, never below 30 s."""
        self._delay_ms = int(seconds * 1000)
        self._max_delay_ms = max(DEFAULT_MAX_DELAY_MS, self._delay_ms)

    # -- hooks for the window ---------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """A change is waiting to be written."""
        return self._dirty

    def schedule(self) -> None:
        """The document changed: save ``delay_ms`` after the last change, ``max_delay_ms`` after the first."""
        self._dirty = True
        now = time.monotonic()
        if self._first_change is None:
            self._first_change = now
        waited_ms = (now - self._first_change) * 1000
        self._timer.start(int(max(0, min(self._delay_ms, self._max_delay_ms - waited_ms))))

    def save_now(self) -> bool:
        """Write the recovery entry now if anything changed; True when nothing is left unsaved."""
        self._timer.stop()
        if not self._dirty:
            return True
        snapshot = self._provider()
        try:
            if snapshot.modified:
                self._write(snapshot)
            else:
                self._forget(snapshot.doc_id)
        except (OSError, ValueError) as exc:
            if not self._failing:
                self.failed.emit(f"Could not write the recovery copy of {snapshot.display_name}: {exc}")
            self._failing = True
            self._timer.start(max(self._delay_ms, 5000))  # try again later, changes or not
            return False
        self._failing = False
        self._dirty = False
        self._first_change = None
        return True

    def _write(self, snapshot: DocumentSnapshot) -> None:
        # Formatting-only changes (highlighting) also report "contents changed": skip identical rewrites.
        key = hash((snapshot.text, snapshot.path, snapshot.display_name, snapshot.before_rewrite))
        if self._written.get(snapshot.doc_id) == key and self._store.has_live(snapshot.doc_id):
            return
        self._store.save(snapshot.to_entry())
        self._written[snapshot.doc_id] = key

    def _forget(self, *doc_ids: str) -> None:
        for doc_id in {*doc_ids, *self._written}:
            self._store.remove(doc_id)
        self._written.clear()

    def document_saved(self) -> None:
        """The user saved the file (or undid back to it): the recovery entry is not needed any more."""
        self._timer.stop()
        self._dirty = False
        self._first_change = None
        self._forget(self._provider().doc_id)

    def discard(self) -> None:
        """The document was closed on purpose without saving: forget its recovery entry."""
        self.document_saved()

    def watch(self, document: QTextDocument) -> None:
        """Follow ``document``: every change, or becoming modified, schedules a save; going back to
        unmodified removes the entry."""
        document.contentsChanged.connect(self.schedule)
        document.modificationChanged.connect(self._modification_changed)

    # -- internals --------------------------------------------------------------------------------------

    def _modification_changed(self, modified: bool) -> None:
        # Marked modified without a text change (the file was deleted or changed on disk): the document
        # now differs from its file, so it needs a recovery copy all the same.
        if modified:
            self.schedule()
        else:
            self.document_saved()
