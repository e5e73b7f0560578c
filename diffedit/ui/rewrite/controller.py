"""Runs a rewrite from the editor's point of view: target, animation, commit, review, history.

Data flows one way: editor selection -> ``RewriteSession`` + engine job (through ``EngineBridge``) ->
frames pulled by a timer -> ``CanvasRenderer`` (view state only) -> one edit block on commit.
The document is not touched until the commit, so Stop, failures and conflicts have nothing to restore.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QTextCursor

from diffedit.document.history import FrameRecorder, History, HistoryEntry
from diffedit.document.session import (
    EditEffect,
    RewriteSession,
    SessionState,
    SpanConflict,
    TrackedSpan,
    normalize_replacement,
)
from diffedit.document.spans import changed_words
from diffedit.document.targets import block_numbers
from diffedit.document.textpos import from_utf16, to_utf16, utf16_len
from diffedit.engine.types import GenerationSettings, KeepRefused, RewriteJob, RewriteResult
from diffedit.rewrites import Assembly, assemble_blocks, build_job, held_layout
from diffedit.ui.editing.editor import MarkdownEditor
from diffedit.ui.files.exact_text import insert_text
from diffedit.ui.rewrite.canvas_renderer import (
    CanvasPaint,
    CanvasRenderer,
    noise_paint,
    paint_frame,
    shape_paint,
)
from diffedit.ui.rewrite.keeps import KeepMarker
from diffedit.worker import EngineBridge

POLISH_THRESHOLD = 0.2  # Polish Weak Words re-writes the tokens the model gives less than this probability
FRAME_PERIOD_MS = 33  # ~30 fps; frames that arrive faster are coalesced in the bridge's mailbox


def blocks_phrase(blocks: str) -> str:
    """'4' -> 'block 4', '4-6' -> 'blocks 4-6'; a large document's 'lines 3-5' stays as it is."""
    if blocks.isdigit():
        return f"block {blocks}"
    return f"blocks {blocks}" if blocks[:1].isdigit() else blocks


@dataclass(frozen=True)
class RunOptions:
    instruction: str = ""
    strength: float = 1.0
    steps: int | None = None
    seed: int | None = None  # None: the engine draws one and reports it in the result
    free_form: bool = False  # let the model restructure the blocks (off: each block keeps its shape)
    polish: float | None = None  # re-fill only the tokens less likely than this (Polish Weak Words)


@dataclass(frozen=True)
class Progress:
    step: int
    total_steps: int
    tokens: int
    elapsed_s: float
    tokens_per_forward: float | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class PreparedRun:
    """A job ready to run over ``span`` (Qt positions; its request's target is the span's text), and how its
    result becomes the span's new text. ``start`` prepares a rewrite; a draft prepares an insertion."""

    job: RewriteJob
    span: tuple[int, int]
    label: str  # the history's block numbers, e.g. "3" or "3-5"
    assemble: Callable[[RewriteJob, RewriteResult], Assembly] = assemble_blocks
    lead: str = ""  # text the assembly puts before what the model writes, shown before every frame
    placeholder: str | None = None  # the first paint's text, as noise (None: the span's text)
    review: bool = True  # offer Keep / Undo / Try again after the commit
    title: str = ""  # the history's name for the run instead of its instruction (a draft: its section)


RewriteEntry = HistoryEntry[CanvasPaint]


