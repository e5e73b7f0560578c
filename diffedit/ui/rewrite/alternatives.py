"""Rewrite > Alternatives: N candidates of the selection denoised as one batch, side by side; the one the
user picks is committed as one undo step, Cancel (Esc) leaves the document as it was.

The dialog is modal, so the document cannot change under the run; it never touches the document until the
pick. Each column animates its candidate's frames (noise grey, accepted text plain) and names its seed: the
run's seed plus the column's index, so a candidate can be rewritten again alone with its seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.session import normalize_replacement
from diffedit.document.textpos import from_utf16
from diffedit.engine.types import AlternativesFrame, AlternativesResult, GenerationSettings, RewriteJob
from diffedit.rewrites import assemble, build_job
from diffedit.ui.editing.editor import MarkdownEditor
from diffedit.ui.files.exact_text import insert_text
from diffedit.ui.rewrite.canvas_renderer import CanvasPaint, PaintKind, display_text, paint_frame
from diffedit.worker import EngineBridge

DEFAULT_ALTERNATIVES = 3
FRAME_PERIOD_MS = 33


class _Column(QWidget):
    """One candidate: its seed, its canvas as it denoises, and the button that picks it."""

    def __init__(self, index: int, seed: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.seed = seed
        self.label = QLabel(f"Candidate {index + 1} · seed {seed}")
        self.view = QPlainTextEdit()
        self.view.setReadOnly(True)
        self.view.setObjectName(f"alternative{index + 1}")
        self.pick = QPushButton(f"Use {index + 1}")
        self.pick.setEnabled(False)
        self.step = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.pick)

    def show_paint(self, paint: CanvasPaint, noise: QTextCharFormat) -> None:
        self.step = paint.step
        self.view.setPlainText(display_text(paint).replace("\u2028", "\n"))
        cursor = QTextCursor(self.view.document())
        for s, e, kind in paint.runs:
            if kind is PaintKind.NOISE:
                cursor.setPosition(s)
                cursor.setPosition(e, QTextCursor.MoveMode.KeepAnchor)
                cursor.setCharFormat(noise)


class AlternativesDialog(QDialog):
    """N candidates side by side; ``picked(index)`` once one is committed."""

    picked = Signal(int)
    aboutToCommit = Signal()  # the document still holds the text from before the pick

    def __init__(
        self,
        editor: MarkdownEditor,
        bridge: EngineBridge,
        span: tuple[int, int],
        job: RewriteJob,
        count: int,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Alternatives ({count})")
        self.setModal(True)
        self.editor, self.bridge, self.span, self.job = editor, bridge, span, job
        seed = job.settings.seed
        assert seed is not None  # start() gives every run a seed, so the columns can name theirs
        self.columns = [_Column(i, seed + i, self) for i in range(count)]
        self.replacements: list[str] = []
        self.result_: AlternativesResult | None = None
        self.status = QLabel("Denoising the candidates together…")
        row = QHBoxLayout()
        for i, column in enumerate(self.columns):
            row.addWidget(column, 1)
            column.pick.clicked.connect(lambda _=False, i=i: self.pick(i))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(row, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(min(1200, 320 * count + 40), 420)
        self.noise = QTextCharFormat()
        self.noise.setForeground(editor.theme.color("noise_fg"))
        self.noise.setFontItalic(True)
        self.job_id = bridge.submit_alternatives(job, count)
        self._timer = QTimer(self, interval=FRAME_PERIOD_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        bridge.jobFinished.connect(self._on_finished)
        bridge.jobFailed.connect(self._on_failed)

    @classmethod
    def start(
        cls,
        editor: MarkdownEditor,
        bridge: EngineBridge,
        settings: GenerationSettings,
        count: int = DEFAULT_ALTERNATIVES,
        instruction: str = "",
        free_form: bool = False,
        parent: QWidget | None = None,
    ) -> AlternativesDialog | None:
        """The dialog for the snapped selection (one block or several), running; None: nothing selected."""
        target = editor.snapped_target()
        if target is None:
            return None
        text = editor.exact_text()
        a, b = from_utf16(text, target[0]), from_utf16(text, target[1])
        if settings.seed is None:  # the run's seed, known up front: each column shows its own
            settings = dataclasses.replace(settings, seed=secrets.randbelow(2**31))
        job = build_job(text, a, b, settings, instruction, free_form=free_form)
        dialog = cls(editor, bridge, target, job, count, parent)
        dialog.open()
        return dialog

    # -- the run -----------------------------------------------------------------------------------
    def _tick(self) -> None:
        frame = self.bridge.take_alternatives(self.job_id)
        if frame is not None:
            self.show_frame(frame)

    def show_frame(self, frame: AlternativesFrame) -> None:
        for column, candidate in zip(self.columns, frame.frames, strict=True):
            if candidate is not None and not self.replacements:
                column.show_paint(paint_frame(candidate), self.noise)
        steps = [c.step for c in self.columns]
        self.status.setText(f"Denoising the candidates together… step {max(steps)}")

    def _on_finished(self, job_id: int, result: object) -> None:
        if job_id != self.job_id or not isinstance(result, AlternativesResult):
            return
        self._timer.stop()
        self.result_ = result
        self.replacements = [normalize_replacement(assemble(self.job, c)) for c in result.candidates]
        for column, text in zip(self.columns, self.replacements, strict=True):
            column.view.setPlainText(text)
            column.pick.setEnabled(True)
        self.status.setText(
            f"{len(self.columns)} candidates in {result.total_s:.1f} s ({result.forwards} batched steps, "
            f"{result.encodes} context encode{'s' if result.encodes != 1 else ''}). "
            "Pick one, or Cancel to keep the text as it is."
        )
        self.columns[0].pick.setFocus()

    def _on_failed(self, job_id: int, message: str) -> None:
        if job_id == self.job_id:
            self._timer.stop()
            self.status.setText(f"Alternatives failed: {message} The text is unchanged.")

    # -- pick / cancel -----------------------------------------------------------------------------
    def pick(self, index: int) -> None:
        """Commit candidate ``index`` over the selection: one edit block, so one Ctrl+Z restores it."""
        if not self.replacements:
            return
        start, end = self.span
        self.aboutToCommit.emit()
        cursor = QTextCursor(self.editor.document())
        cursor.beginEditBlock()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        insert_text(cursor, self.replacements[index])
        cursor.endEditBlock()
        self._close()
        self.picked.emit(index)
        self.accept()

    def reject(self) -> None:
        """Cancel (Esc): the run stops, the document was never touched."""
        self._close()
        super().reject()

    def _close(self) -> None:
        self._timer.stop()
        self.bridge.cancel(self.job_id)
        for signal, slot in (
            (self.bridge.jobFinished, self._on_finished),
            (self.bridge.jobFailed, self._on_failed),
        ):
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                signal.disconnect(slot)
