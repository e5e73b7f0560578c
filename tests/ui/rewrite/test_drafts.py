"""Draft Sections in the window: end to end on the demo model, and Skip / Redraft / the dialog on the fake."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diffedit.document.blocks import parse_blocks
from diffedit.document.drafts import sections
from diffedit.ui.main_window import MainWindow
from diffedit.ui.rewrite.draft_controller import DraftOptions
from diffedit.ui.rewrite.history_dock import entry_label
from tests.ui.conftest import WindowFactory
from tests.ui.fake_engine import FakeEngine, fake_loader

OUTLINE = """# Field guide

## Why

- the problem in one line

## How

Explain the steps in order.

## Next steps
"""
HEADINGS_AND_NOTES = [b.text(OUTLINE) for b in parse_blocks(OUTLINE)]


def _draft(w: MainWindow, steps: int = 3, blocks: int = 1, length: str = "short") -> DraftOptions:
    w.editor.setPlainText(OUTLINE)
    w.editor.document().setModified(False)
    chosen = tuple(s for s in sections(OUTLINE) if s.drafted_by_default)
    options = DraftOptions(chosen, blocks, length, steps)
    assert w.drafts.start(options)
    return options


def _drafted(text: str) -> list[str]:
    return [b.text(text) for b in parse_blocks(text) if b.text(text) not in HEADINGS_AND_NOTES]


def test_drafting_fills_each_section_one_undo_step_per_block(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    frames_seen: list[int] = []
    w.controller.progress.connect(lambda p: frames_seen.append(p.step))
    _draft(w)
    assert w.draft_bar.isVisible() and "Why" in w.draft_bar.label.text()
    qtbot.waitUntil(lambda: not w.drafts.running, timeout=180_000)
    text = w.editor.exact_text()
    found = sections(text)
    drafted = _drafted(text)
    assert len(drafted) == 3, w.notice_bar.label.text()
    assert [s.blocks[-1].text(text) for s in found[1:]] == drafted  # each empty section filled, in order
    assert [t for t in (b.text(text) for b in parse_blocks(text)) if t not in drafted] == HEADINGS_AND_NOTES
    assert frames_seen, "blocks animate in place"
    assert not w.draft_bar.isVisible() and "Drafted 3 blocks" in w.notice_bar.label.text()
    assert len(w.controller.history) == 3 and not w.review_bar.isVisible()
    # the History names each drafted block by its section, not by the long generated instruction
    labels = [entry_label(e) for e in w.controller.history.entries]
    assert [lab.splitlines()[0].split(" · ")[-1] for lab in labels] == [
        "draft of “Why”", "draft of “How”", "draft of “Next steps”"
    ]  # fmt: skip
    # One undo step per block: Ctrl+Z walks back block by block, to the outline exactly.
    doc = w.editor.document()
    for n in (2, 1, 0):
        w.editor.undo()
        assert len(_drafted(w.editor.exact_text())) == n
    assert w.editor.exact_text() == OUTLINE and not doc.isUndoAvailable()


def test_stopping_mid_draft_keeps_only_committed_blocks(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    _draft(w, steps=400)  # long runs: the second block is surely still denoising when Esc arrives
    qtbot.waitUntil(lambda: w.drafts.committed == 1 and w.controller.running, timeout=300_000)
    qtbot.waitUntil(lambda: w.controller.latest_paint is not None, timeout=60_000)
    first = w.editor.exact_text()
    qtbot.keyClick(w.editor, Qt.Key.Key_Escape)
    assert not w.drafts.running and not w.controller.running
    assert "Draft stopped: 1 drafted block kept" in w.notice_bar.label.text()
    qtbot.wait(300)  # a late result of the stopped block must not land
    assert w.editor.exact_text() == first and len(_drafted(first)) == 1
    w.editor.undo()
    assert w.editor.exact_text() == OUTLINE and not w.editor.document().isUndoAvailable()


def test_skip_and_redraft(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine(held=True)
    w = make_window(fake_loader(engine))
    qtbot.waitUntil(lambda: w.bridge.state == "ready")
    _draft(w, steps=2, blocks=2)
    engine.allow(2)  # the first block of "Why" commits
    qtbot.waitUntil(lambda: w.drafts.committed == 1 and w.controller.running)
    w.draft_bar.redraft_button.click()  # takes the committed block back and starts "Why" over
    qtbot.waitUntil(lambda: w.controller.running)
    assert w.editor.exact_text() == OUTLINE and w.drafts.committed == 0
    assert "block 1 of 2" in w.draft_bar.label.text() and "Why" in w.draft_bar.label.text()
    w.draft_bar.skip_button.click()  # "Why" stays as it is; on to "How"
    qtbot.waitUntil(lambda: "How" in w.draft_bar.label.text())
    engine.release()
    qtbot.waitUntil(lambda: not w.drafts.running)
    text = w.editor.exact_text()
    why, how, nxt = sections(text)[1:]
    assert len(why.blocks) == 1 and len(how.blocks) == 3 and len(nxt.blocks) == 2
    for _ in range(4):  # one undo step per committed block
        assert w.editor.document().isUndoAvailable()
        w.editor.undo()
    assert w.editor.exact_text() == OUTLINE and not w.editor.document().isUndoAvailable()


def test_the_dialog_ticks_the_empty_sections_and_starts_the_draft(
    make_window: WindowFactory, qtbot: QtBot
) -> None:
    engine = FakeEngine(held=True)
    w = make_window(fake_loader(engine), text=OUTLINE)
    dialog = w.draft_sections()
    ticked = [dialog.list.item(i).checkState() == Qt.CheckState.Checked for i in range(dialog.list.count())]
    assert ticked == [False, True, True, True]
    dialog.list.item(2).setCheckState(Qt.CheckState.Unchecked)
    dialog.blocks.setValue(2)
    dialog.accept()
    assert w.drafts.running and [s.title for s in w.drafts.options.sections] == ["Why", "Next steps"]
    assert w.drafts.options.blocks_per_section == 2
    w.stop_run()
    assert not w.drafts.running and w.editor.exact_text() == OUTLINE