class RewriteController(QObject):
    notice = Signal(str, str)  # level ("info" | "error"), message
    progress = Signal(object)  # Progress
    runningChanged = Signal(bool)
    runEnded = Signal(str)  # the SessionState value a run ended in ("committed": the commit follows)
    loading = Signal(str)  # a line for the status while the run waits for the model
    aboutToCommit = Signal()  # the document still holds the text from before the rewrite
    committed = Signal(object)  # RewriteEntry
    reviewOffered = Signal(str)
    reviewClosed = Signal()
    kept = Signal()  # the user pressed Keep on a committed rewrite
    entryUndone = Signal(int, bool)  # history row, undone (True) or standing again after a redo (False)

    def __init__(self, editor: MarkdownEditor, bridge: EngineBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.bridge = bridge
        self.canvas = CanvasRenderer(editor)
        self.keeps = KeepMarker(editor, self)  # Keep Selected Words: handed to each job inside its target
        self.keeps.notice.connect(self.notice)
        self.history: History[CanvasPaint] = History()
        self._commit_steps: dict[int, int] = {}  # id(entry) -> the document's undo steps right after it
        self.undone: set[int] = set()  # id(entry) of entries undone now
        self.session: RewriteSession | None = None
        self.latest_paint: CanvasPaint | None = None  # the frame on screen now
        self.options = RunOptions()
        self._recorder: FrameRecorder[CanvasPaint] = FrameRecorder()
        self._started_at = 0.0
        self._review: RewriteEntry | None = None
        self._review_undo_steps = -1
        self._committing = False
        self._parked_caret = -1
        self._blocks_label = "?"
        self._replay: list[CanvasPaint] = []
        self._replay_span: tuple[int, int] | None = None
        self._run: PreparedRun | None = None  # the running job, for assembling its blocks on commit
        self._timer = QTimer(self, interval=FRAME_PERIOD_MS)
        self._timer.timeout.connect(self._tick)
        self._replay_timer = QTimer(self, interval=FRAME_PERIOD_MS * 2)
        self._replay_timer.timeout.connect(self._replay_tick)
        editor.document().contentsChange.connect(self._on_contents_change)
        editor.undoRedone.connect(self._on_undo_redo)
        self._load_message = ""
        bridge.modelLoading.connect(self._on_model_loading)
        bridge.jobFinished.connect(self._on_finished)
        bridge.jobFailed.connect(self._on_failed)
        bridge.jobCancelled.connect(self._on_cancelled)

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    # -- start / stop ------------------------------------------------------------------------------
    def start(self, options: RunOptions | None = None, span: tuple[int, int] | None = None) -> bool:
        """Rewrite the snapped selection (or ``span``, Qt positions); False when there is nothing to do."""
        options = options or self.options
        try:  # the engine's settings type is the one place strength and steps are checked
            settings = GenerationSettings(steps=options.steps, strength=options.strength, seed=options.seed)
        except ValueError as exc:
            self.notice.emit("error", f"Cannot rewrite: {exc}")
            return False
        self.options = options
        if self.running:
            self.stop(quiet=True)
        self.stop_replay()
        self.close_review()
        target = span or self.editor.snapped_target()
        if target is None:
            self.notice.emit("info", "Nothing to rewrite here: select a paragraph (or put the caret in one).")
            return False
        start, end = target
        text = self.editor.exact_text()
        a, b = from_utf16(text, start), from_utf16(text, end)
        instruction = options.instruction.strip()
        kept = self.keeps.spans_in(start, end)  # a polish holds them anyway: marked again after it
        keeps = (
            []
            if options.polish is not None
            else [(from_utf16(text, p), from_utf16(text, q)) for p, q in kept]
        )
        try:  # a kept phrase the rewrite cannot hold is refused here, before anything runs
            job = build_job(
                text,
                a,
                b,
                settings,
                instruction,
                free_form=options.free_form,
                keeps=keeps,
                polish=options.polish,
            )
        except KeepRefused as exc:
            self.notice.emit("error", f"Cannot keep those words: {exc}")
            return False
        return self.run(PreparedRun(job, target, block_numbers(text, a, b)))

    def run(self, prepared: PreparedRun) -> bool:
        """Run a prepared job over its span: animate it in place, then commit it as one undo step."""
        if self.running:
            self.stop(quiet=True)
        self.stop_replay()
        self.close_review()
        job, (start, end) = prepared.job, prepared.span
        settings = job.settings
        self._blocks_label = prepared.label
        job_id = self.bridge.submit(job.request, settings, job.templates, job.polish)
        self._run = prepared
        self.session = RewriteSession(
            job_id, start, end, job.request.target, self.editor.text_range, job.request.instruction
        )
        self.latest_paint = None
        self._recorder = FrameRecorder()
        self._started_at = time.perf_counter()
        self.editor.clear_mark("target")
        self.editor.move_caret_out_of(start, end)
        self._parked_caret = self.editor.textCursor().position()
        steps = settings.steps or 0
        layout = None if prepared.placeholder is not None else held_layout(job)
        if layout is None:
            shown = prepared.placeholder if prepared.placeholder is not None else job.request.target
            first = noise_paint(shown, steps)
        else:  # the held shape shows from the first frame, before the first step
            first = shape_paint(layout, steps)
        self.canvas.show(start, end, first.led_by(prepared.lead))
        self.keeps.hide_within((start, end))
        self.editor.update_target()
        self._timer.start()
        self.runningChanged.emit(True)
        if not self._show_loading():
            self.progress.emit(Progress(0, settings.steps or 0, 0, 0.0))
        return True

    def _on_model_loading(self, message: str) -> None:
        self._load_message = message

    def _show_loading(self) -> bool:
        """While the model loads, the status says so (how far, and the time waited) instead of "Step 0"."""
        if self.bridge.state != "loading":
            return False
        message = self._load_message or "Loading the model…"  # "Loading …: 45 %" once weights load
        self.loading.emit(f"{message} ({time.perf_counter() - self._started_at:.0f} s)")
        return True

    def stop(self, quiet: bool = False) -> None:
        """Stop the run; the document is exactly as before it started (it was never changed)."""
        if self.session is None or not self.session.running:
            return
        self.bridge.cancel(self.session.job_id)
        self._end(SessionState.CANCELLED)
        if not quiet:
            self.notice.emit("info", "Stopped. The text is unchanged.")

    def _end(self, state: SessionState, hint: tuple[int, int] | None = None) -> None:
        session = self.session
        self._timer.stop()
        self.canvas.clear(hint)
        self.latest_paint = None
        if session is not None:
            session.finish(state)
            if (
                state is not SessionState.COMMITTED
                and hint is None
                and self.editor.textCursor().position() == self._parked_caret
            ):
                # The user did not move on: select the target again, ready for another Ctrl+R.
                self.editor.center_on(session.start, session.end)
        self.session = None
        self.keeps.hide_within(None)
        self.editor.update_target()
        self.runningChanged.emit(False)
        self.runEnded.emit(state.value)

    # -- document changes --------------------------------------------------------------------------
    def _on_contents_change(self, position: int, removed: int, added: int) -> None:
        if self._committing:
            return
        self.history.apply_change(position, removed, added)
        if removed != added and not self.editor.in_undo_redo and self.undone:
            # A new edit dropped the redo steps: what is undone now cannot come back.
            for key in self.undone:
                self._commit_steps.pop(key, None)
        if self._replay_span is not None:
            self.stop_replay()
        if removed != added and self._review is not None:
            self.close_review()  # an edit after a commit means the user kept it
        session = self.session
        if session is None or not session.running:
            return
        effect = session.apply_change(position, removed, added)
        if effect is EditEffect.BEFORE:
            self.canvas.move(session.start, session.end)
        elif effect is EditEffect.INSIDE:
            self.bridge.cancel(session.job_id)
            self._end(SessionState.CANCELLED, hint=(position, position + added + session.end - session.start))
            self.notice.emit("info", "Rewrite cancelled: the text being rewritten was edited.")

    # -- frames ------------------------------------------------------------------------------------
    def _tick(self) -> None:
        session = self.session
        if session is None:
            return
        frame = self.bridge.take_frame(session.job_id)
        if frame is None:
            self._show_loading()
            return
        paint = paint_frame(frame).led_by(self._run.lead if self._run is not None else "")
        self.latest_paint = paint
        self._recorder.add(paint, paint.final)
        self.canvas.show(session.start, session.end, paint)
        # Count what the result will count: the text's tokens and its end token, not the accepted padding
        # after it (the settled canvas is mostly padding, which would inflate tokens per forward).
        last = max((i for i, piece in enumerate(frame.pieces) if piece), default=-1)
        accepted = sum(1 for a in frame.accepted[: last + 2] if a)
        tokens = accepted + frame.canvas_index * len(frame.accepted)
        self.progress.emit(
            Progress(
                frame.step,
                frame.total_steps,
                tokens,
                time.perf_counter() - self._started_at,
                accepted / frame.step if frame.step else None,
            )
        )

    # -- results -----------------------------------------------------------------------------------
    def _is_current(self, job_id: int) -> bool:
        """Only the running job's reports count: a superseded job's late result or failure is dropped."""
        return self.session is not None and self.session.running and self.session.job_id == job_id

    def _on_finished(self, job_id: int, result: RewriteResult) -> None:
        session = self.session
        if session is None or not self._is_current(job_id):
            return
        prepared = self._run
        assembly = prepared.assemble(prepared.job, result) if prepared is not None else None
        replacement = normalize_replacement(assembly.text if assembly is not None else result.text)
        seconds = time.perf_counter() - self._started_at  # from Ctrl+R: the wait for the model counts
        self._recorder.add(CanvasPaint.plain(replacement), final=True)
        try:
            start, end = session.commit_span()
        except SpanConflict as exc:
            self._end(SessionState.FAILED)
            self.notice.emit("error", str(exc))
            return
        parked = self.editor.textCursor().position() == self._parked_caret
        self._end(SessionState.COMMITTED)
        self.aboutToCommit.emit()
        self._apply(start, end, replacement)
        if parked:  # the user waited: the caret goes to the end of the new text, the view with it
            self.editor.place_caret(start + utf16_len(replacement))
        kept = [b.reason for b in (assembly.blocks if assembly is not None else ()) if b.kept_original]
        if kept:  # the constraints should prevent it; never write a block of another shape
            self.notice.emit(
                "info", f"{len(kept)} block(s) kept as they were: the rewrite changed their shape."
            )
        entry = RewriteEntry(
            when=datetime.now(),
            blocks=self._blocks_label,
            instruction=session.instruction,
            steps=result.steps,
            tokens_per_forward=result.tokens_per_forward,
            seconds=seconds,
            model=result.model,
            seed=result.seed,
            original=session.original,
            replacement=replacement,
            span=TrackedSpan(start, start + utf16_len(replacement)),
            frames=list(self._recorder.frames),
            title=prepared.title if prepared is not None else "",
        )
        self.history.add(entry)
        self._commit_steps[id(entry)] = self.editor.document().availableUndoSteps()
        self.keeps.on_committed(entry)  # type: ignore[arg-type]  # any frame type: only spans are read
        tokens = len(result.token_ids)
        self.progress.emit(Progress(result.steps, result.steps, tokens, seconds, result.tokens_per_forward))
        if prepared is not None and not prepared.review:
            self.committed.emit(entry)
            return
        self._review = entry
        self._review_undo_steps = self._commit_steps[id(entry)]
        if result.polished is None:
            self.editor.set_mark("committed", [(entry.span.start, entry.span.end)], "committed_bg")
        else:  # a polish: the words that changed, in place, until the review closes
            words = [
                (start + to_utf16(replacement, p), start + to_utf16(replacement, q))
                for p, q in changed_words(session.original, replacement)
            ]
            self.editor.set_mark("committed", words, "committed_bg")
        self.committed.emit(entry)
        if result.polished is not None:
            changed = len(changed_words(session.original, replacement))
            self.reviewOffered.emit(
                f"Polished {blocks_phrase(entry.blocks)}: {result.polished} weak token(s) re-written, "
                f"{changed} word(s) changed (highlighted) in {seconds:.1f} s."
            )
            return
        self.reviewOffered.emit(
            f"Rewrote {blocks_phrase(entry.blocks)} in {seconds:.1f} s "
            f"({result.steps} steps, {result.tokens_per_forward:.1f} tokens/forward)."
        )

    def _apply(self, start: int, end: int, replacement: str) -> None:
        """The commit: one edit block of its own, so one Ctrl+Z restores the original exactly."""
        cursor = QTextCursor(self.editor.document())
        self._committing = True
        try:
            cursor.beginEditBlock()
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            insert_text(cursor, replacement)
            cursor.endEditBlock()
        finally:
            self._committing = False
        # Shift history spans by hand: the commit itself was not fed through _on_contents_change.
        self.history.apply_change(start, end - start, utf16_len(replacement))

    def _on_failed(self, job_id: int, message: str) -> None:
        if self._is_current(job_id):
            self._end(SessionState.FAILED)
            self.notice.emit("error", f"Rewrite failed: {message} The text is unchanged.")

    def _on_cancelled(self, job_id: int) -> None:
        if self._is_current(job_id):
            self._end(SessionState.CANCELLED)

    # -- review: keep / undo / try again -----------------------------------------------------------
    def _review_is_latest(self) -> bool:
        return (
            self._review is not None
            and self.editor.document().availableUndoSteps() == self._review_undo_steps
        )

    def keep(self) -> None:
        self.close_review()
        self.kept.emit()

    def undo(self) -> bool:
        """Undo the commit under review (only while it is still the latest undo step)."""
        if not self._review_is_latest():
            self.close_review()
            return False
        self.close_review()
        self.editor.undo()
        return True

    def try_again(self) -> bool:
        """Undo the commit and rewrite the same blocks again with a new seed."""
        entry = self._review
        if entry is None or not self._review_is_latest():
            self.close_review()
            return False
        start = entry.span.start
        self.undo()
        span = (start, start + utf16_len(entry.original))
        again = RunOptions(
            entry.instruction, self.options.strength, self.options.steps, None, polish=self.options.polish
        )
        return self.start(again, span)

    def close_review(self) -> None:
        if self._review is not None:
            self._review = None
            self.editor.clear_mark("committed")
            self.reviewClosed.emit()

    # -- history -----------------------------------------------------------------------------------
    def _on_undo_redo(self, redo: bool) -> None:
        steps = self.editor.document().availableUndoSteps()
        for row, entry in enumerate(self.history.entries):
            after_commit = self._commit_steps.get(id(entry))
            if after_commit is None:
                continue
            was = id(entry) in self.undone
            now = steps < after_commit if (redo or steps < after_commit) else was
            if now != was:
                (self.undone.add if now else self.undone.discard)(id(entry))
                self.entryUndone.emit(row, now)

    def record_commit(
        self, start: int, original: str, replacement: str, result: RewriteResult, title: str
    ) -> RewriteEntry:
        """A commit made outside a run (an alternative picked over ``start``, Qt positions, already in the
        document): into the history like a run's, its undo tracked, its span shifted by later edits."""
        text = self.editor.exact_text()
        a = from_utf16(text, start)
        entry = RewriteEntry(
            when=datetime.now(),
            blocks=block_numbers(text, a, a + len(replacement)),
            instruction="",
            steps=result.steps,
            tokens_per_forward=result.tokens_per_forward,
            seconds=result.total_s,
            model=result.model,
            seed=result.seed,
            original=original,
            replacement=replacement,
            span=TrackedSpan(start, start + utf16_len(replacement)),
            frames=[CanvasPaint.plain(replacement)],
            title=title,
        )
        self.history.add(entry)
        self._commit_steps[id(entry)] = self.editor.document().availableUndoSteps()
        self.committed.emit(entry)
        return entry

    def clear_history(self) -> None:
        """Another document is in the editor: its history starts empty."""
        self.stop_replay()
        self.history = History()
        self._commit_steps.clear()
        self.undone.clear()

    def _entry_span(self, entry: RewriteEntry) -> tuple[int, int]:
        """Where the entry's text is now: the replacement, or the restored original if it was undone."""
        if id(entry) in self.undone:
            return entry.span.start, entry.span.start + utf16_len(entry.original)
        return entry.span.start, entry.span.end

    def jump_to(self, index: int) -> None:
        entry = self.history[index]
        if id(entry) in self.undone:
            self.editor.place_caret(entry.span.start)
            self.editor.setFocus()
            return
        self.editor.center_on(entry.span.end, entry.span.start)

    def replay(self, index: int) -> bool:
        """Play a committed run's frames over its span (view only); any edit stops it."""
        if self.running or not (0 <= index < len(self.history)):
            return False
        entry = self.history[index]
        if not entry.frames:
            self.notice.emit("info", "No frames kept for this rewrite (only the latest ones are kept).")
            return False
        self.stop_replay()
        self.close_review()
        self._replay = list(entry.frames)
        self._replay_span = self._entry_span(entry)
        self.editor.clear_mark("target")
        self.editor.place_caret(self._replay_span[1])  # no selection painted over the replay's colours
        self._replay_tick()
        self._replay_timer.start()
        return True

    def _replay_tick(self) -> None:
        if self._replay_span is None:
            return
        if not self._replay:
            self.stop_replay()
            return
        paint = self._replay.pop(0)
        self.canvas.show(self._replay_span[0], self._replay_span[1], paint)

    def stop_replay(self) -> None:
        if self._replay_span is None:
            return
        self._replay_timer.stop()
        self._replay = []
        self._replay_span = None
        self.canvas.clear()
        self.editor.update_target()

    @property
    def replaying(self) -> bool:
        return self._replay_span is not None

    def quiet(self) -> None:
        """Stop whatever runs or replays and close the review: the document is about to be replaced."""
        self.stop(quiet=True)
        self.stop_replay()
        self.close_review()
