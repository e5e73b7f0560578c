"""Rewrites through the real window and worker thread, with a fast fake engine.

Each test drives the app as a user would (selection, shortcuts, buttons) and checks the bytes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diffedit.document.blocks import parse_blocks
from diffedit.document.shapes import render, shape_of
from diffedit.engine.types import EngineError, RewriteResult
from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from tests.ui.conftest import DOC, TARGET, WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine, fake_loader, fake_rewrite_text


def run_to_end(w: MainWindow, qtbot: QtBot, timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: not w.controller.running, timeout=timeout)


def held_window(make_window: WindowFactory) -> tuple[MainWindow, FakeEngine]:
    engine = FakeEngine(held=True)
    return make_window(fake_loader(engine)), engine


def step_once(w: MainWindow, engine: FakeEngine, qtbot: QtBot) -> None:
    """Let the held engine make exactly one more step and wait until the UI painted it."""
    target = engine.steps_done + 1
    engine.allow(1)
    qtbot.waitUntil(
        lambda: w.controller.latest_paint is not None and w.controller.latest_paint.step == target,
        timeout=5000,
    )


def test_selection_snaps_to_whole_blocks_and_is_marked(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, _ = fake_window
    start, _end = select_text(w, "paragraph is the")
    t0 = DOC.index(TARGET)
    qtbot.waitUntil(lambda: w.editor.target == (t0, t0 + len(TARGET)), timeout=2000)
    marks = w.editor.extraSelections()
    assert any(m.cursor.selectionStart() == t0 and m.cursor.selectionEnd() == t0 + len(TARGET) for m in marks)
    assert start > t0


def test_ctrl_r_rewrites_only_the_target_in_one_undo_step(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, engine = fake_window
    w.rewrite_bar.steps.setValue(4)
    select_text(w, "second paragraph")
    w.editor.setFocus()
    assert not w.editor.document().isUndoAvailable()
    qtbot.keyClick(w.editor, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert w.controller.running
    run_to_end(w, qtbot)
    job = engine.jobs[-1]
    assert job.request.target == TARGET and job.settings.steps == 4
    new = fake_rewrite_text(TARGET, "", engine.results[-1].seed)
    t0 = DOC.index(TARGET)
    assert w.editor.toPlainText() == DOC[:t0] + new + DOC[t0 + len(TARGET) :]
    assert w.review_bar.isVisible()
    qtbot.keyClick(w.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.editor.toPlainText() == DOC
    assert not w.editor.document().isUndoAvailable()  # the rewrite was exactly one undo step
    redo = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(w.editor, Qt.Key.Key_Z, redo)
    assert w.editor.toPlainText() == DOC[:t0] + new + DOC[t0 + len(TARGET) :]


def test_frames_never_touch_the_document(make_window: WindowFactory, qtbot: QtBot) -> None:
    w, engine = held_window(make_window)
    w.rewrite_bar.steps.setValue(6)
    select_text(w, TARGET)
    assert w.rewrite()
    for _ in range(3):
        step_once(w, engine, qtbot)
        assert w.editor.toPlainText() == DOC
        assert not w.editor.document().isModified()
        assert w.editor.document().availableUndoSteps() == 0
        assert w.status.step.text() == f"Step {engine.steps_done}/6"
    # What is drawn is the canvas, inside the target's first block.
    layout = w.editor.document().findBlock(DOC.index(TARGET)).layout()
    assert layout.preeditAreaText()
    engine.release()
    run_to_end(w, qtbot)
    assert not layout.preeditAreaText()


def test_escape_stops_and_restores_the_original(make_window: WindowFactory, qtbot: QtBot) -> None:
    w, engine = held_window(make_window)
    select_text(w, TARGET)
    w.rewrite()
    step_once(w, engine, qtbot)
    w.editor.setFocus()
    qtbot.keyClick(w.editor, Qt.Key.Key_Escape)
    assert not w.controller.running
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()
    assert all(b.isVisible() for b in _blocks(w))
    assert not any(b.layout().preeditAreaText() for b in _blocks(w))
    assert "unchanged" in w.notice_bar.label.text()
    engine.release()
    qtbot.wait(50)
    assert w.editor.toPlainText() == DOC


def test_stop_button(make_window: WindowFactory, qtbot: QtBot) -> None:
    w, engine = held_window(make_window)
    select_text(w, TARGET)
    w.rewrite()
    step_once(w, engine, qtbot)
    assert w.editor.document().findBlock(DOC.index(TARGET)).layout().preeditAreaText()  # the canvas shows
    assert w.rewrite_bar.stop_button.isEnabled()
    qtbot.mouseClick(w.rewrite_bar.stop_button, Qt.MouseButton.LeftButton)
    assert not w.controller.running and not w.rewrite_bar.stop_button.isEnabled()
    assert _canvas_traces(w) == []  # the canvas is gone
    assert "unchanged" in w.notice_bar.label.text()
    qtbot.waitUntil(lambda: w.bridge.current_job is None, timeout=5000)  # the engine was told to stop
    steps = engine.steps_done
    engine.release()
    qtbot.wait(100)
    assert engine.steps_done == steps  # and did stop: no step after the cancel
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()


def test_typing_elsewhere_is_kept_and_the_target_follows(make_window: WindowFactory, qtbot: QtBot) -> None:
    w, engine = held_window(make_window)
    w.rewrite_bar.steps.setValue(3)
    select_text(w, TARGET)
    w.rewrite()
    step_once(w, engine, qtbot)
    c = w.editor.textCursor()
    c.setPosition(len("# Title"))
    w.editor.setTextCursor(c)
    qtbot.keyClicks(w.editor, " and more")  # before the target
    c.movePosition(c.MoveOperation.End)
    w.editor.setTextCursor(c)
    qtbot.keyClicks(w.editor, "Tail.")  # after it
    assert w.controller.running
    engine.release()
    run_to_end(w, qtbot)
    new = fake_rewrite_text(TARGET, "", engine.results[-1].seed)
    expected = DOC.replace("# Title", "# Title and more").replace(TARGET, new) + "Tail."
    assert w.editor.toPlainText() == expected
    w.editor.undo()  # the rewrite
    assert w.editor.toPlainText() == DOC.replace("# Title", "# Title and more") + "Tail."


def test_an_edit_inside_the_target_cancels(make_window: WindowFactory, qtbot: QtBot) -> None:
    w, engine = held_window(make_window)
    select_text(w, TARGET)
    w.rewrite()
    step_once(w, engine, qtbot)
    c = w.editor.textCursor()
    c.setPosition(DOC.index(TARGET) + 4)
    w.editor.setTextCursor(c)
    qtbot.keyClicks(w.editor, "X")
    assert not w.controller.running
    assert w.editor.toPlainText() == DOC.replace("The second", "The Xsecond")
    assert "cancelled" in w.notice_bar.label.text()
    assert all(b.isVisible() for b in _blocks(w))
    engine.release()
    qtbot.wait(50)
    assert w.editor.toPlainText() == DOC.replace("The second", "The Xsecond")


def test_engine_failure_leaves_the_text_and_the_app_working(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine(fail_with=EngineError("out of memory on cpu: shorten the selection"))
    w = make_window(fake_loader(engine))
    select_text(w, TARGET)
    w.rewrite()
    run_to_end(w, qtbot)
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()
    assert w.notice_bar.level == "error" and "out of memory" in w.notice_bar.label.text()
    engine.fail_with = None
    w.rewrite()
    run_to_end(w, qtbot)
    assert w.editor.toPlainText() != DOC


def test_missing_model_is_a_clear_message(make_window: WindowFactory, qtbot: QtBot) -> None:
    w = make_window(fake_loader(fail="no DiffusionGemma checkpoint in /missing"))
    qtbot.waitUntil(lambda: w.bridge.state == "failed", timeout=5000)
    assert "no DiffusionGemma checkpoint" in w.notice_bar.label.text()
    assert "unavailable" in w.status.model.text()
    select_text(w, TARGET)
    w.rewrite()
    run_to_end(w, qtbot)
    assert w.editor.toPlainText() == DOC
    assert "no DiffusionGemma checkpoint" in w.notice_bar.label.text()


def test_keep_undo_try_again(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine(seeds=[5, 105])  # the seeds the engine draws: fixed, and equal modulo 100
    w = make_window(fake_loader(engine))
    w.rewrite_bar.steps.setValue(2)
    select_text(w, TARGET)
    w.rewrite()
    run_to_end(w, qtbot)
    first = w.editor.toPlainText()
    assert first == DOC.replace(TARGET, fake_rewrite_text(TARGET, "", 5))
    qtbot.mouseClick(w.review_bar.retry_button, Qt.MouseButton.LeftButton)
    assert w.controller.running and w.editor.toPlainText() == DOC
    run_to_end(w, qtbot)
    assert [j.settings.seed for j in engine.jobs] == [None, None]  # a new seed each time, drawn once
    assert [entry.seed for entry in w.controller.history] == [5, 105]
    assert w.editor.toPlainText() == DOC.replace(TARGET, fake_rewrite_text(TARGET, "", 105))
    assert w.editor.toPlainText() not in (DOC, first)
    qtbot.mouseClick(w.review_bar.undo_button, Qt.MouseButton.LeftButton)
    assert w.editor.toPlainText() == DOC and not w.review_bar.isVisible()
    w.editor.redo()
    qtbot.mouseClick(w.review_bar.keep_button, Qt.MouseButton.LeftButton)
    assert not w.review_bar.isVisible()


def test_instruction_strength_and_steps_go_to_the_job(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, engine = fake_window
    select_text(w, TARGET)
    w.editor.setFocus()
    qtbot.keyClick(w.editor, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert w.rewrite_bar.instruction.hasFocus()
    qtbot.keyClicks(w.rewrite_bar.instruction, "shorter")
    w.rewrite_bar.strength.setValue(40)
    w.rewrite_bar.steps.setValue(3)
    qtbot.keyClick(w.rewrite_bar.instruction, Qt.Key.Key_Return)
    run_to_end(w, qtbot)
    job = engine.jobs[-1]
    assert job.request.instruction == "shorter" and job.settings.strength == 0.4 and job.settings.steps == 3
    assert "[shorter]" in w.editor.toPlainText()


def test_free_form_switch_changes_the_job_and_is_kept(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, engine = fake_window
    box = w.rewrite_bar.free_form
    assert not box.isChecked() and not w.act_free_form.isChecked()  # block-true by default
    assert "kind, markers and length" in box.toolTip()
    select_text(w, TARGET)
    w.act_rewrite.trigger()
    run_to_end(w, qtbot)
    assert engine.jobs[-1].templates is not None  # each block keeps its shape
    w.controller.undo()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    assert box.isChecked() and w.act_free_form.isChecked()  # the menu mirrors the bar
    assert Settings.load().free_form  # kept at once, not only when the window closes
    select_text(w, TARGET)
    w.act_rewrite.trigger()
    run_to_end(w, qtbot)
    assert engine.jobs[-1].templates is None  # the model may restructure
    w.controller.undo()
    w.act_free_form.trigger()  # the menu switches it back, and the bar follows
    assert not box.isChecked() and not Settings.load().free_form
    select_text(w, TARGET)
    w.act_rewrite.trigger()
    run_to_end(w, qtbot)
    assert engine.jobs[-1].templates is not None


def test_toolbar_and_context_menu_offer_rewrite(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, _ = fake_window
    assert w.act_rewrite in w.findChild(type(w.addToolBar("x")), "mainToolBar").actions()
    assert w.act_rewrite in w.editor.context_actions
    select_text(w, TARGET)
    w.act_rewrite.trigger()
    run_to_end(w, qtbot)
    assert w.editor.toPlainText() != DOC


def test_history_records_jumps_and_replays(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, _ = fake_window
    w.rewrite_bar.steps.setValue(5)
    select_text(w, TARGET)
    w.rewrite()
    run_to_end(w, qtbot)
    after = w.editor.toPlainText()
    assert w.history_dock.list.count() == 1 and "block 3 ·" in w.history_dock.list.item(0).text()
    entry = w.controller.history[0]
    assert 2 <= len(entry.frames) <= 96 and entry.frames[-1].final
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.Start)
    w.controller.jump_to(0)
    assert w.editor.textCursor().selectedText() == entry.replacement
    assert w.controller.replay(0)
    assert w.controller.canvas.active
    qtbot.waitUntil(lambda: not w.controller.replaying, timeout=5000)
    assert w.editor.toPlainText() == after
    w.editor.undo()
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()


def test_astral_characters_before_the_target(make_window: WindowFactory, qtbot: QtBot) -> None:
    doc = "# 😀 Emoji title 😀\n\nRewrite 😀 this one.\n\nKeep 😀 this.\n"
    w = make_window(text=doc)
    c = w.editor.textCursor()
    qt_pos = len(doc[: doc.index("this one")].encode("utf-16-le")) // 2
    c.setPosition(qt_pos)
    w.editor.setTextCursor(c)
    w.rewrite()
    run_to_end(w, qtbot)
    text = w.editor.toPlainText()
    assert text.startswith("# 😀 Emoji title 😀\n\n") and text.endswith("\n\nKeep 😀 this.\n")
    assert "Rewrite 😀 this one." not in text
    w.editor.undo()
    assert w.editor.toPlainText() == doc


def _blocks(w: MainWindow) -> list:  # type: ignore[type-arg]
    out = []
    b = w.editor.document().firstBlock()
    while b.isValid():
        out.append(b)
        b = b.next()
    return out


# -- promises the mutation audit found unguarded -------------------------------------------------------

MULTI_FIRST = "First paragraph stays as it is."
MULTI_LAST = "- another item"


def _select_span(w: MainWindow, first: str, last: str) -> tuple[int, int]:
    text = w.editor.toPlainText()
    start, end = text.index(first), text.index(last) + len(last)
    c = w.editor.textCursor()
    c.setPosition(start)
    c.setPosition(end, c.MoveMode.KeepAnchor)
    w.editor.setTextCursor(c)
    return start, end


def _canvas_traces(w: MainWindow) -> list[str]:
    """Blocks left hidden or still carrying a pre-edit canvas: after a run there must be none."""
    out = []
    for b in _blocks(w):
        if not b.isVisible():
            out.append(f"hidden: {b.text()!r}")
        if b.layout().preeditAreaText():
            out.append(f"canvas in: {b.text()!r}")
    return out


def test_a_target_of_several_paragraphs_is_shown_again_after_stop(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w, engine = held_window(make_window)
    _select_span(w, MULTI_FIRST, MULTI_LAST)
    assert w.rewrite()
    step_once(w, engine, qtbot)
    hidden = [b.text() for b in _blocks(w) if not b.isVisible()]
    assert hidden == ["", TARGET, "", "- a list item", MULTI_LAST]  # the canvas stands in for them
    w.controller.stop()
    assert _canvas_traces(w) == []
    assert w.editor.toPlainText() == DOC


def test_a_target_of_several_paragraphs_is_shown_again_after_commit(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    w, engine = held_window(make_window)
    start, end = _select_span(w, MULTI_FIRST, MULTI_LAST)
    assert w.rewrite()
    step_once(w, engine, qtbot)
    assert any(not b.isVisible() for b in _blocks(w))
    engine.release()
    run_to_end(w, qtbot)
    # block by block: each block's text rewritten on its own, its markers and the gaps between blocks kept
    seed, new, done = engine.results[-1].seed, "", start
    blocks = [b for b in parse_blocks(DOC) if start <= b.start and b.end <= end]
    assert len(blocks) > 1 and {b.kind for b in blocks} == {"paragraph", "list item"}
    for b in blocks:
        shape = shape_of(b.text(DOC))
        new += DOC[done : b.start] + render(
            shape, [fake_rewrite_text(o, "", seed) for o in shape.originals()]
        )
        done = b.end
    assert w.editor.toPlainText() == DOC[:start] + new + DOC[done:]
    assert _canvas_traces(w) == []


def test_an_edit_before_a_running_target_moves_the_canvas(make_window: WindowFactory, qtbot: QtBot) -> None:
    w, engine = held_window(make_window)
    select_text(w, TARGET)
    assert w.rewrite()
    step_once(w, engine, qtbot)
    inserted = (
        "Inserted while the model runs, long enough to push the target well past its old place.\n\n" * 3
    )
    c = w.editor.textCursor()
    c.setPosition(0)
    c.insertText(inserted)  # before the target, before the next frame arrives
    assert w.controller.running
    span = w.controller.canvas.span
    assert span is not None and w.editor.text_range(*span) == TARGET  # the canvas still covers the target
    w.editor.setFocus()
    qtbot.keyClick(w.editor, Qt.Key.Key_Escape)
    assert _canvas_traces(w) == []  # Stop swept the canvas where it now is
    assert w.editor.toPlainText() == inserted + DOC


def test_a_stale_result_never_reaches_the_document(make_window: WindowFactory, qtbot: QtBot) -> None:
    """The controller's own job-id check: a result for another job than the running one is dropped."""
    w, engine = held_window(make_window)
    select_text(w, TARGET)
    assert w.rewrite()
    step_once(w, engine, qtbot)
    session = w.controller.session
    assert session is not None
    stale = engine.jobs[-1].job_id - 1
    result = RewriteResult(stale, "STALE TEXT", (1, 2), 2, 1, 1.0, 1.0, 1.0, 0.1, 7, "fake-dg")
    w.bridge.jobFinished.emit(stale, result)  # as if the bridge had let a superseded job's result through
    w.bridge.jobFailed.emit(stale, "a superseded job failed")
    assert w.controller.running and w.controller.session is session
    assert w.editor.toPlainText() == DOC and "STALE" not in w.editor.toPlainText()
    engine.release()
    run_to_end(w, qtbot)
    assert "STALE" not in w.editor.toPlainText() and w.editor.toPlainText() != DOC


