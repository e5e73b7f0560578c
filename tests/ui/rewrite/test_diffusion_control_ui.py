"""Keep Selected Words, Polish Weak Words and the confidence view in the real window.

Keep and polish run end to end on the bundled demo model (each one undo step, restored exactly by undo
and by Stop); the confidence view's responsiveness test uses the fake engine on a 1 MB document.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from diffedit.ui.main_window import MainWindow
from diffedit.ui.rewrite.confidence import tooltip_text
from tests.ui.conftest import DOC, TARGET, WindowFactory, select_text
from tests.ui.fake_engine import FakeEngine, fake_loader

T0 = DOC.index(TARGET)
T1 = T0 + len(TARGET)


def _mark(w: MainWindow, phrase: str) -> None:
    select_text(w, phrase)
    w.act_keep_words.trigger()


def _caret_in_target(w: MainWindow) -> None:
    c = w.editor.textCursor()
    c.setPosition(T0 + 3)
    w.editor.setTextCursor(c)
    w.editor.setFocus()


def test_keep_selected_words_is_one_undo_step_and_the_words_stay(
    real_window: MainWindow, qtbot: QtBot
) -> None:
    w = real_window
    w.rewrite_bar.steps.setValue(3)
    _mark(w, "second paragraph")
    _mark(w, "today")
    assert w.controller.keeps.marks.spans == [(T0 + 4, T0 + 20), (T1 - 6, T1 - 1)]
    _mark(w, "today")  # toggled off again, then on
    _mark(w, "today")
    _caret_in_target(w)
    assert w.rewrite()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    text = w.editor.toPlainText()
    assert text != DOC and text.startswith(DOC[:T0]) and text.endswith(DOC[T1:])
    new = text[T0 : len(text) - len(DOC[T1:])]
    assert "second paragraph" in new and new.index("second paragraph") < new.rindex("today")
    assert len(w.controller.keeps.marks.spans) == 2  # marked again where they landed
    w.editor.undo()
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()


def test_stop_with_kept_words_restores_the_original(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    w.rewrite_bar.steps.setValue(500)
    _mark(w, "second paragraph")
    _caret_in_target(w)
    assert w.rewrite()
    qtbot.waitUntil(
        lambda: w.controller.latest_paint is not None and w.controller.latest_paint.step >= 1, timeout=60_000
    )
    qtbot.keyClick(w.editor, Qt.Key.Key_Escape)
    assert not w.controller.running
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()
    assert w.controller.keeps.marks.spans == [(T0 + 4, T0 + 20)]  # the mark is still there


def test_polish_weak_words_is_one_undo_step(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    w.rewrite_bar.steps.setValue(4)
    _caret_in_target(w)
    assert w.polish()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    text = w.editor.toPlainText()
    assert text.startswith(DOC[:T0]) and text.endswith(DOC[T1:])
    assert "Polished" in w.review_bar.label.text()
    w.editor.undo()
    assert w.editor.toPlainText() == DOC and not w.editor.document().isUndoAvailable()


def test_stop_during_a_polish_restores_the_original(real_window: MainWindow, qtbot: QtBot) -> None:
    w = real_window
    w.rewrite_bar.steps.setValue(500)
    _caret_in_target(w)
    assert w.polish()
    qtbot.keyClick(w.editor, Qt.Key.Key_Escape)  # during the read-only pass or the first steps
    assert not w.controller.running
    qtbot.wait(500)  # a late result of the stopped job must not land
    assert w.editor.toPlainText() == DOC and not w.editor.document().isModified()


def test_a_kept_phrase_in_markup_is_refused_with_a_notice(make_window: WindowFactory) -> None:
    w = make_window(text="# A heading here\n\nText.\n")
    select_text(w, "# A")
    w.act_keep_words.trigger()
    c = w.editor.textCursor()
    c.setPosition(5)
    w.editor.setTextCursor(c)
    assert not w.rewrite()
    assert "Cannot keep" in w.notice_bar.label.text()
    assert w.editor.toPlainText() == "# A heading here\n\nText.\n"


def test_confidence_on_a_1mb_document_never_blocks_typing(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine()
    engine.inspect_delay_s = 0.02
    para = "The quick brown fox jumps over the lazy dog, and the words go on for a while here.\n\n"
    big = para * (1_000_000 // len(para))
    w = make_window(fake_loader(engine), text=big)
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=10_000)
    view = w.confidence
    events: list[str] = []
    w.bridge.chunkRead.connect(lambda _chunk: events.append("chunk"))
    assert view.show_scope("document")
    qtbot.waitUntil(lambda: len(view.data) > 0, timeout=10_000)
    c = w.editor.textCursor()
    c.setPosition(len(big) - 5)  # near the end: the readings at the top stay valid
    w.editor.setTextCursor(c)
    for ch in "typing":
        qtbot.keyClick(w.editor, ch)
        events.append("key")
        assert not view.reading  # the edit cancelled the reading at once
        qtbot.wait(30)
    assert "typing" in w.editor.toPlainText()[-20:]
    # the reading went on between keystrokes, chunk by chunk on the worker (no whole-document pass)
    assert "chunk" in events[: events.index("key")]
    assert len(view.data) < big.count(" ")  # only part of the document was read so far
    # the edit cancelled the reading; after a pause it resumes from where the readings stop
    qtbot.waitUntil(lambda: view.reading, timeout=5_000)
    view.stop()
    assert not view.reading and len(view.data) == 0


def test_confidence_tooltip_and_legend(make_window: WindowFactory, qtbot: QtBot) -> None:
    engine = FakeEngine()
    w = make_window(fake_loader(engine))
    qtbot.waitUntil(lambda: w.bridge.state == "ready", timeout=10_000)
    _caret_in_target(w)
    assert w.confidence.show_scope("block")
    qtbot.waitUntil(lambda: not w.confidence.reading and len(w.confidence.data) > 0, timeout=10_000)
    data = w.confidence.data
    assert data.starts[0] == T0 and data.ends[-1] == T1  # the block's text, tiled
    assert all(a == b for a, b in zip(data.ends, data.starts[1:], strict=False))
    assert "probability" in w.confidence.legend.text() and w.confidence.legend.isVisible()
    i = data.at(T0 + 5)
    assert i is not None and "p = " in tooltip_text(data.texts[i], data.readings[i])
