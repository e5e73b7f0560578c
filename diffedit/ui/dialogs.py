"""Edit ▸ Preferences, Help ▸ Keyboard Shortcuts and Help ▸ About."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFontComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diffedit.engine.types import EngineError, GenerationSettings
from diffedit.server_key import read_key, store_key
from diffedit.settings import Settings
from diffedit.ui.icons import ICON_LICENCE

THEME_CHOICES = (("light", "Light"), ("dark", "Dark"), ("system", "Follow the system"))
DEVICE_CHOICES = (("", "Automatic"), ("cpu", "CPU"), ("cuda", "CUDA GPU"), ("mps", "Apple GPU (MPS)"))
SERVER_KEYS = ("use_server", "server_url", "server_key_env", "server_key_in_keyring", "server_protocol")
RUN_CHOICES = (
    ("", "This computer (the model folder above)"),
    ("diffedit", "A server running diffedit serve"),
    ("vllm", "A vLLM server (the model folder above gives its tokenizer)"),
)
KEY_CHOICES = ((False, "From an environment variable"), (True, "Stored in the system keyring"))
QUANTIZE_CHOICES = (
    ("none", "As stored (bf16)"),
    ("int8", "int8 (about half the memory)"),
    ("int4", "int4 (about a quarter of the memory)"),
)


class PreferencesDialog(QDialog):
    """Edits a copy of the settings; ``result_settings`` holds them once accepted (and checked)."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("preferences")
        self.result_settings: Settings | None = None
        self._base = settings
        form = QFormLayout()
        self.system_font = QCheckBox("The system's font (proportional)", self)
        self.font_family = QFontComboBox(self)
        self.font_family.setEnabled(False)
        self.system_font.toggled.connect(lambda on: self.font_family.setEnabled(not on))
        self.system_font.setChecked(not settings.font_family)
        if settings.font_family:
            self.font_family.setCurrentFont(QFont(settings.font_family))
        self.font_size = QSpinBox(self, minimum=6, maximum=48, value=settings.font_size, suffix=" pt")
        self.theme = QComboBox(self)
        for key, label in THEME_CHOICES:
            self.theme.addItem(label, key)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        self.line_width = QSpinBox(
            self, minimum=0, maximum=400, value=settings.line_width, suffix=" characters"
        )
        self.line_width.setSpecialValueText("The window's width")
        self.autosave = QSpinBox(self, minimum=1, maximum=600, value=settings.autosave_delay_s, suffix=" s")
        self.autosave.setToolTip("How long after the last change the recovery copy is written")
        self.model_path = QLineEdit(settings.model_path, self)
        self.model_path.setPlaceholderText("The bundled demo model")
        browse = QPushButton("Choose…", self)
        browse.clicked.connect(self._browse)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_path, 1)
        model_row.addWidget(browse)
        self.device = QComboBox(self)
        for key, label in DEVICE_CHOICES:
            self.device.addItem(label, key)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        self.quantize = QComboBox(self)
        for key, label in QUANTIZE_CHOICES:
            self.quantize.addItem(label, key)
        self.quantize.setCurrentIndex(max(0, self.quantize.findData(settings.quantize)))
        self.quantize.setToolTip(
            "int8 and int4 shrink the experts and large layers while the model loads, so a large model fits "
            "a laptop; they change the output slightly (Rewrite ▸ Models… shows what fits)"
        )
        self.offload = QCheckBox("Split between the GPU and RAM when the weights do not fit the GPU", self)
        self.offload.setChecked(settings.offload != "none")
        self.offload.setToolTip(
            "Keeps the layers that do not fit the GPU in RAM and copies them in for each step: slower, but a "
            "model too large for the GPU runs (off: such a model is refused, naming what would fit)"
        )
        # Wide ranges on purpose: the engine's GenerationSettings is the one place values are checked.
        self._server_rows(settings)
        self.steps = QSpinBox(self, minimum=-1000, maximum=100_000, value=settings.steps)
        self.strength = QDoubleSpinBox(self, minimum=-10.0, maximum=10.0, singleStep=0.05, decimals=2)
        self.strength.setValue(settings.strength)
        form.addRow("Editor font", self.system_font)
        form.addRow("", self.font_family)
        form.addRow("Font size", self.font_size)
        form.addRow("Theme", self.theme)
        form.addRow("Line width", self.line_width)
        form.addRow("Autosave after", self.autosave)
        form.addRow("Model folder", model_row)
        form.addRow("Device", self.device)
        form.addRow("Model weights", self.quantize)
        form.addRow("", self.offload)
        form.addRow("Rewrite on", self.run_on)
        form.addRow("Server URL", self.server_url)
        form.addRow("Server key", self.key_source)
        form.addRow("", self.key_env)
        form.addRow("", self.key_entry)
        form.addRow("Default steps", self.steps)
        form.addRow("Default strength", self.strength)
        self.error = QLabel(self)
        self.error.setObjectName("preferencesError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b;")
        self.error.hide()
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)

    def _server_rows(self, settings: Settings) -> None:
        """Local model or a ``diffedit serve``; where its key is. The key itself goes to the keyring only."""
        self.key_stored = False  # set when accept() wrote a new key to the keyring
        self.run_on = QComboBox(self)
        self.run_on.setObjectName("runOn")
        for protocol, label in RUN_CHOICES:
            self.run_on.addItem(label, protocol)
        self.run_on.setCurrentIndex(
            self.run_on.findData(settings.server_protocol) if settings.use_server else 0
        )
        self.run_on.setToolTip(
            "With a server, each rewrite sends the text around it there; nothing is sent anywhere otherwise"
        )
        self.server_url = QLineEdit(settings.server_url, self)
        self.server_url.setObjectName("serverUrl")
        self.server_url.setPlaceholderText("http://gpu-box:8040")
        self.key_source = QComboBox(self)
        self.key_source.setObjectName("keySource")
        for key, label in KEY_CHOICES:
            self.key_source.addItem(label, key)
        self.key_source.setCurrentIndex(1 if settings.server_key_in_keyring else 0)
        self.key_env = QLineEdit(settings.server_key_env, self)
        self.key_env.setObjectName("keyEnv")
        self.key_env.setPlaceholderText("DIFFEDIT_API_KEY")
        self.key_env.setToolTip("The environment variable diffedit reads the key from (no key: unset)")
        self.key_entry = QLineEdit(self)
        self.key_entry.setObjectName("keyEntry")
        self.key_entry.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_entry.setPlaceholderText("A key typed here goes to the keyring (empty: keep the stored one)")
        self.run_on.currentIndexChanged.connect(self._show_server_rows)
        self.key_source.currentIndexChanged.connect(self._show_server_rows)
        self._show_server_rows()

    def _show_server_rows(self) -> None:
        served, keyring = bool(self.run_on.currentData()), bool(self.key_source.currentData())
        for widget in (self.server_url, self.key_source):
            widget.setEnabled(served)
        self.key_env.setEnabled(served and not keyring)
        self.key_entry.setEnabled(served and keyring)
        self.key_env.setVisible(not keyring)
        self.key_entry.setVisible(keyring)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Choose a DiffusionGemma model folder")
        if chosen:
            self.model_path.setText(chosen)

    def collected(self) -> Settings:
        return dataclasses.replace(
            self._base,
            font_family="" if self.system_font.isChecked() else self.font_family.currentFont().family(),
            font_size=self.font_size.value(),
            theme=self.theme.currentData(),
            line_width=self.line_width.value(),
            autosave_delay_s=self.autosave.value(),
            model_path=self.model_path.text().strip(),
            device=self.device.currentData(),
            quantize=self.quantize.currentData(),
            offload="auto" if self.offload.isChecked() else "none",
            steps=self.steps.value(),
            strength=round(self.strength.value(), 2),
            use_server=bool(self.run_on.currentData()),
            server_protocol=self.run_on.currentData() or self._base.server_protocol,
            server_url=self.server_url.text().strip().rstrip("/"),
            server_key_env=self.key_env.text().strip() or "DIFFEDIT_API_KEY",
            server_key_in_keyring=bool(self.key_source.currentData()),
            recent_files=list(self._base.recent_files),
            trusted_code_models=list(self._base.trusted_code_models),
        )

    def accept(self) -> None:
        chosen = self.collected()
        try:  # the engine's own check, and its own words
            GenerationSettings(steps=chosen.steps, strength=chosen.strength)
        except ValueError as exc:
            self.error.setText(f"Not saved: {exc}")
            self.error.show()
            return
        problem = self._server_problem(chosen)
        if problem:
            self.error.setText(f"Not saved: {problem}")
            self.error.show()
            return
        self.result_settings = chosen
        super().accept()

    def _server_problem(self, chosen: Settings) -> str:
        """Why the server choice cannot be saved ("" when it can); stores a typed key in the keyring."""
        url = chosen.server_url
        if chosen.use_server and not url.startswith(("http://", "https://")):
            return "give the server's URL, such as http://gpu-box:8040 (diffedit serve prints it)"
        if not chosen.server_key_env.replace("_", "a").isalnum():
            return f"{chosen.server_key_env!r} is not the name of an environment variable"
        key = self.key_entry.text()
        if not chosen.server_key_in_keyring or not (key or chosen.use_server):
            return ""
        try:
            if key:
                store_key(url, key)
                self.key_stored = True
                self.key_entry.clear()
            elif read_key(url) is None:
                return "no key is stored for this server yet: type it in the key field"
        except EngineError as exc:  # KeyringUnavailable
            return str(exc)
        return ""


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str]]:
    """(what, keys) for every action with a shortcut, in the order given, without duplicates."""
    rows: list[tuple[str, str]] = []
    for action in actions:
        keys = ", ".join(
            k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()
        )
        what = action.text().replace("&", "").rstrip("…")
        if keys and (what, keys) not in rows:
            rows.append((what, keys))
    return rows


