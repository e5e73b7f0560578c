"""Rewrite > Models…: listing checkpoints, using one, and downloading against a hub stand-in on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from diffedit.ui.rewrite.models_dialog import PROGRESS_STEPS, ModelsDialog, describe_progress
from diffedit.units import human_bytes
from diffedit.worker import default_loader
from tests.engine.fake_hub import FakeHub, FakeRepo, serve
from tests.ui.conftest import WindowFactory

REPO = "acme/tiny-dg"
WANTED_SUFFIXES = (".safetensors", ".json", "tokenizer.model")


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty hub cache and models folder of our own, and huggingface_hub allowed online."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("DIFFEDIT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf" / "hub"


@pytest.fixture
def hub(tiny_checkpoint: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with serve(FakeHub({REPO: FakeRepo.from_folder(tiny_checkpoint)})) as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        yield fake


def _open(w: MainWindow, qtbot: QtBot) -> ModelsDialog:
    dialog = w.open_models()
    with qtbot.waitSignal(dialog.scanned, timeout=60_000):
        pass
    return dialog


def _names(dialog: ModelsDialog) -> list[str]:
    return [e.name for e in dialog.entries]


def _ask_for(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *_a, **_k: (text, True)))


def test_progress_reads_bytes_speed_and_time_left() -> None:
    expected = "12.0 MB of 50.5 GB · 4.0 MB/s · 3 h 30 min left"
    assert describe_progress(12_000_000, 50_500_000_000, 4_000_000) == expected
    assert describe_progress(1_000_000, 2_000_000, 100_000) == "1.0 MB of 2.0 MB · 100.0 kB/s · 10 s left"
    assert describe_progress(0, 2_000, 0.0) == "0 B of 2.0 kB"


def test_the_demo_is_listed_and_in_use_by_default(
    make_window: WindowFactory, qtbot: QtBot, hf_home: Path
) -> None:
    w = make_window()
    dialog = _open(w, qtbot)
    assert len(dialog.entries) == 1 and dialog.entries[0].demo
    assert dialog.table.rowCount() == 1
    assert "in use" in dialog.table.item(0, 0).text() and "nonsense" in dialog.table.item(0, 0).text()
    assert dialog.table.item(0, 1).text() == "diffusion_gemma"
    assert dialog.selected() == dialog.entries[0]


def test_add_folder_lists_its_checkpoints_and_is_remembered(
    make_window: WindowFactory,
    qtbot: QtBot,
    hf_home: Path,
    tiny_checkpoint: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = make_window()
    dialog = _open(w, qtbot)
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *_a, **_k: str(tiny_checkpoint.parent))
    )
    with qtbot.waitSignal(dialog.scanned, timeout=60_000):
        dialog.add_folder_button.click()
    assert Settings.load().model_folders == [str(tiny_checkpoint.parent.resolve())]
    row = _names(dialog).index(tiny_checkpoint.name)
    entry = dialog.entries[row]
    assert entry.source == "folder" and entry.parameters > 0
    cells = [dialog.table.item(row, c).text() for c in range(dialog.table.columnCount())]
    assert cells[1:] == [
        "diffusion_gemma",
        cells[2],
        human_bytes(entry.size_bytes),
        entry.dtype,
        ", ".join(load.mode for load in entry.loads if load.fits) or "none",
        "your folder",
    ]
    assert cells[2] and cells[2] != "0"
    assert "bf16:" in dialog.table.item(row, 5).toolTip()  # what each way of loading needs


def test_download_with_progress_to_the_total_then_use_it(
    make_window: WindowFactory, qtbot: QtBot, hub: FakeHub, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = make_window(default_loader)
    dialog = _open(w, qtbot)
    assert REPO not in _names(dialog)
    _ask_for(monkeypatch, REPO)
    with qtbot.waitSignal(dialog.downloadEnded, timeout=60_000) as ended:
        dialog.download_button.click()
        assert dialog.progress_dialog is not None and dialog.progress_dialog.isVisible()
    assert ended.args == ["done"]
    progress = dialog.progress_dialog
    assert progress is not None and not progress.isVisible()
    repo = hub.repos[REPO]
    fetched = sum(len(data) for name, data in repo.files.items() if name.endswith(WANTED_SUFFIXES))
    assert progress.value() == PROGRESS_STEPS
    assert f"{human_bytes(fetched)} of {human_bytes(fetched)}" in progress.labelText()
    with qtbot.waitSignal(dialog.scanned, timeout=60_000):
        pass
    assert REPO in _names(dialog)
    entry = dialog.selected()  # the pulled model is selected
    assert entry is not None and entry.name == REPO and entry.source == "hf-cache"
    assert entry.path == hf_home / "models--acme--tiny-dg" / "snapshots" / repo.commit
    assert dialog.use_selected()
    qtbot.waitUntil(lambda: w.bridge.state == "ready" and w.bridge.model_name == repo.commit, timeout=60_000)
    assert Settings.load().model_path == str(entry.path.resolve())  # remembered
    assert not w.status.demo.isVisible()


def test_cancel_stops_the_download_and_nothing_half_fetched_is_listed(
    make_window: WindowFactory, qtbot: QtBot, hub: FakeHub, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    hub.hold["model.safetensors"] = gate
    w = make_window()
    dialog = _open(w, qtbot)
    _ask_for(monkeypatch, REPO)
    try:
        dialog.download_button.click()
        qtbot.waitUntil(
            lambda: bool(hub.gets("model.safetensors")), timeout=30_000
        )  # the weights are on their way
        assert dialog.progress_dialog is not None
        cancel = dialog.progress_dialog.findChild(QPushButton)
        assert cancel is not None and cancel.text() == "Cancel"
        with qtbot.waitSignal(dialog.downloadEnded, timeout=30_000) as ended:
            cancel.click()
            gate.set()
    finally:
        gate.set()
    assert ended.args == ["cancelled"]
    with qtbot.waitSignal(dialog.scanned, timeout=60_000):
        pass
    assert REPO not in _names(dialog)
    assert all(not e.demo for e in dialog.skipped)
    assert not list(hf_home.glob("models--acme--tiny-dg/snapshots/*/model.safetensors"))
    assert "cancelled" in dialog.note.text()
    assert dialog.download_button.isEnabled()
    assert w.settings.model_path == ""  # the model in use did not change


def test_a_failed_download_names_the_problem_and_lists_nothing(
    make_window: WindowFactory, qtbot: QtBot, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "warning", staticmethod(lambda _p, _t, text, *a, **k: warnings.append(text))
    )
    w = make_window()
    dialog = _open(w, qtbot)
    _ask_for(monkeypatch, "acme/missing")
    with qtbot.waitSignal(dialog.downloadEnded, timeout=60_000) as ended:
        dialog.download_button.click()
    assert ended.args == ["failed"]
    assert len(warnings) == 1 and "acme/missing was not found on http://127.0.0.1" in warnings[0]
    assert "acme/missing" not in _names(dialog) and dialog.download_button.isEnabled()
