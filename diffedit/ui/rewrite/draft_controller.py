"""Draft Sections: fills the chosen sections of an outline one block at a time, each block a run of the
``RewriteController`` (animated in place, committed as its own undo step).

The planning (which sections, where each block goes, what it sees) is ``document/drafts.py``; the job is
``rewrites.build_draft_job``. This controller only sequences runs: after each commit it plans the next
block from the text as it is then, so every block reads the blocks drafted before it. Stop keeps what is
committed and discards the running block; Skip moves on to the next section; Redraft takes back the
section's committed blocks (while they are still the latest edits) and drafts it again with new seeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from diffedit.document.drafts import DRAFT_GAP, OutlineChanged, Section, place_block
from diffedit.document.session import SessionState
from diffedit.document.textpos import to_utf16
from diffedit.engine.types import GenerationSettings
from diffedit.rewrites import DRAFT_LENGTHS, assemble_draft, build_draft_job
from diffedit.ui.rewrite.controller import PreparedRun, RewriteController, RewriteEntry


@dataclass(frozen=True)
class DraftOptions:
    sections: tuple[Section, ...]  # to fill, in document order
    blocks_per_section: int = 1
    length: str = "medium"  # a key of rewrites.DRAFT_LENGTHS
    steps: int | None = None
    seed: int | None = None  # block k of the draft uses seed + k; None: each block draws its own


@dataclass(frozen=True)
class DraftState:
    """What the draft bar says: the section being drafted and how far the draft is."""

    section: Section
    section_index: int  # of the chosen sections, from 0
    sections: int
    block: int  # of this section's blocks, from 0
    blocks: int
    committed: int  # blocks committed so far, over the whole draft

    def describe(self) -> str:
        which = f"block {self.block + 1} of {self.blocks}, " if self.blocks > 1 else ""
        return (
            f"Drafting “{self.section.title}” ({which}section {self.section_index + 1} of {self.sections}); "
            f"{self.committed} block{'s' if self.committed != 1 else ''} drafted so far"
        )


class DraftController(QObject):
    notice = Signal(str, str)  # level, message
    stateChanged = Signal(object)  # DraftState while drafting, None once the draft ends

    def __init__(self, rewrites: RewriteController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rewrites = rewrites
        self.editor = rewrites.editor
        self.options: DraftOptions | None = None
        self._section = 0  # index into options.sections
        self._block = 0  # of the current section
        self._committed = 0  # over the whole draft
        self._section_undo: list[int] = []  # undo steps after each commit of the current section
        self._attempt = 0  # runs started, for seeds
        self._awaiting = False  # a run of ours is in flight
        self._after_cancel: str | None = None  # "skip" | "redraft" | "stop": why we cancelled our run
        self._started_at = 0.0
        rewrites.committed.connect(self._on_committed)
        rewrites.runEnded.connect(self._on_run_ended)

    @property
    def running(self) -> bool:
        return self.options is not None

    @property
    def committed(self) -> int:
        """Blocks this draft has committed (and not taken back by Redraft)."""
        return self._committed

    def start(self, options: DraftOptions) -> bool:
        """Draft ``options.sections`` in order; False when there is nothing to draft."""
        if not options.sections or options.blocks_per_section < 1 or options.length not in DRAFT_LENGTHS:
            self.notice.emit("info", "Nothing to draft: choose at least one section.")
            return False
        try:
            GenerationSettings(steps=options.steps, seed=options.seed)
        except ValueError as exc:
            self.notice.emit("error", f"Cannot draft: {exc}")
            return False
        self.stop()
        self.options = options
        self._section = self._block = self._committed = self._attempt = 0
        self._section_undo = []
        self._started_at = time.perf_counter()
        self._next()
        return self.running

    # -- the user's buttons ---------------------------------------------------------------------------
    def stop(self) -> bool:
        """Stop the draft: committed blocks stay, the running one is discarded. False if none ran."""
        if not self.running:
            return False
        if self._awaiting:
            self._cancel_run("stop")
        else:
            self._finish(stopped=True)
        return True

    def skip(self) -> None:
        """Leave the current section as it is now and go on with the next."""
        if not self.running:
            return
        if self._awaiting:
            self._cancel_run("skip")
        else:
            self._next_section()

    def redraft(self) -> None:
        """Draft the current section again: its committed blocks are taken back first, if they are still the
        latest edits (else they stay and only the running block starts again)."""
        if not self.running:
            return
        if self._awaiting:
            self._cancel_run("redraft")
        else:
            self._redraft()

    # -- sequencing -------------------------------------------------------------------------------------
    def _cancel_run(self, why: str) -> None:
        self._after_cancel = why
        self.rewrites.stop(quiet=True)  # runEnded("cancelled") arrives before this returns

    def _on_run_ended(self, state: str) -> None:
        if not self._awaiting or state == SessionState.COMMITTED.value:
            return
        self._awaiting = False
        why, self._after_cancel = self._after_cancel, None
        if why == "skip":
            self._next_section()
        elif why == "redraft":
            self._redraft()
        else:  # the user's Stop, another rewrite started, an edit inside the canvas, a failure
            self._finish(stopped=True, quiet=state == SessionState.FAILED.value)

    def _on_committed(self, _entry: RewriteEntry) -> None:
        if not self._awaiting:
            return
        self._awaiting = False
        self._committed += 1
        self._section_undo.append(self.editor.document().availableUndoSteps())
        self._block += 1
        # After the commit's signal is done: the next run starts from a settled controller.
        QTimer.singleShot(0, self._next)

    def _redraft(self) -> None:
        doc = self.editor.document()
        if self._section_undo and doc.availableUndoSteps() == self._section_undo[-1]:
            for _ in self._section_undo:
                self.editor.undo()
            self._committed -= len(self._section_undo)
        self._section_undo = []
        self._block = 0
        self._next()

    def _next_section(self) -> None:
        self._section += 1
        self._block = 0
        self._section_undo = []
        self._next()

    def _next(self) -> None:
        options = self.options
        if options is None or self._awaiting:
            return
        if self._block >= options.blocks_per_section:
            self._section += 1
            self._block = 0
            self._section_undo = []
        if self._section >= len(options.sections):
            self._finish(stopped=False)
            return
        section = options.sections[self._section]
        text = self.editor.exact_text()
        try:
            placement = place_block(
                text, section.number, section.title, self._block, options.blocks_per_section
            )
        except OutlineChanged as exc:
            self.notice.emit("error", f"Draft stopped: {exc}. The blocks drafted so far are kept.")
            self._finish(stopped=True, quiet=True)
            return
        seed = None if options.seed is None else options.seed + self._attempt
        self._attempt += 1
        settings = GenerationSettings(steps=options.steps, seed=seed)
        at = to_utf16(text, placement.at)
        run = PreparedRun(
            build_draft_job(placement, settings, options.length),
            (at, at),
            str(placement.block_number),
            assemble=assemble_draft,
            lead=DRAFT_GAP,
            placeholder=_placeholder(DRAFT_LENGTHS[options.length]),
            review=False,
            title=f"draft of “{placement.section.title}”",
        )
        self._awaiting = True
        if not self.rewrites.run(run):
            self._awaiting = False
            self._finish(stopped=True, quiet=True)
            return
        self.stateChanged.emit(
            DraftState(
                placement.section,
                self._section,
                len(options.sections),
                self._block,
                options.blocks_per_section,
                self._committed,
            )
        )

    def _finish(self, stopped: bool, quiet: bool = False) -> None:
        if self.options is None:
            return
        self.options = None
        self._awaiting = False
        self.stateChanged.emit(None)
        n = self._committed
        blocks = f"block{'s' if n != 1 else ''}"
        if quiet:
            return
        if stopped:
            self.notice.emit(
                "info",
                f"Draft stopped: {n} drafted {blocks} kept; the block being drafted was discarded. "
                "Ctrl+Z takes them back one at a time.",
            )
        else:
            seconds = time.perf_counter() - self._started_at
            self.notice.emit(
                "info",
                f"Drafted {n} {blocks} in {seconds:.1f} s. Ctrl+Z takes them back one block at a time.",
            )


def _placeholder(tokens: int) -> str:
    """Noise the length of a drafted block (about four characters a token), shown until the first frame."""
    return " ".join("xxxxx" for _ in range(max(1, tokens * 4 // 6)))
