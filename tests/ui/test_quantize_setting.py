"""Preferences ▸ Model weights: the choice is saved, and the model is loaded again quantised (issue 16)."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.worker import default_loader
from tests.ui.conftest import WindowFactory


def test_choosing_int4_in_preferences_reloads_the_real_model_in_int4(
    make_window: WindowFactory, engine_checkpoint: Path, qtbot: QtBot
) -> None:
    w = make_window(default_loader, model_path=str(engine_checkpoint))
    qtbot.waitUntil(lambda: w.bridge.state in ("ready", "failed"), timeout=60_000)
    assert w.bridge.state == "ready", w.bridge.error
    assert w.bridge._worker.engine.loaded.quantization == "none"  # type: ignore[union-attr]
    dialog = w.preferences_dialog()
    assert dialog.quantize.currentData() == "none"
    dialog.quantize.setCurrentIndex(dialog.quantize.findData("int4"))
    dialog.accept()
    assert Settings.load().quantize == "int4"
    qtbot.waitUntil(lambda: w.bridge.state == "ready" and _quantization(w) == "int4", timeout=60_000)
    loaded = w.bridge._worker.engine.loaded  # type: ignore[union-attr]
    assert loaded.weight_bytes < 0.6 * loaded.info.weight_files[0].stat().st_size
    # the next start reads the choice back into the dialog
    assert w.preferences_dialog().quantize.currentData() == "int4"


def _quantization(w: object) -> str:
    engine = w.bridge._worker.engine  # type: ignore[attr-defined]
    return "" if engine is None else str(engine.loaded.quantization)
