"""A file that is not UTF-8: let the user pick the encoding (with a live preview) or open it read-only.

``open_with_encoding_choice(path, parent)`` is what an Open command calls: it reads the file, and only when
that raises ``EncodingProblem`` shows the dialog. The chosen encoding is remembered in the returned
``LoadedDocument``, so saving writes the file back in that same encoding.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.storage import EncodingProblem, LoadedDocument, read_document

PREVIEW_BYTES = 64 * 1024
COMMON_ENCODINGS = (
    "utf-8",
    "cp1252",
    "latin-1",
    "iso8859-15",
    "utf-16",
    "cp1250",
    "cp1251",
    "koi8-r",
    "mac-roman",
    "shift_jis",
    "euc-jp",
    "gb18030",
    "big5",
    "euc-kr",
)


@dataclass(frozen=True)
class EncodingChoice:
    encoding: str
    read_only: bool


class EncodingDialog(QDialog):
    """Shows why the file could not be read, the best guesses first, and a preview in the chosen encoding."""

    def __init__(self, problem: EncodingProblem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("encodingDialog")
        self.setWindowTitle("Choose an encoding")
        self.choice: EncodingChoice | None = None
        self._sample = _read_sample(problem.path)

        message = QLabel(
            f"“{problem.path.name}” is not UTF-8 text ({problem.problem}).\n"
            "Pick the encoding that makes the preview read right. Saving keeps that encoding."
        )
        message.setWordWrap(True)
        self.combo = QComboBox()
        self.combo.setObjectName("encodingCombo")
        self.combo.setEditable(True)  # any codec Python knows may be typed in
        names = list(dict.fromkeys([*problem.guesses, *COMMON_ENCODINGS]))
        for name in names:
            label = f"{name} (likely)" if name in problem.guesses else name
            self.combo.addItem(label, name)
        self.preview = QPlainTextEdit()
        self.preview.setObjectName("encodingPreview")
        self.preview.setReadOnly(True)
        self.status = QLabel()

        buttons = QDialogButtonBox()
        self.open_button = QPushButton("Open")
        self.open_button.setDefault(True)
        self.read_only_button = QPushButton("Open &Read-Only")
        self.read_only_button.setToolTip("Look at the file without any risk of saving over it.")
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.read_only_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.open_button.clicked.connect(lambda: self._choose(read_only=False))
        self.read_only_button.clicked.connect(lambda: self._choose(read_only=True))
        buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.addRow("Encoding:", self.combo)
        layout = QVBoxLayout(self)
        layout.addWidget(message)
        layout.addLayout(form)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(640, 420)
        self.combo.currentTextChanged.connect(self._update_preview)
        self._update_preview()

    def encoding(self) -> str:
        """The selected codec name, or the typed one."""
        index = self.combo.currentIndex()
        if index >= 0 and self.combo.itemText(index) == self.combo.currentText():
            return str(self.combo.itemData(index))
        return self.combo.currentText().strip()

    def select(self, encoding: str) -> None:
        index = self.combo.findData(encoding)
        if index >= 0:
            self.combo.setCurrentIndex(index)
        else:
            self.combo.setEditText(encoding)

    def _update_preview(self) -> None:
        name = self.encoding()
        try:
            codecs.lookup(name)
        except LookupError:
            self.status.setText(f"“{name}” is not an encoding this editor knows.")
            self.open_button.setEnabled(False)
            return
        text = self._sample.decode(name, errors="replace")
        bad = text.count("\ufffd")
        self.preview.setPlainText(text[:20_000])
        self.open_button.setText(f"Open as {name}")
        # Strict decoding of a truncated sample may fail at the cut; only the whole file's result counts.
        self.open_button.setEnabled(True)
        self.status.setText(
            f"{bad} characters cannot be read in {name}: open read-only or pick another." if bad else ""
        )

    def _choose(self, *, read_only: bool) -> None:
        self.choice = EncodingChoice(self.encoding(), read_only)
        self.accept()


def _read_sample(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(PREVIEW_BYTES)
    except OSError:
        return b""


AskEncoding = Callable[[EncodingProblem, QWidget | None], EncodingChoice | None]


def ask_encoding(problem: EncodingProblem, parent: QWidget | None = None) -> EncodingChoice | None:
    dialog = EncodingDialog(problem, parent)
    return dialog.choice if dialog.exec() == QDialog.DialogCode.Accepted else None


@dataclass(frozen=True)
class OpenedFile:
    document: LoadedDocument
    read_only: bool
    """The user asked for a read-only look (or the text could only be decoded with replacements)."""


def open_with_encoding_choice(
    path: str | Path, parent: QWidget | None = None, ask: AskEncoding = ask_encoding
) -> OpenedFile | None:
    """Read ``path``; when it is not UTF-8, ask for an encoding. None if the user cancelled.

    Other StorageErrors (missing, binary, too large) propagate for the caller to show.
    """
    try:
        return OpenedFile(read_document(path), read_only=False)
    except EncodingProblem as problem:
        while True:
            choice = ask(problem, parent)
            if choice is None:
                return None
            if choice.read_only:
                doc = read_document(path, choice.encoding, errors="replace")
                return OpenedFile(doc, read_only=True)
            try:
                return OpenedFile(read_document(path, choice.encoding), read_only=False)
            except EncodingProblem as again:
                problem = again  # the whole file did not fit that encoding: ask again, saying where
