"""Which model rewrites: the folder (checked before anything loads), its options, and the one way to reload.

Remote code runs only for a folder the user allowed after a warning. With a server chosen in Preferences the
spec names it instead (a ``diffedit serve``: the bridge connects there; picking a local model turns it off).
Every change of model or model option goes through ``ModelPicker.reload``: stop the rewrite, say so, and
have the bridge load the new spec.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from diffedit.engine.types import ModelLoadError
from diffedit.settings import Settings
from diffedit.worker import EngineBridge, ModelSpec, check_model_folder

LOADING = "Model: loading…"


def wants_remote_code(folder: Path) -> bool:
    """A checkpoint that names its own Python classes (``auto_map``) cannot load without running them."""
    try:
        return "auto_map" in json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def choose_model_folder(parent: QWidget, settings: Settings) -> bool:
    """Ask for a folder, check it, record it in ``settings``; True when the model should be (re)loaded."""
    start = settings.model_path or str(Path.home())
    chosen = QFileDialog.getExistingDirectory(parent, "Choose a DiffusionGemma model folder", start)
    return bool(chosen) and adopt_model_folder(parent, Path(chosen), settings)


def adopt_model_folder(parent: QWidget, folder: Path, settings: Settings) -> bool:
    """Check ``folder``, ask about its own code if it ships any, record it in ``settings``; True when the
    model should be (re)loaded."""
    try:
        check_model_folder(folder)
    except ModelLoadError as exc:
        QMessageBox.warning(parent, "Not a usable model", f"{exc}\n\nThe current model stays in use.")
        return False
    key = str(folder.resolve())
    settings.use_server = False  # a local model chosen: rewrites run here again (the server stays noted)
    trusted = [p for p in settings.trusted_code_models if p != key]
    if wants_remote_code(folder):
        answer = QMessageBox.warning(
            parent,
            "This model wants to run its own code",
            f"{folder.name} ships Python code that would run on this computer with your permissions when "
            "the model loads. diffedit's DiffusionGemma support never needs it.\n\n"
            "Allow code from this one folder only if you trust where it came from.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            trusted.append(key)
    settings.trusted_code_models = trusted
    settings.model_path = key
    settings.save()
    return True


class ModelPicker(QObject):
    """The model in use, as the settings describe it; every switch reloads through ``reload``."""

    aboutToReload = Signal()  # the running rewrite must stop: its model is going away
    status = Signal(str)  # a line for the status bar

    def __init__(self, settings: Settings, bridge: EngineBridge, parent: QWidget) -> None:
        super().__init__(parent)
        self.settings = settings
        self.bridge = bridge
        self._parent = parent

    def spec(self) -> ModelSpec:
        s = self.settings
        trusted = bool(s.model_path) and s.model_path in s.trusted_code_models
        return ModelSpec(
            s.model_path or None,
            s.device or None,
            s.dtype or None,
            trusted,
            s.fp8,
            s.compile_step,
            s.quantize,
            s.offload,
            s.server_url.strip() if s.use_server else "",
            s.server_key_env.strip() or "DIFFEDIT_API_KEY",
            s.server_key_in_keyring,
            s.server_protocol,
        )

    def load(self) -> None:
        """Load the model unless it was asked for already (the bridge tries a failed load again by itself)."""
        if self.bridge.state != "unloaded":
            return
        self.status.emit(LOADING)
        self.bridge.load(self.spec())

    def reload(self) -> None:
        self.aboutToReload.emit()
        self.status.emit(LOADING)
        self.bridge.switch_model(self.spec())

    def choose_folder(self) -> None:
        if choose_model_folder(self._parent, self.settings):
            self.reload()

    def use_folder(self, folder: Path) -> bool:
        """Use a checkpoint found on disk (the Models dialog); False when it was refused."""
        if not adopt_model_folder(self._parent, folder, self.settings):
            return False
        self.reload()
        return True

    def use_demo_model(self) -> None:
        self.settings.model_path = ""
        self.settings.use_server = False
        self.settings.save()
        self.reload()

    def set_option(self, name: str, on: bool) -> None:
        """A model option from the Rewrite menu (``fp8``, ``compile_step``): kept, and the model reloaded."""
        if getattr(self.settings, name) == on:
            return
        setattr(self.settings, name, on)
        self.settings.save()
        self.reload()
