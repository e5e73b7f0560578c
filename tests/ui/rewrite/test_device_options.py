"""Model options that do not apply to the device are off, saying why (issue 18)."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from tests.ui.conftest import WindowFactory
from tests.ui.fake_engine import FakeEngine, fake_loader


def test_gpu_only_options_are_disabled_without_cuda(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window(fake_loader(FakeEngine()))  # device "cpu"
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=5000)
    for action in (w.act_fp8, w.act_compile):
        assert not action.isEnabled(), action.text()
        assert "CUDA" in action.toolTip() and "cpu" in action.toolTip()


def test_gpu_only_options_are_enabled_on_cuda(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine()
    engine.device = "cuda:0"
    w = make_window(fake_loader(engine))
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=5000)
    assert w.act_fp8.isEnabled() and w.act_compile.isEnabled()
    assert "CUDA" not in w.act_fp8.toolTip().split(".")[0]
