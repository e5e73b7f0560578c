"""Rewrite > Models…: the checkpoints on this machine, what each needs, and a download with progress.

The list comes from the catalogue (Hugging Face cache, the user's folders, the demo), scanned off the UI
thread; only usable checkpoints are rows, the rest are counted with their reasons in a tooltip. Using one
goes through ``ModelPicker`` (the one reload path), which checks it and remembers it in the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diffedit.settings import Settings
from diffedit.ui.rewrite.model_picker import ModelPicker
from diffedit.units import human_bytes, human_count, human_duration
from diffedit.worker import CheckpointScan, ModelDownload

if TYPE_CHECKING:
    from diffedit.worker import CatalogEntry

COLUMNS = ("Model", "Family", "Parameters", "Size", "Dtype", "Fits here", "Where")
PROGRESS_STEPS = 1000  # the progress bar counts thousandths: a checkpoint's bytes overflow a C int
_SOURCES = {"hf-cache": "Hugging Face cache", "folder": "your folder", "demo": "bundled"}


def describe_progress(done: int, total: int, rate: float) -> str:
    """ "12.0 MB of 50.5 GB · 4.2 MB/s · 3 min left" (speed and time once there is a rate)."""
    parts = [f"{human_bytes(done)} of {human_bytes(total)}"]
    if rate > 0:
        parts += [f"{human_bytes(rate)}/s", f"{human_duration(max(0, total - done) / rate)} left"]
    return " · ".join(parts)


def fits_summary(entry: CatalogEntry) -> tuple[str, str]:
    """The loading ways that fit this machine, and a tooltip with what each needs."""
    fitting = [load.mode for load in entry.loads if load.fits]
    tip = "\n".join(
        f"{load.mode}: {human_bytes(load.bytes)} of {load.where}, "
        + ("fits" if load.fits else "does not fit")
        + (f" ({load.note})" if load.note else "")
        for load in entry.loads
    )
    return (", ".join(fitting) if fitting else "none"), tip


class ModelsDialog(QDialog):
    scanned = Signal()  # the list shows a fresh scan
    downloadEnded = Signal(str)  # "done", "cancelled" or "failed"

    def __init__(self, settings: Settings, picker: ModelPicker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("modelsDialog")
        self.resize(900, 420)
        self.settings, self.picker = settings, picker
        self.entries: list[CatalogEntry] = []
        self.skipped: list[CatalogEntry] = []
        self.scan: CheckpointScan | None = None
        self.download_job: ModelDownload | None = None
        self.progress_dialog: QProgressDialog | None = None
        self._select_after_scan: Path | None = None
        self._news = ""  # how the last download ended, shown above the skipped-folders note
        self._bytes_shown = 0  # the download's largest byte count shown so far

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("modelsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(lambda _index: self.use_selected())
        self.note = QLabel("Looking for models…", self)
        self.note.setObjectName("modelsNote")
        self.note.setWordWrap(True)

        self.add_folder_button = QPushButton("Add &Folder…", self)
        self.add_folder_button.setToolTip("Look for checkpoints in a folder (and its subfolders) from now on")
        self.add_folder_button.clicked.connect(self.add_folder)
        self.download_button = QPushButton("&Download…", self)
        self.download_button.setToolTip("Download a checkpoint from the Hugging Face hub into its cache")
        self.download_button.clicked.connect(self.ask_download)
        self.use_button = QPushButton("&Use This Model", self)
        self.use_button.setDefault(True)
        self.use_button.clicked.connect(self.use_selected)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        buttons = QHBoxLayout()
        for button in (self.add_folder_button, self.download_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.use_button)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.note)
        lay.addLayout(buttons)
        self.refresh()

    # -- the list ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Scan again, off the UI thread; the rows are replaced when the scan is done."""
        self.note.setText("Looking for models…")
        self.scan = CheckpointScan()
        self.scan.done.connect(self._show)
        self.scan.failed.connect(lambda message: self.note.setText(f"Looking for models failed: {message}"))
        self.scan.start(list(self.settings.model_folders))

    def _in_use(self, entry: CatalogEntry) -> bool:
        if entry.demo:
            return not self.settings.model_path
        return bool(self.settings.model_path) and Path(self.settings.model_path) == entry.path.resolve()

    def _show(self, found: list[CatalogEntry]) -> None:
        self.entries = [e for e in found if e.usable]
        self.skipped = [e for e in found if not e.usable]
        self.table.setRowCount(len(self.entries))
        select = 0
        for row, entry in enumerate(self.entries):
            fits, fits_tip = fits_summary(entry)
            in_use = self._in_use(entry)
            name = (
                entry.name
                + (" (demo: writes nonsense)" if entry.demo else "")
                + (" — in use" if in_use else "")
            )
            cells = (
                name,
                entry.family,
                human_count(entry.parameters),
                human_bytes(entry.size_bytes),
                entry.dtype,
                fits,
                _SOURCES.get(entry.source, entry.source),
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(fits_tip if col == COLUMNS.index("Fits here") else str(entry.path))
                self.table.setItem(row, col, item)
            wanted = self._select_after_scan
            if (wanted is not None and entry.path == wanted) or (wanted is None and in_use):
                select = row
        self.table.resizeColumnsToContents()
        if self.entries:
            self.table.selectRow(select)
        self._select_after_scan = None
        self.note.setText(" ".join(t for t in (self._news, self._skipped_note()) if t))
        self.note.setToolTip("\n".join(f"{e.path}: {e.reason}" for e in self.skipped))
        self.scanned.emit()

    def _skipped_note(self) -> str:
        if not self.skipped:
            return ""
        count = len(self.skipped)
        return f"{count} folder{'s' if count > 1 else ''} not usable by diffedit (hover here for why)."

    def selected(self) -> CatalogEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.entries[rows[0].row()] if rows else None

    def use_selected(self) -> bool:
        """Load the selected checkpoint through the one reload path; it is remembered in the settings."""
        entry = self.selected()
        if entry is None:
            return False
        if entry.demo:
            self.picker.use_demo_model()
        elif not self.picker.use_folder(entry.path):
            return False
        self.accept()
        return True

    def add_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Add a folder with models", str(Path.home()))
        if not chosen:
            return
        key = str(Path(chosen).resolve())
        if key not in self.settings.model_folders:
            self.settings.model_folders = [*self.settings.model_folders, key]
            self.settings.save()
        self.refresh()

    # -- download ----------------------------------------------------------------------------------
    def ask_download(self) -> None:
        text, ok = QInputDialog.getText(
            self,
            "Download a model",
            "Hugging Face model id, optionally @revision\n(e.g. google/diffusiongemma-26B-A4B-it):",
        )
        repo, _, revision = text.strip().partition("@")
        if ok and repo:
            self.download(repo, revision or "main")

    def download(self, repo: str, revision: str = "main") -> ModelDownload:
        """Pull ``repo`` off the UI thread with a progress dialog (bytes, speed, time left) and Cancel."""
        job = ModelDownload(repo, revision)
        self._news = ""
        self._bytes_shown = 0
        dialog = QProgressDialog(f"Downloading {repo}…", "Cancel", 0, PROGRESS_STEPS, self)
        dialog.setWindowTitle("Downloading a model")
        dialog.setObjectName("downloadProgress")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(self.cancel_download)
        job.progress.connect(self._on_progress)
        job.done.connect(self._on_downloaded)
        job.failed.connect(self._on_download_failed)
        job.cancelled.connect(self._on_download_cancelled)
        self.download_job, self.progress_dialog = job, dialog
        self.download_button.setEnabled(False)
        dialog.show()
        job.start()
        return job

    def cancel_download(self) -> None:
        if self.download_job is not None:
            self.download_job.cancel()
            if self.progress_dialog is not None:
                self.progress_dialog.setLabelText(
                    "Cancelling… (the files already fetched stay for next time)"
                )

    def _on_progress(self, done: int, total: int, rate: float) -> None:
        if self.progress_dialog is None or self.download_job is None or self.download_job.cancel_requested:
            return
        if done < self._bytes_shown:  # download threads report outside the meter's lock: a late, older count
            return
        self._bytes_shown = done
        self.progress_dialog.setLabelText(
            f"Downloading {self.download_job.repo}\n{describe_progress(done, total, rate)}"
        )
        # Last: a modal progress dialog's setValue runs the event loop, so newer progress may land inside it.
        self.progress_dialog.setValue(round(PROGRESS_STEPS * done / total) if total else 0)

    def _end_download(self, outcome: str) -> str:
        repo = self.download_job.repo if self.download_job is not None else ""
        self.download_job = None
        if self.progress_dialog is not None:
            self.progress_dialog.hide()  # not close(): that counts as Cancel and resets the bar
        self.download_button.setEnabled(True)
        self.downloadEnded.emit(outcome)
        return repo

    def _on_downloaded(self, folder: str) -> None:
        self._end_download("done")
        self._select_after_scan = Path(folder)
        self.refresh()

    def _on_download_failed(self, message: str) -> None:
        repo = self._end_download("failed")
        QMessageBox.warning(self, "Download failed", f"Downloading {repo} failed: {message}")

    def _on_download_cancelled(self) -> None:
        repo = self._end_download("cancelled")
        self._news = f"Download of {repo} cancelled; the files already fetched stay for the next try."
        self.refresh()

    def done(self, result: int) -> None:
        """Closing the dialog stops a download in flight (what was fetched stays in the cache)."""
        if self.download_job is not None:
            self.download_job.cancel()
        super().done(result)
