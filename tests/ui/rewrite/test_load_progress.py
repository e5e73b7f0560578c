"""Ctrl+R while the model loads: how far loading has got, in per cent, from the loader to the status bar."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diffedit.engine.loader import default_model_path
from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from diffedit.worker import EngineBridge, default_loader
from tests.ui.conftest import DOC, TARGET, WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine

PERCENT = re.compile(r"(\d+) %")


def percents(lines: list[str]) -> list[int]:
    return [int(m.group(1)) for line in lines if (m := PERCENT.search(line))]


def test_ctrl_r_on_a_real_checkpoint_shows_loading_percentages(qtbot: QtBot, tmp_path: Path) -> None:
    settings = Settings()
    settings.model_path = str(default_model_path())
    # Not loaded at start: Ctrl+R starts the load, as when a user rewrites right after opening the app.
    w = MainWindow(settings, bridge=EngineBridge(default_loader), autoload_model=False)
    w.documents.confirm_discard = lambda: True  # type: ignore[method-assign]
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)  # the shortcut goes to the active window
    w.editor.setPlainText(DOC)
    shown: list[str] = []  # the status bar's model label, at every message the bridge delivers
    w.bridge.modelLoading.connect(lambda _message: shown.append(w.status.model.text()))
    try:
        select_text(w, TARGET)
        w.rewrite_bar.steps.setValue(2)
        w.editor.setFocus()
        assert w.bridge.state == "unloaded"
        qtbot.keyClick(w.editor, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        assert w.controller.running and w.bridge.state == "loading", w.notice_bar.label.text()
        qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
        assert w.bridge.state == "ready", w.bridge.error
    finally:
        w.controller.stop(quiet=True)
        w.bridge.shutdown()
        w.editor.document().setModified(False)
        w.close()
    seen = percents(shown)
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen  # only ever forward
    assert seen[0] == 0 and seen[-1] == 100 and len(seen) >= 10, seen  # the demo has 136 tensors
    assert all(line.startswith("Loading diffedit-demo: ") for line in shown if PERCENT.search(line))


def test_the_step_line_shows_the_percentage_while_the_run_waits(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    go = threading.Event()

    def loader(path=None, device=None, dtype=None, progress=None, **options):  # type: ignore[no-untyped-def]
        progress("Loading the bundled demo model: 40 %")
        go.wait(10)
        return FakeEngine()

    w = make_window(loader)
    select_text(w, TARGET)
    assert w.rewrite()
    qtbot.waitUntil(lambda: "40 %" in w.status.step.text(), timeout=5000)
    assert re.fullmatch(r"Loading the bundled demo model: 40 % \(\d+ s\)", w.status.step.text())
    assert w.status.model.text() == "Loading the bundled demo model: 40 %"
    go.set()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
