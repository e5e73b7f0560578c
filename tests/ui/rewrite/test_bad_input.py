"""Odd rewrite input in the real window (fast fake engine): nothing is lost, the message is clear."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from diffedit.document.blocks import parse_blocks
from tests.ui.conftest import WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine, fake_loader

FENCED = "Intro paragraph.\n\nText before the code.\n\n```python\nx = 1\n\ny = 2\n```\n\nAfter the code.\n"


def test_an_empty_document_has_nothing_to_rewrite(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine()
    w = make_window(fake_loader(engine), text="")
    assert w.rewrite() is False
    assert not w.controller.running and engine.jobs == []
    assert "Nothing to rewrite" in w.notice_bar.label.text()
    assert w.editor.toPlainText() == "" and not w.editor.document().isUndoAvailable()


def test_a_selection_into_a_fence_takes_the_whole_fence(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine()
    w = make_window(fake_loader(engine), text=FENCED)
    select_text(w, "before the code.\n\n```python\nx = ")  # ends inside the fenced block
    assert w.rewrite()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    target = engine.jobs[-1].request.target
    assert target == "Text before the code.\n\n```python\nx = 1\n\ny = 2\n```"  # never half a fence
    text = w.editor.toPlainText()
    assert text.startswith("Intro paragraph.\n\n") and text.endswith("\n\nAfter the code.\n")
    assert parse_blocks(text)[-1].kind == "paragraph"  # the blocks after the target are untouched
    w.editor.undo()
    assert w.editor.toPlainText() == FENCED


def test_a_document_edited_elsewhere_mid_run_keeps_both(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine(held=True)
    w = make_window(fake_loader(engine), text=FENCED)
    select_text(w, "After the code.")
    assert w.rewrite()
    qtbot.waitUntil(lambda: engine.jobs != [], timeout=5000)
    c = w.editor.textCursor()
    c.setPosition(0)
    c.insertText("New first line.\n\n")  # an edit before the target while the model works
    engine.allow(10_000)
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    text = w.editor.toPlainText()
    assert text.startswith("New first line.\n\nIntro paragraph.\n\n")
    assert "```python\nx = 1\n\ny = 2\n```" in text and "After the code." not in text
