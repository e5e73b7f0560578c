"""Batched rewrites in the window: the held shape in the first frame, Rewrite > Alternatives (fake engine,
fast), and a multi-block selection rewritten as one batch by the real demo model (one undo step)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diffedit.document.blocks import parse_blocks
from diffedit.engine.types import RewriteResult
from diffedit.ui.main_window import MainWindow
from diffedit.ui.rewrite.canvas_renderer import PaintKind
from tests.ui.conftest import DOC, TARGET, WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine, fake_loader, fake_rewrite_text

SHAPES = "## A heading here\n\n- a list item\n\n```python\nprint('hello')\n```\n"


def _kinds_at(paint_text: str, runs: tuple[tuple[int, int, PaintKind], ...], needle: str) -> set[PaintKind]:
    start = paint_text.index(needle)
    return {kind for s, e, kind in runs for j in range(start, start + len(needle)) if s <= j < e}


def test_the_held_shape_shows_in_the_first_frame_before_any_step(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    engine = FakeEngine(held=True)  # never steps until allowed: what shows is the first frame
    w = make_window(fake_loader(engine), text=SHAPES)
    w.editor.selectAll()
    assert w.rewrite()
    paint = w.controller.canvas.paint
    assert paint is not None and paint.step == 0 and engine.steps_done == 0
    for held in ("## ", "- ", "```python\n", "\n```"):
        assert _kinds_at(paint.text, paint.runs, held) == {PaintKind.TEXT}, held
    assert PaintKind.NOISE in _kinds_at(paint.text, paint.runs, paint.text[3:8])  # the title is noise
    assert paint.text.startswith("## ") and "A heading" not in paint.text
    w.controller.stop(quiet=True)
    engine.release()
    assert w.editor.toPlainText() == SHAPES


def test_alternatives_animate_side_by_side_and_picking_one_is_one_undo_step(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    engine = FakeEngine(step_delay_s=0.02)
    w = make_window(fake_loader(engine))
    assert not w.editor.document().isUndoAvailable()
    select_text(w, TARGET)
    w.rewrite_bar.steps.setValue(6)
    dialog = w.alternatives(3)
    assert dialog is not None and len(dialog.columns) == 3
    seed = dialog.job.settings.seed
    assert seed is not None
    assert [c.label.text() for c in dialog.columns] == [
        f"Candidate {i + 1} · seed {seed + i}" for i in range(3)
    ]
    steps_seen: set[int] = set()
    qtbot.waitUntil(
        lambda: steps_seen.add(dialog.columns[2].step) or len(steps_seen - {0}) >= 2, timeout=10_000
    )
    assert w.editor.toPlainText() == DOC  # frames never touch the document
    qtbot.waitUntil(lambda: dialog.columns[0].pick.isEnabled(), timeout=10_000)
    texts = [c.view.toPlainText() for c in dialog.columns]
    assert texts == [fake_rewrite_text(TARGET, "", seed + i) for i in range(3)]
    assert len(engine.jobs) == 3  # the fake runs the three seeds; the real engine batches them
    qtbot.mouseClick(dialog.columns[1].pick, Qt.MouseButton.LeftButton)
    assert w.editor.toPlainText() == DOC.replace(TARGET, texts[1])
    # the pick is in the History like a rewrite, and the text before it is kept for recovery
    (entry,) = w.controller.history.entries
    assert entry.what == "alternative 2 of 3" and entry.seed == seed + 1
    assert entry.original == TARGET and entry.replacement == texts[1]
    assert w.documents.snapshots.before_rewrite == DOC
    w.editor.undo()
    assert w.editor.toPlainText() == DOC
    assert not w.editor.document().isUndoAvailable()  # the pick was exactly one undo step
    assert id(entry) in w.controller.undone  # and the History marks it undone


def test_cancelling_alternatives_leaves_the_text_untouched(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine(step_delay_s=0.02)
    w = make_window(fake_loader(engine))
    assert not w.editor.document().isUndoAvailable()
    select_text(w, TARGET)
    dialog = w.alternatives(2)
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.columns[0].step > 0, timeout=10_000)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
    qtbot.wait(200)
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()
    assert not w.editor.document().isUndoAvailable()


def test_a_multi_block_rewrite_is_one_batch_keeps_its_blocks_and_is_one_undo_step(
    real_window: MainWindow, qtbot: QtBot
) -> None:
    """On the demo model: three blocks of different kinds selected, Ctrl+R, one batched run."""
    w = real_window
    text = "# Title\n\nA first short paragraph.\n\n## Part two\n\n- an item here\n\nEnd.\n"
    w.editor.setPlainText(text)
    w.editor.document().setModified(False)
    blocks = parse_blocks(text)
    c = w.editor.textCursor()
    c.setPosition(blocks[1].start)
    c.setPosition(blocks[3].end, c.MoveMode.KeepAnchor)
    w.editor.setTextCursor(c)
    w.rewrite_bar.steps.setValue(8)
    assert not w.editor.document().isUndoAvailable()
    committed: list[object] = []
    w.controller.committed.connect(committed.append)
    results: list[RewriteResult] = []
    w.bridge.jobFinished.connect(lambda _id, result: results.append(result))
    assert w.rewrite()
    qtbot.waitUntil(lambda: bool(committed), timeout=120_000)
    new = w.editor.toPlainText()
    assert new != text
    assert results[-1].batched_rows == 3  # the three blocks were denoised as one batch
    assert [b.kind for b in parse_blocks(new)] == [b.kind for b in blocks]
    w.editor.undo()
    assert w.editor.toPlainText() == text
    assert not w.editor.document().isUndoAvailable()  # one batch, one undo step
