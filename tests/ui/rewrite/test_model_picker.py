"""Choosing a model in the editor: checked first, loaded on the worker, remote code only if allowed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox
from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from diffedit.worker import default_loader
from tests.ui.conftest import WindowFactory


def _pick(monkeypatch: pytest.MonkeyPatch, folder: Path | str) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *_a, **_k: str(folder)))


def test_switch_to_another_checkpoint_and_back(
    make_window: WindowFactory, qtbot: QtBot, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w: MainWindow = make_window(default_loader)
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=60_000)
    assert w.bridge.model_name == "diffedit-demo"
    _pick(monkeypatch, tiny_checkpoint)
    w.model.choose_folder()
    qtbot.waitUntil(
        lambda: w.bridge.state == "ready" and w.bridge.model_name == tiny_checkpoint.name, timeout=60_000
    )
    assert w.settings.model_path == str(tiny_checkpoint.resolve())
    assert Settings.load().model_path == w.settings.model_path  # persisted
    assert not w.model.spec().trust_remote_code
    w.model.use_demo_model()
    qtbot.waitUntil(
        lambda: w.bridge.state == "ready" and w.bridge.model_name == "diffedit-demo", timeout=60_000
    )


def test_a_folder_that_is_no_model_is_refused_and_nothing_changes(
    make_window: WindowFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w: MainWindow = make_window()
    warnings: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "warning", staticmethod(lambda _p, _t, text, *a, **k: warnings.append(text))
    )
    _pick(monkeypatch, tmp_path)
    before = w.settings.model_path
    w.model.choose_folder()
    assert len(warnings) == 1 and "no config.json" in warnings[0] and "current model stays" in warnings[0]
    assert w.settings.model_path == before


@pytest.mark.parametrize("allow", [False, True])
def test_remote_code_needs_an_explicit_yes(
    make_window: WindowFactory,
    tiny_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    allow: bool,
) -> None:
    folder = tmp_path / "custom"
    shutil.copytree(tiny_checkpoint, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModel": "modeling_custom.Custom"}
    (folder / "config.json").write_text(json.dumps(cfg))
    asked: list[str] = []

    def answer(_p: object, _title: str, text: str, *_a: object, **_k: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return QMessageBox.StandardButton.Yes if allow else QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(answer))
    w: MainWindow = make_window()
    w.bridge.switch_model = lambda spec: None  # type: ignore[method-assign]  # the choice is under test
    _pick(monkeypatch, folder)
    w.model.choose_folder()
    assert len(asked) == 1 and "run on this computer" in asked[0]
    assert w.model.spec().trust_remote_code is allow
    assert (str(folder.resolve()) in w.settings.trusted_code_models) is allow
