"""Stateful test of the editor's document and undo model, with the real engine on the bundled demo model.

Hypothesis types, selects, rewrites, cancels, undoes and redoes in random order. Invariants:
  * a rewrite never changes text outside its target, and one Undo takes it back exactly;
  * a cancelled rewrite changes nothing at all;
  * Undo all the way returns the original document byte for byte; Redo all the way returns the newest text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from PySide6.QtGui import QTextCursor
from pytestqt.qtbot import QtBot

from diffedit.document.textpos import from_utf16, to_utf16
from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow

ORIGINAL = (
    "# Café notes\n\n"
    "The first paragraph is left alone — mostly.\n\n"
    "The second paragraph is the one to rewrite.\n\n"
    "- an item\n- another item\n\n"
    "Last words.\n"
)
TYPED = st.text(alphabet="ab é—\n#-", min_size=1, max_size=5)
FRACTION = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def module_checkpoint() -> Path:
    """The bundled demo model, loaded from disk by the same loader users run."""
    from diffedit.engine.loader import default_model_path

    return default_model_path()


@pytest.fixture
def real_window(qtbot: QtBot, module_checkpoint: Path) -> Iterator[MainWindow]:
    s = Settings()
    s.model_path = str(module_checkpoint)
    w = MainWindow(s, autoload_model=True)  # not qtbot.addWidget: see the teardown
    w.documents.confirm_discard = lambda: True  # type: ignore[method-assign]  # each example starts anew
    w.rewrite_bar.steps.setValue(4)
    w.show()
    qtbot.waitUntil(lambda: w.bridge.state in ("ready", "failed"), timeout=RUN_TIMEOUT_MS)
    assert w.bridge.state == "ready", w.bridge.error
    yield w
    w.editor.document().setModified(False)  # closing would otherwise ask about unsaved changes
    w.controller.stop(quiet=True)
    w.bridge.shutdown()
    w.close()


class EditorMachine(RuleBasedStateMachine):
    window: ClassVar[MainWindow]
    qtbot: ClassVar[QtBot]

    def __init__(self) -> None:
        super().__init__()
        self.w = self.window
        self.w.documents.new_document(ORIGINAL)  # a fresh document: empty undo stack
        self.newest = ORIGINAL  # the text at the tip of the undo history

    # -- helpers ----------------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return self.w.editor.toPlainText()

    def position(self, fraction: float) -> int:
        """A Qt position (UTF-16): the model may write characters outside the BMP."""
        text = self.text
        return to_utf16(text, round(fraction * len(text)))

    def wait_idle(self) -> None:
        self.qtbot.waitUntil(lambda: not self.w.controller.running, timeout=RUN_TIMEOUT_MS)

    # -- rules ------------------------------------------------------------------------------------------

    @rule(where=FRACTION, typed=TYPED)
    def type_text(self, where: float, typed: str) -> None:
        cursor = self.w.editor.textCursor()
        cursor.setPosition(self.position(where))
        self.w.editor.setTextCursor(cursor)
        self.w.editor.insertPlainText(typed)
        self.newest = self.text

    @rule(a=FRACTION, b=FRACTION)
    def select(self, a: float, b: float) -> None:
        cursor = self.w.editor.textCursor()
        cursor.setPosition(self.position(a))
        cursor.setPosition(self.position(b), QTextCursor.MoveMode.KeepAnchor)
        self.w.editor.setTextCursor(cursor)

    @rule()
    def rewrite(self) -> None:
        target = self.w.editor.snapped_target()
        before = self.text
        runs = len(self.w.controller.history)
        if not self.w.rewrite():
            assert target is None and self.text == before
            return
        assert target is not None
        prefix, suffix = before[: from_utf16(before, target[0])], before[from_utf16(before, target[1]) :]
        self.wait_idle()
        after = self.text
        assert after.startswith(prefix) and after.endswith(suffix)
        assert len(after) >= len(prefix) + len(suffix)
        if len(self.w.controller.history) > runs:  # committed: the whole rewrite is one undo step
            event("rewrite committed")
            self.w.editor.undo()
            assert self.text == before
            self.w.editor.redo()
            assert self.text == after
            self.newest = after
        else:
            event("rewrite not committed")
            assert after == before  # failed or refused: nothing changed

    @rule()
    def rewrite_and_cancel(self) -> None:
        before = self.text
        if not self.w.rewrite():
            return
        self.w.controller.stop()
        self.wait_idle()
        self.qtbot.wait(50)  # a result arriving after the stop must be dropped
        assert self.text == before

    @rule()
    def undo(self) -> None:
        self.w.editor.undo()

    @rule()
    def redo(self) -> None:
        self.w.editor.redo()

    @invariant()
    def nothing_runs_between_steps(self) -> None:
        assert not self.w.controller.running

    def teardown(self) -> None:
        document = self.w.editor.document()
        while document.isUndoAvailable():
            self.w.editor.undo()
        assert self.text.encode() == ORIGINAL.encode()
        while document.isRedoAvailable():
            self.w.editor.redo()
        assert self.text.encode() == self.newest.encode()


def test_undo_model_with_the_real_engine(real_window: MainWindow, qtbot: QtBot) -> None:
    EditorMachine.window = real_window
    EditorMachine.qtbot = qtbot
    run_state_machine_as_test(
        EditorMachine,
        settings=settings(
            max_examples=10,
            stateful_step_count=8,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
