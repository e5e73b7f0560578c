"""End to end through the real engine: a DiffusionGemma checkpoint loaded from disk by ``Engine.load``.

The checkpoint comes from the ``engine_checkpoint`` fixture (tests/ui/conftest.py): the bundled demo
model, loaded through the same loader users run.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diffedit.document.session import normalize_replacement
from diffedit.ui.main_window import MainWindow
from tests.ui.conftest import DOC, TARGET, select_text

T0 = DOC.index(TARGET)
T1 = T0 + len(TARGET)


def start(w: MainWindow, steps: int = 2) -> None:
    w.rewrite_bar.steps.setValue(steps)
    select_text(w, TARGET)
    w.editor.setFocus()
    assert w.rewrite()


def wait_done(w: MainWindow, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)


def test_rewrite_undo_redo(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    results = []
    w.bridge.jobFinished.connect(lambda _id, r: results.append(r))
    start(w)
    wait_done(w, qtbot)
    assert results, w.notice_bar.label.text()
    replacement = normalize_replacement(results[0].text)
    assert w.editor.toPlainText() == DOC[:T0] + replacement + DOC[T1:]  # every other byte identical
    assert w.history_dock.list.count() == 1
    assert w.controller.history[0].frames, "frames kept for replay"
    assert "Model:" in w.status.model.text() and w.status.step.text().startswith("Step")
    w.editor.undo()
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()
    w.editor.redo()
    assert w.editor.toPlainText() == DOC[:T0] + replacement + DOC[T1:]


def test_stop_mid_run_restores_the_original(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    start(w, steps=500)  # long enough that the run is surely still going when Esc arrives
    qtbot.waitUntil(
        lambda: w.controller.latest_paint is not None and w.controller.latest_paint.step >= 1,
        timeout=60_000,
    )
    assert w.editor.toPlainText() == DOC
    qtbot.keyClick(w.editor, Qt.Key.Key_Escape)
    assert not w.controller.running
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()
    qtbot.wait(300)  # a late result of the stopped job must not land
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()


def test_typing_elsewhere_is_kept(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    results = []
    w.bridge.jobFinished.connect(lambda _id, r: results.append(r))
    start(w, steps=3)
    c = w.editor.textCursor()
    c.setPosition(len("# Title"))
    w.editor.setTextCursor(c)
    qtbot.keyClicks(w.editor, "!!")
    assert w.controller.running
    wait_done(w, qtbot)
    assert results, w.notice_bar.label.text()
    head = DOC[:T0].replace("# Title", "# Title!!")
    assert w.editor.toPlainText() == head + normalize_replacement(results[0].text) + DOC[T1:]


def test_edit_inside_the_target_cancels(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    start(w, steps=8)
    c = w.editor.textCursor()
    c.setPosition(T0 + 3)
    w.editor.setTextCursor(c)
    qtbot.keyClicks(w.editor, "Z")
    assert not w.controller.running and "cancelled" in w.notice_bar.label.text()
    qtbot.wait(300)
    assert w.editor.toPlainText() == DOC[: T0 + 3] + "Z" + DOC[T0 + 3 :]


def test_try_again_and_replay(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    start(w)
    wait_done(w, qtbot)
    first_seed = w.controller.history[0].seed
    qtbot.mouseClick(w.review_bar.retry_button, Qt.MouseButton.LeftButton)
    assert w.editor.toPlainText() == DOC  # the first rewrite was undone before the second run
    wait_done(w, qtbot)
    assert len(w.controller.history) == 2 and w.controller.history[1].seed != first_seed
    after = w.editor.toPlainText()
    assert w.controller.replay(1)
    qtbot.waitUntil(lambda: not w.controller.replaying, timeout=20_000)
    assert w.editor.toPlainText() == after
    w.editor.undo()
    assert w.editor.toPlainText() == DOC


def test_a_missing_model_is_a_clear_message(make_window, tmp_path, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    from diffedit.worker import default_loader

    w = make_window(default_loader, model_path=str(tmp_path / "no-such-model"))
    qtbot.waitUntil(lambda: w.bridge.state == "failed", timeout=60_000)
    assert w.notice_bar.level == "error" and "no-such-model" in w.notice_bar.label.text()
    start(w)
    wait_done(w, qtbot)
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()


def test_status_counts_text_tokens_not_the_accepted_padding(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    results = []
    seen = []
    w.bridge.jobFinished.connect(lambda _id, r: results.append(r))
    w.controller.progress.connect(lambda p: seen.append(p))
    start(w, steps=6)
    wait_done(w, qtbot)
    assert results, w.notice_bar.label.text()
    text_tokens = len([t for t in results[0].token_ids if t not in (0, 1)]) + 1  # the text and its end token
    mid_run = [p for p in seen if p.tokens_per_forward is not None and p.step < p.total_steps]
    assert mid_run
    # A canvas is mostly padding once settled: counting it would claim up to the whole canvas per forward.
    slack = 16  # the text's length still moves while it settles
    assert all(p.tokens <= text_tokens + slack for p in mid_run), ([p.tokens for p in mid_run], text_tokens)


def test_compile_step_in_the_settings_runs_the_compiled_step(  # type: ignore[no-untyped-def]
    make_window, engine_checkpoint, qtbot: QtBot
) -> None:
    import shutil

    import pytest

    from diffedit.settings import Settings
    from diffedit.worker import default_loader

    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    settings = Settings(compile_step=True)
    w = make_window(default_loader, settings=settings, model_path=str(engine_checkpoint))
    qtbot.waitUntil(lambda: w.bridge.state in ("ready", "failed"), timeout=120_000)
    assert w.bridge.state == "ready", w.bridge.error
    assert "compiled step off" not in w.status.model.text()  # it compiled
    results = []
    w.bridge.jobFinished.connect(lambda _id, r: results.append(r))
    start(w, steps=4)
    wait_done(w, qtbot)
    assert results and results[0].compiled is True
    replacement = normalize_replacement(results[0].text)
    assert w.editor.toPlainText() == DOC[:T0] + replacement + DOC[T1:]
