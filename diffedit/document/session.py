"""One rewrite as the document sees it: a target span that follows edits, and its final replacement.

Pure Python, no Qt. Offsets are in whatever unit the caller's document uses (the editor passes Qt's
UTF-16 positions, which is what ``QTextDocument.contentsChange`` reports); the session only adds and compares.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from diffedit.document.textwindow import fence_closes, fence_opener


class SessionState(enum.Enum):
    RUNNING = "running"
    COMMITTED = "committed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class EditEffect(enum.Enum):
    """What an edit elsewhere in the document did to the target."""

    BEFORE = "before"  # the target moved by the edit's length change
    AFTER = "after"  # nothing to do
    INSIDE = "inside"  # the edit touched the target: the run must stop
    FORMAT_ONLY = "format"  # Qt reported a change, but the target's text is what it was


class SpanConflict(Exception):
    """The target's text is no longer the original: committing would overwrite the user's edit."""


class RewriteSession:
    """The target of one run: ``start..end`` over ``original``, kept in step with edits elsewhere.

    ``read_span(start, end)`` returns the document's current text there; the session uses it to tell a
    formatting-only change (Qt reports those as ``removed == added``) from a real edit, and to refuse a
    commit over text that is no longer the original.
    """

    def __init__(
        self,
        job_id: int,
        start: int,
        end: int,
        original: str,
        read_span: Callable[[int, int], str],
        instruction: str = "",
    ) -> None:
        if end < start:
            raise ValueError("end before start")
        self.job_id = job_id
        self.start = start
        self.end = end
        self.original = original
        self.instruction = instruction
        self.state = SessionState.RUNNING
        self._read_span = read_span

    @property
    def running(self) -> bool:
        return self.state is SessionState.RUNNING

    def apply_change(self, position: int, removed: int, added: int) -> EditEffect:
        """Follow one document change; INSIDE means the user edited the target (or its edges)."""
        old_end = position + removed
        if old_end < self.start:
            delta = added - removed
            self.start += delta
            self.end += delta
            return EditEffect.BEFORE
        if position > self.end:
            return EditEffect.AFTER
        if removed == added and self._read_span(self.start, self.end) == self.original:
            return EditEffect.FORMAT_ONLY
        return EditEffect.INSIDE

    def intact(self) -> bool:
        return self._read_span(self.start, self.end) == self.original

    def commit_span(self) -> tuple[int, int]:
        """The span to replace on commit; raises SpanConflict when the target is not the original any more."""
        if not self.intact():
            raise SpanConflict("the text being rewritten was changed; the rewrite was not applied")
        return self.start, self.end

    def finish(self, state: SessionState) -> None:
        self.state = state


class TrackedSpan:
    """A span that follows edits (history entries); an edit across it clamps it instead of failing."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end

    def apply_change(self, position: int, removed: int, added: int) -> None:
        delta = added - removed
        old_end = position + removed
        if old_end <= self.start:
            self.start += delta
            self.end += delta
        elif position < self.end:
            # Overlap: keep what survives of the span, plus what the edit put inside it.
            new_end = self.end + delta if old_end <= self.end else position + added
            self.start = min(self.start, position)
            self.end = max(self.start, new_end)


def normalize_replacement(text: str) -> str:
    """The replacement as the document will hold it: "\\n" line breaks only, no NUL characters, no open fence.

    A ``QTextDocument`` turns "\\r" and U+2029 into block breaks anyway; normalizing first keeps what is
    committed equal to what the document then contains. A code fence the model opened but never closed
    would turn the whole rest of the document into code, so it is closed at the end of the replacement.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2029", "\n").replace("\x00", "")
    return close_open_fence(text)


def close_open_fence(text: str) -> str:
    """``text`` with a closing line added if it ends inside a fenced code block (CommonMark rules)."""
    fence: str | None = None
    for line in text.split("\n"):
        if fence is None:
            fence = fence_opener(line)
        elif fence_closes(line, fence):
            fence = None
    return text if fence is None else text + "\n" + fence
