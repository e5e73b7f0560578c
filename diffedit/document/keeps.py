"""Kept words: phrases inside a rewrite's target that the rewrite must keep verbatim.

Pure Python: where a kept span sits in its block's shape (which slot, at which character of the slot's
original), finding phrases given as text (the CLI's ``--keep``), where kept phrases landed in a replacement,
and :class:`KeepMarks`, the editor's marked spans, following edits like the rewrite target does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from diffedit.document.shapes import Held, Shape


class KeepProblem(ValueError):
    """A kept phrase that cannot be kept: says which and why."""


def quoted(phrase: str) -> str:
    return f"“{phrase if len(phrase) <= 40 else phrase[:39] + '…'}”"


def slot_offset(shape: Shape, block_text: str, start: int, end: int) -> tuple[int, int]:
    """(slot index, character offset in that slot's original) of ``block_text[start:end]``, a kept span.

    The span must lie inside one slot's text on one line: held text (a heading's ``#``, a list marker, a
    table's ``|``) is kept anyway, and a phrase across lines would cross a container's prefix.
    """
    phrase = block_text[start:end]
    if not phrase.strip():
        raise KeepProblem("an empty or blank phrase cannot be kept")
    if "\n" in phrase:
        raise KeepProblem(f"{quoted(phrase)} runs over a line break: keep words within one line")
    pos = 0  # where the segment starts in the block's text
    slot_index = -1
    for seg in shape.segments:
        if isinstance(seg, Held):
            pos += len(seg.text)
            continue
        slot_index += 1
        rendered = 0  # offset in the block's text of the slot's original character j
        lines = seg.original.split("\n")
        j = 0
        for n, line in enumerate(lines):
            if n:
                rendered += len(seg.line_prefix if line else seg.line_prefix.rstrip())
            line_start = pos + rendered
            if line_start <= start and end <= line_start + len(line):
                return slot_index, j + (start - line_start)
            rendered += len(line) + 1
            j += len(line) + 1
        pos += rendered - 1
    raise KeepProblem(f"{quoted(phrase)} is not text the rewrite writes (markup is kept anyway)")


def find_phrases(text: str, phrases: Sequence[str], start: int, end: int) -> list[tuple[int, int]]:
    """Each phrase's first occurrence in ``text[start:end]`` after the one before it (document offsets)."""
    out: list[tuple[int, int]] = []
    at = start
    for phrase in phrases:
        if not phrase.strip():
            raise KeepProblem("an empty or blank phrase cannot be kept")
        found = text.find(phrase, at, end)
        if found < 0:
            where = "after the phrase before it" if out and text.find(phrase, start, end) >= 0 else ""
            raise KeepProblem(
                f"{quoted(phrase)} is not in the text being rewritten{' ' + where if where else ''}"
            )
        out.append((found, found + len(phrase)))
        at = found + len(phrase)
    return out


def landed(replacement: str, phrases: Sequence[str]) -> list[tuple[int, int] | None]:
    """Where each kept phrase is in ``replacement``, in order (any whitespace in a phrase may have become a
    line break where a paragraph was re-wrapped); None for one not found."""
    out: list[tuple[int, int] | None] = []
    at = 0
    for phrase in phrases:
        pattern = r"\s+".join(re.escape(w) for w in phrase.split())
        match = re.compile(pattern).search(replacement, at) if pattern else None
        if match is None:
            out.append(None)
            continue
        out.append((match.start(), match.end()))
        at = match.end()
    return out


@dataclass
class KeepMarks:
    """The editor's kept spans (positions in whatever unit the caller uses), sorted, never overlapping, each
    with the text it marked (a span whose text changed is no longer a kept phrase)."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    texts: dict[tuple[int, int], str] = field(default_factory=dict)

    def toggle(self, start: int, end: int, text: str) -> bool:
        """Unmark the marks the span touches; if it touched none, mark it. True: marked."""
        if start >= end:
            return False
        touching = [s for s in self.spans if s[0] < end and start < s[1]]
        if touching:
            self._set([s for s in self.spans if s not in touching])
            return False
        self.texts[(start, end)] = text
        self._set([*self.spans, (start, end)])
        return True

    def within(self, start: int, end: int) -> list[tuple[int, int]]:
        return [s for s in self.spans if start <= s[0] and s[1] <= end]

    def remove_within(self, start: int, end: int) -> None:
        self._set([s for s in self.spans if not (start <= s[0] and s[1] <= end)])

    def add(self, spans: Sequence[tuple[tuple[int, int], str]]) -> None:
        """Mark ``(span, text)`` pairs that overlap no mark."""
        for span, text in spans:
            a, b = span
            if a < b and not any(t[0] < b and a < t[1] for t in self.spans):
                self.texts[span] = text
                self.spans.append(span)
        self._set(self.spans)

    def clear(self) -> None:
        self._set([])

    def still_marking(self, read: Callable[[int, int], str]) -> bool:
        """Drop the marks whose text ``read(start, end)`` no longer gives; True when any went."""
        keep = [s for s in self.spans if read(*s) == self.texts.get(s)]
        gone = len(keep) != len(self.spans)
        self._set(keep)
        return gone

    def apply_change(self, position: int, removed: int, added: int) -> bool:
        """Follow an edit of the text: marks after it shift, a mark it touches inside is dropped (its words
        changed). True when any mark moved or went. (Formatting only, ``removed == added`` over unchanged
        text, is no edit: see :meth:`still_marking`.)"""
        end = position + removed
        texts: dict[tuple[int, int], str] = {}
        changed = False
        for a, b in self.spans:
            if b <= position:
                texts[(a, b)] = self.texts.get((a, b), "")
            elif a >= end:
                texts[(a + added - removed, b + added - removed)] = self.texts.get((a, b), "")
                changed = changed or added != removed
            else:
                changed = True  # edited inside: the phrase is no longer the one marked
        self.texts = texts
        self.spans = sorted(texts)
        return changed

    def _set(self, spans: list[tuple[int, int]]) -> None:
        self.spans = sorted(spans)
        self.texts = {s: self.texts.get(s, "") for s in self.spans}
