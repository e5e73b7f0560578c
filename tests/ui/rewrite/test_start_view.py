"""What Ctrl+R shows before the first step: the canvas at once, and the model loading (issue 18)."""

from __future__ import annotations

import threading

from pytestqt.qtbot import QtBot

from diffedit.ui.rewrite.canvas_renderer import PaintKind
from tests.ui.conftest import TARGET, WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine


def test_ctrl_r_shows_noise_at_once_and_the_model_loading(make_window: WindowFactory, qtbot: QtBot) -> None:
    go = threading.Event()

    def slow_loader(path=None, device=None, dtype=None, progress=None, **options):  # type: ignore[no-untyped-def]
        if progress:
            progress("Loading model from the bundled demo model…")
        go.wait(10)
        return FakeEngine()

    w = make_window(slow_loader)
    select_text(w, TARGET)
    assert w.rewrite()
    paint = w.controller.canvas.paint
    assert paint is not None
    assert len(paint.text) == len(TARGET)  # noise at the target's length, not an empty box
    assert any(kind is PaintKind.NOISE for _s, _e, kind in paint.runs)
    qtbot.waitUntil(lambda: "Loading model" in w.status.step.text(), timeout=3000)
    assert "Step 0" not in w.status.step.text()
    qtbot.waitUntil(lambda: " s)" in w.status.step.text(), timeout=3000)  # elapsed time: it is alive
    go.set()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    assert w.status.step.text().startswith("Step")


def test_the_report_names_one_block_or_several_and_counts_the_wait(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    go = threading.Event()

    def slow_loader(path=None, device=None, dtype=None, progress=None, **options):  # type: ignore[no-untyped-def]
        go.wait(10)
        return FakeEngine()

    w = make_window(slow_loader)
    select_text(w, TARGET)
    assert w.rewrite()
    qtbot.wait(1200)  # the model is still loading: this wait is part of the rewrite's time
    go.set()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    message = w.review_bar.label.text()
    assert message.startswith("Rewrote block 3 in "), message
    assert float(message.split(" in ")[1].split(" s")[0]) >= 1.2
    label = w.history_dock.list.item(0).text()
    assert "block 3 ·" in label and "  " not in label
    w.review_bar.keep_button.click()
    text = w.editor.toPlainText()
    c = w.editor.textCursor()
    c.setPosition(text.index("First paragraph"))
    c.setPosition(text.index("- another item"), c.MoveMode.KeepAnchor)
    w.editor.setTextCursor(c)
    assert w.rewrite()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    assert w.review_bar.label.text().startswith("Rewrote blocks 2-4 in "), w.review_bar.label.text()


def test_ctrl_end_then_ctrl_r_takes_the_last_paragraph(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, _engine = fake_window
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.End)  # after the final newline
    assert w.rewrite(), w.notice_bar.label.text()
    session = w.controller.session
    assert session is not None and session.original == "Last paragraph after the target."
