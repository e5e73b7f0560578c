"""Spans of text for the confidence view and the polish review: chunks to read, words that changed."""

from __future__ import annotations

import difflib
import re

_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_WORD = re.compile(r"\S+")


def chunk_spans(text: str, start: int, end: int, max_chars: int = 1200) -> list[tuple[int, int]]:
    """``text[start:end]`` cut at blank lines into spans of whole paragraphs, about ``max_chars`` at most
    each (a longer paragraph is a span of its own: the engine reads it canvas after canvas). Blank lines
    between two spans belong to neither. Cheap on a 1 MB text: one regular-expression scan, no parse."""
    paragraphs: list[tuple[int, int]] = []
    a = start
    for m in _BLANK_LINES.finditer(text, start, end):
        if text[a : m.start()].strip():
            paragraphs.append((a, m.start()))
        a = m.end()
    if text[a:end].strip():
        paragraphs.append((a, end))
    out: list[tuple[int, int]] = []
    for a, b in paragraphs:
        a += len(text[a:b]) - len(text[a:b].lstrip("\n"))  # no leading newlines
        b -= len(text[a:b]) - len(text[a:b].rstrip())  # nor trailing whitespace
        if out and b - out[-1][0] <= max_chars:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def changed_words(old: str, new: str) -> list[tuple[int, int]]:
    """Character spans in ``new`` of the words that differ from ``old`` (a word-level diff)."""
    a = [m.group() for m in _WORD.finditer(old)]
    b_matches = list(_WORD.finditer(new))
    b = [m.group() for m in b_matches]
    out: list[tuple[int, int]] = []
    for tag, _i1, _i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag in ("replace", "insert") and j1 < j2:
            out.append((b_matches[j1].start(), b_matches[j2 - 1].end()))
    return out