def shortcuts_dialog(
    actions: Iterable[QAction], extra: Iterable[tuple[str, str]], parent: QWidget
) -> QDialog:
    rows = [*shortcut_rows(actions), *extra]
    dialog = QDialog(parent)
    dialog.setWindowTitle("Keyboard Shortcuts")
    table = QTableWidget(len(rows), 2, dialog)
    table.setObjectName("shortcutTable")
    table.setHorizontalHeaderLabels(["Action", "Keys"])
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for i, (what, keys) in enumerate(rows):
        table.setItem(i, 0, QTableWidgetItem(what))
        table.setItem(i, 1, QTableWidgetItem(keys))
    table.resizeColumnsToContents()
    table.horizontalHeader().setStretchLastSection(True)
    lay = QVBoxLayout(dialog)
    lay.addWidget(table)
    close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    close.rejected.connect(dialog.reject)
    lay.addWidget(close)
    dialog.resize(460, 520)
    return dialog


def app_version() -> str:
    try:
        return importlib.metadata.version("diffedit")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def about_text(model: str) -> str:
    return (
        f"<h3>diffedit {app_version()}</h3>"
        "<p>A Markdown editor that rewrites paragraphs in place with a diffusion language model.</p>"
        f"<p>Model in use: {model or 'none loaded'}</p>"
        "<p><b>Licences</b><br>diffedit: Apache-2.0.<br>"
        "The bundled demo model: see its model card (diffedit/resources/models/diffedit-demo/README.md).<br>"
        "DiffusionGemma weights: Apache-2.0 (Google).<br>"
        f"{ICON_LICENCE}</p>"
    )


def about_box(model: str, parent: QWidget) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.NoIcon, "About diffedit", about_text(model), parent=parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setObjectName("aboutBox")
    return box