def test_typing_just_before_a_rewrite_stays_its_own_undo_step(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, _ = fake_window
    w.rewrite_bar.steps.setValue(2)
    w.editor.moveCursor(w.editor.textCursor().MoveOperation.End)
    w.editor.setFocus()
    qtbot.keyClicks(w.editor, "Typed.")
    qtbot.keyClick(w.editor, Qt.Key.Key_Return)  # Qt keeps a new line as an edit block of its own
    typed = DOC + "Typed.\n"
    select_text(w, TARGET)
    qtbot.keyClick(w.editor, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    run_to_end(w, qtbot)
    assert w.editor.toPlainText() not in (DOC, typed)
    w.editor.undo()  # one step: the rewrite, and only the rewrite
    assert w.editor.toPlainText() == typed
    while w.editor.document().isUndoAvailable():
        w.editor.undo()
    assert w.editor.toPlainText() == DOC


def test_a_committed_rewrite_is_in_the_recovery_file_at_once(fake_window, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    w, _ = fake_window
    assert w.documents.autosaver._delay_ms >= 1000  # the debounce alone would not have written it yet
    w.rewrite_bar.steps.setValue(2)
    select_text(w, TARGET)
    assert w.rewrite()
    run_to_end(w, qtbot)
    rewritten = w.editor.toPlainText()
    assert rewritten != DOC
    assert [e.text for e in w.documents.store.live_entries()] == [rewritten]


def test_a_setting_the_engine_refuses_is_its_message_and_nothing_starts(fake_window) -> None:  # type: ignore[no-untyped-def]
    from diffedit.ui.rewrite.controller import RunOptions

    w, engine = fake_window
    select_text(w, TARGET)
    assert not w.controller.start(RunOptions(strength=0.0, steps=4))
    assert not w.controller.running and engine.jobs == []
    assert w.notice_bar.level == "error" and "strength" in w.notice_bar.label.text()
    assert w.editor.toPlainText() == DOC
