"""Rewrite > Keep Selected Words (Ctrl+K): phrases marked inside a target, shown underlined, kept verbatim.

The marks live in :class:`~diffedit.document.keeps.KeepMarks` (Qt positions), follow the user's edits, and
are handed to the rewrite controller as the job's kept spans. After a commit, the phrases are marked again
where they landed in the replacement, so the next Ctrl+R keeps them too.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from diffedit.document.history import HistoryEntry
from diffedit.document.keeps import KeepMarks, landed
from diffedit.document.textpos import to_utf16
from diffedit.ui.editing.editor import MarkdownEditor

MARK = "kept"


class KeepMarker(QObject):
    notice = Signal(str, str)  # level, message

    def __init__(self, editor: MarkdownEditor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.marks = KeepMarks()
        self._handed: list[str] = []  # the phrases of the job in flight, to mark again where they land
        self._hidden: tuple[int, int] | None = None  # a running target: its marks are not drawn over it
        editor.document().contentsChange.connect(self._on_contents_change)

    def toggle_selection(self) -> bool:
        """Mark the selection as words to keep, or unmark the marks it touches. True: marked."""
        c = self.editor.textCursor()
        start, end = c.selectionStart(), c.selectionEnd()
        if start == end:
            self.notice.emit("info", "Select the words to keep first (Rewrite > Keep Selected Words).")
            return False
        text = self.editor.text_range(start, end)
        if "\n" in text or not text.strip():
            self.notice.emit("info", "Keep words within one line: select a word or a phrase.")
            return False
        # the words themselves, not the spaces around them
        lead, trail = len(text) - len(text.lstrip()), len(text) - len(text.rstrip())
        start, end = start + lead, end - trail
        marked = self.marks.toggle(start, end, text.strip())
        self.show()
        return marked

    def spans_in(self, start: int, end: int) -> list[tuple[int, int]]:
        """The marks inside a target (Qt positions), still marking the words they marked; remembered as the
        job's phrases."""
        self.marks.still_marking(self.editor.text_range)
        inside = self.marks.within(start, end)
        self._handed = [self.marks.texts[s] for s in inside]
        return inside

    def hide_within(self, span: tuple[int, int] | None) -> None:
        """Draw no mark inside ``span`` (a target being rewritten: its text is hidden); None: draw all."""
        self._hidden = span
        self.show()

    def on_committed(self, entry: HistoryEntry[object]) -> None:
        """Mark the kept phrases again where they landed in the committed replacement."""
        phrases, self._handed = self._handed, []
        if not phrases:
            return
        start = entry.span.start
        found = landed(entry.replacement, phrases)
        text = entry.replacement
        spans = [
            ((start + to_utf16(text, a), start + to_utf16(text, b)), text[a:b])
            for a, b in (f for f in found if f is not None)
        ]
        self.marks.add(spans)
        self.show()

    def clear(self) -> None:
        self.marks.clear()
        self._handed = []
        self.show()

    def show(self) -> None:
        hidden = self._hidden
        spans = [
            s for s in self.marks.spans if hidden is None or not (hidden[0] <= s[0] and s[1] <= hidden[1])
        ]
        self.editor.set_mark(MARK, spans, "highlight", underline=True)

    def _on_contents_change(self, position: int, removed: int, added: int) -> None:
        if not self.marks.spans:
            return
        if removed == added:  # formatting, or a same-length edit: keep the marks whose words are intact
            changed = self.marks.still_marking(self.editor.text_range)
        else:
            changed = self.marks.apply_change(position, removed, added)
        if changed:
            self.show()
