"""While the bundled demo model is in use the app says what it is: a status badge, a one-time notice on the
first rewrite, and the welcome document's first screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow, welcome_text
from diffedit.worker import default_loader
from tests.ui.conftest import TARGET, WindowFactory, select_text


def _finish(w: MainWindow, qtbot: QtBot) -> None:
    w.controller.stop(quiet=True)
    qtbot.waitUntil(lambda: not w.controller.running and w.bridge.current_job is None, timeout=60_000)


def test_the_badge_shows_while_the_demo_is_in_use_and_goes_with_it(
    real_window: MainWindow, qtbot: QtBot, tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = real_window
    assert w.bridge.demo_model
    assert w.status.demo.isVisible() and w.status.demo.text() == "Demo model"
    tip = w.status.demo.toolTip()
    assert "writes nonsense" in tip and "Rewrite > Models…" in tip
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", staticmethod(lambda *_a, **_k: str(tiny_checkpoint))
    )
    w.model.choose_folder()
    qtbot.waitUntil(
        lambda: w.bridge.state == "ready" and w.bridge.model_name == tiny_checkpoint.name, timeout=60_000
    )
    assert not w.bridge.demo_model and not w.status.demo.isVisible()


def test_a_model_that_is_not_the_demo_has_no_badge(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window()  # the fake engine names no demo checkpoint
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=10_000)
    assert not w.status.demo.isVisible()


def test_the_first_rewrite_on_the_demo_says_so_once(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    assert not w.settings.demo_notice_shown
    select_text(w, TARGET)
    assert w.rewrite()
    assert w.notice_bar.isVisible() and "writes nonsense" in w.notice_bar.label.text()
    assert "Rewrite > Models…" in w.notice_bar.label.text()
    assert Settings.load().demo_notice_shown  # remembered across sessions
    _finish(w, qtbot)
    w.notice_bar.hide()
    select_text(w, TARGET)
    assert w.rewrite()
    assert "writes nonsense" not in w.notice_bar.label.text() or not w.notice_bar.isVisible()
    _finish(w, qtbot)


def test_a_new_session_does_not_repeat_the_notice(make_window: WindowFactory, qtbot: QtBot) -> None:
    s = Settings()
    s.demo_notice_shown = True
    w = make_window(default_loader, settings=s)
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=60_000)
    assert w.status.demo.isVisible()  # the badge stays: only the notice is once
    select_text(w, TARGET)
    assert w.rewrite()
    assert not w.notice_bar.isVisible()
    _finish(w, qtbot)


def test_the_welcome_document_says_what_the_demo_is_on_its_first_screen() -> None:
    first_screen = welcome_text()[:1200]
    assert "demo model" in first_screen and "writes nonsense" in first_screen
    assert "Rewrite > Models…" in first_screen
