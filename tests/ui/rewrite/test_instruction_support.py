"""An instruction given to a model that cannot follow one is not silently dropped (issue 18)."""

from __future__ import annotations

from types import SimpleNamespace

from pytestqt.qtbot import QtBot

from tests.ui.conftest import TARGET, WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine, fake_loader


def test_an_infill_model_says_it_cannot_follow_the_instruction(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    engine = FakeEngine()
    engine.loaded = SimpleNamespace(context_format=SimpleNamespace(name="infill"))  # type: ignore[attr-defined]
    w = make_window(fake_loader(engine))
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=5000)
    bar = w.rewrite_bar.instruction
    assert "cannot follow" in bar.placeholderText() and "cannot follow" in bar.toolTip()
    assert "no instructions" in w.status.model.text()
    bar.setText("make it shorter")
    select_text(w, TARGET)
    assert w.rewrite()
    assert w.notice_bar.isVisible() and "make it shorter" in w.notice_bar.label.text()
    assert "cannot follow" in w.notice_bar.label.text()


def test_a_chat_model_takes_the_instruction_without_a_notice(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w = make_window(fake_loader(FakeEngine()))
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=5000)
    assert "cannot follow" not in w.rewrite_bar.instruction.placeholderText()
    w.rewrite_bar.instruction.setText("make it shorter")
    select_text(w, TARGET)
    assert w.rewrite()
    assert not w.notice_bar.isVisible()
