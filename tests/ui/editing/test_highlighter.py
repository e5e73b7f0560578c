"""Highlighting stays bounded per event on long documents full of fences, and stays correct after edits."""

from __future__ import annotations

import random

import pytest
from PySide6.QtGui import QTextCharFormat, QTextCursor, QTextDocument
from pytestqt.qtbot import QtBot

from diffedit.ui.editing.editor import MarkdownEditor
from diffedit.ui.editing.highlighter import MarkdownHighlighter, end_state, in_fence, seen_state
from diffedit.ui.editing.theme import DARK
from tests.ui import fake_engine
from tests.ui.conftest import WindowFactory

UNIT = "## Section\n\nSome *words* and `code`.\n\n- an item\n\n```python\nprint('hi')\n```\n\n"
TARGET = "This is the paragraph that gets rewritten."


def fenced_document(units: int) -> str:
    half = UNIT * (units // 2)
    return half + TARGET + "\n\n" + half


Snapshot = list[tuple[int, int, list[tuple[int, int, QTextCharFormat]]]]


def snapshot(doc: QTextDocument) -> Snapshot:
    """Per block: end state, the previous block's end state it saw, and its formats."""
    out: Snapshot = []
    block = doc.firstBlock()
    while block.isValid():
        state = block.userState()
        assert state >= 0, f"block {block.blockNumber()} never highlighted"
        ranges = [(r.start, r.length, QTextCharFormat(r.format)) for r in block.layout().formats()]
        out.append((end_state(state), seen_state(state), ranges))
        block = block.next()
    return out


def reference(text: str) -> Snapshot:
    """What one full highlighting pass over ``text`` gives, in a fresh document."""
    editor = MarkdownEditor()
    editor.setPlainText(text)
    editor.highlighter.finish_pending()
    return snapshot(editor.document())


def shown_editor(qtbot: QtBot, text: str) -> MarkdownEditor:
    editor = MarkdownEditor()
    qtbot.addWidget(editor)
    editor.resize(700, 500)
    editor.show()
    qtbot.waitExposed(editor)
    editor.setPlainText(text)
    qtbot.waitUntil(lambda: not editor.highlighter.pending, timeout=20_000)
    return editor


def counts(h: MarkdownHighlighter) -> int:
    return h.blocks_highlighted + h.blocks_deferred


def replace(editor: MarkdownEditor, start: int, end: int, text: str) -> None:
    """An edit like the commit of a rewrite: one edit block."""
    c = QTextCursor(editor.document())
    c.beginEditBlock()
    c.setPosition(start)
    c.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
    c.insertText(text)
    c.endEditBlock()


def test_a_balanced_commit_among_many_fences_touches_only_its_own_blocks(qtbot: QtBot) -> None:
    text = fenced_document(2000)  # ~18,000 blocks, 2,000 fenced code blocks after the target
    editor = shown_editor(qtbot, text)
    h = editor.highlighter
    start = text.index(TARGET)
    replacement = "New intro.\n\n```\ncode inside\n```\n\nA closing line."
    before = counts(h)
    replace(editor, start, start + len(TARGET), replacement)
    assert counts(h) - before <= replacement.count("\n") + 3
    assert not h.pending
    assert snapshot(editor.document()) == reference(editor.toPlainText())


def test_an_edit_that_flips_every_later_fence_is_bounded_then_caught_up(qtbot: QtBot) -> None:
    text = fenced_document(2000)
    editor = shown_editor(qtbot, text)
    h = editor.highlighter
    h.pass_block_limit = 300  # deterministic bound (the time budget applies as well)
    h.pass_budget_s = 10.0
    start = text.index(TARGET)
    blocks = editor.document().blockCount()
    for edit in ("``````\n", ""):  # open a fence no later line closes: the rest becomes code; then undo it
        highlighted = h.blocks_highlighted
        if edit:
            replace(editor, start, start, edit)
        else:
            editor.document().undo()
        assert h.blocks_highlighted - highlighted <= 302  # not the ~9,000 blocks after the edit
        assert h.pending  # the rest waits for idle time
        qtbot.waitUntil(lambda: not h.pending, timeout=20_000)
        assert h.blocks_highlighted - highlighted >= blocks // 2 - 10
        assert snapshot(editor.document()) == reference(editor.toPlainText())
    assert not in_fence(editor.document().lastBlock().userState())


def test_idle_catch_up_runs_in_short_slices(qtbot: QtBot) -> None:
    editor = shown_editor(qtbot, fenced_document(2000))
    h = editor.highlighter
    h.pass_block_limit = 500  # per pass and per idle slice, whatever the machine's speed
    h.idle_slice_s = 10.0
    blocks = editor.document().blockCount()
    replace(editor, 0, 0, "``````\n")  # the whole document becomes code
    slices = 0
    while h.pending and slices < 10_000:
        h._catch_up()
        slices += 1
    assert blocks // 501 <= slices <= blocks // 500 + 2
    assert in_fence(editor.document().lastBlock().previous().userState())  # all code to the end


def test_highlighting_stays_correct_through_random_edits(qtbot: QtBot) -> None:
    rng = random.Random(7)
    editor = shown_editor(qtbot, fenced_document(60))
    h = editor.highlighter
    h.pass_block_limit = 5  # defer almost everything, to exercise the stale ranges hard
    pieces = ["```\n", "~~~~\n", "``````\n", "```python\n", "# Title\n", "text *em*\n", "\n", "- item\n"]
    for step in range(120):
        doc_len = editor.document().characterCount() - 1
        a = rng.randrange(doc_len + 1)
        b = min(doc_len, a + rng.choice([0, 0, 1, 5, 40]))
        replace(editor, a, b, rng.choice(pieces) if rng.random() < 0.8 else "")
        if step % 3 == 0:
            h._catch_up()  # sometimes only one slice of catching up before the next edit
        if step % 10 == 0:
            editor.document().undo()
    qtbot.waitUntil(lambda: not h.pending, timeout=20_000)
    assert snapshot(editor.document()) == reference(editor.toPlainText())


def test_a_theme_change_rehighlights_in_idle_time(qtbot: QtBot) -> None:
    editor = shown_editor(qtbot, fenced_document(200))
    editor.set_theme(DARK)
    qtbot.waitUntil(lambda: not editor.highlighter.pending, timeout=20_000)
    heading = editor.document().firstBlock()
    formats = heading.layout().formats()
    assert formats and formats[0].format.foreground().color().name() == DARK.heading.lower()
    assert snapshot(editor.document()) == reference_with_theme(editor.toPlainText())


def reference_with_theme(text: str) -> Snapshot:
    editor = MarkdownEditor(theme=DARK)
    editor.setPlainText(text)
    editor.highlighter.finish_pending()
    return snapshot(editor.document())


@pytest.mark.parametrize(
    "replacement",
    [
        "Plain rewritten words.",
        "Intro\n\n```\nan unclosed fence the model opened",  # the commit closes it
    ],
)
def test_frames_and_the_commit_rehighlight_only_the_target(
    make_window: WindowFactory, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, replacement: str
) -> None:
    monkeypatch.setattr(fake_engine, "fake_rewrite_text", lambda target, instruction="", seed=0: replacement)
    text = fenced_document(2000)
    w = make_window(text=text)
    h = w.editor.highlighter
    qtbot.waitUntil(lambda: w.bridge.state == "ready" and not h.pending, timeout=20_000)
    start = text.index(TARGET)
    per_frame: list[int] = []
    show = w.controller.canvas.show

    def counting_show(*args: object) -> None:
        before = counts(h)
        show(*args)  # type: ignore[arg-type]
        per_frame.append(counts(h) - before)

    w.controller.canvas.show = counting_show  # type: ignore[method-assign]
    before = counts(h)
    with qtbot.waitSignal(w.controller.committed, timeout=10_000):
        assert w.controller.start(span=(start, start + len(TARGET)))
    assert per_frame and max(per_frame) == 1  # a frame re-highlights the canvas host, nothing else
    assert counts(h) - before <= len(per_frame) + replacement.count("\n") + 10
    assert not h.pending
    assert snapshot(w.editor.document()) == reference(w.editor.toPlainText())
