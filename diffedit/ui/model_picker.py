"""Choosing the model: a folder checked before anything loads; remote code only after a warning."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from diffedit.engine.loader import inspect_checkpoint
from diffedit.engine.types import ModelLoadError
from diffedit.settings import Settings


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
    if not chosen:
        return False
    folder = Path(chosen)
    try:
        inspect_checkpoint(folder)
    except ModelLoadError as exc:
        QMessageBox.warning(parent, "Not a usable model", f"{exc}\n\nThe current model stays in use.")
        return False
    key = str(folder.resolve())
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
