"""UI fixtures: main windows over a fake engine (fast) or the real engine on a checkpoint (end to end)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from diffedit.worker import EngineBridge, default_loader
from tests.ui.fake_engine import FakeEngine, fake_loader

DOC = """# Title

First paragraph stays as it is.

The second paragraph is the one we rewrite today.

- a list item
- another item

Last paragraph after the target.
"""
TARGET = "The second paragraph is the one we rewrite today."


@pytest.fixture
def engine_checkpoint() -> Path:
    """The checkpoint end-to-end tests load: the bundled demo model, as a user runs it."""
    from diffedit.engine.loader import default_model_path

    return default_model_path()


WindowFactory = Callable[..., MainWindow]


@pytest.fixture
def make_window(qtbot: QtBot) -> Iterator[WindowFactory]:
    windows: list[MainWindow] = []

    def make(
        loader: Callable[..., object] | None = None,
        text: str | None = DOC,
        settings: Settings | None = None,
        model_path: str = "",
    ) -> MainWindow:
        s = settings or Settings()
        s.model_path = model_path
        bridge = EngineBridge(loader or fake_loader(FakeEngine()))  # type: ignore[arg-type]
        w = MainWindow(s, bridge=bridge, autoload_model=True)
        w.documents.confirm_discard = lambda: True  # type: ignore[method-assign]  # never a modal dialog in tests
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        w.activateWindow()
        if text is not None:
            w.editor.setPlainText(text)
            w.editor.document().setModified(False)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.editor.document().setModified(False)
        w.controller.stop(quiet=True)
        w.bridge.shutdown()
        w.close()


@pytest.fixture
def fake_window(make_window: WindowFactory) -> tuple[MainWindow, FakeEngine]:
    engine = FakeEngine()
    return make_window(fake_loader(engine)), engine


@pytest.fixture
def real_window(make_window: WindowFactory, engine_checkpoint: Path, qtbot: QtBot) -> MainWindow:
    w = make_window(default_loader, model_path=str(engine_checkpoint))
    qtbot.waitUntil(lambda: w.bridge.state in ("ready", "failed"), timeout=60_000)
    assert w.bridge.state == "ready", w.bridge.error
    return w


def select_text(window: MainWindow, needle: str) -> tuple[int, int]:
    """Select the first occurrence of ``needle`` (ASCII test documents: Python index == Qt position)."""
    text = window.editor.toPlainText()
    start = text.index(needle)
    c = window.editor.textCursor()
    c.setPosition(start)
    c.setPosition(start + len(needle), c.MoveMode.KeepAnchor)
    window.editor.setTextCursor(c)
    return start, start + len(needle)
