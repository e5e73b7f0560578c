"""Text into and out of Qt's text model without losing a character. Pure Python; no Qt.

What Qt does (PySide6 6.11, checked by tests/document/test_qt_text.py):

* ``QTextDocument.toPlainText()`` rewrites U+00A0 (no-break space) as a space and U+2028 (line separator) as
  "\\n". ``toRawText()``, ``QTextBlock.text()`` and ``QTextCursor.selectedText()`` keep both; in the raw
  text and a selection, block breaks are U+2029.
* Inserting U+2029, U+FDD0 or U+FDD1 (``setPlainText``, ``insertText``) makes each a block break, the same as
  "\\n": no read-back can tell them apart any more. So they must not reach Qt as themselves.

``QtText`` maps those three to private-use characters the text does not contain (one UTF-16 unit for one,
so positions stay the same) on the way in, and maps back on the way out, where it also turns block breaks
into "\\n". Text from ``from_qt`` equals the text given to ``to_qt``, whatever the characters.
"""

from __future__ import annotations

from dataclasses import dataclass

QT_BLOCK_BREAK = "\u2029"
"""What a block break is in ``toRawText()``, ``selectedText()`` and ``characterAt()``."""

LOST_ON_INSERT = ("\u2029", "\ufdd0", "\ufdd1")
"""Characters Qt turns into block breaks when they are inserted."""

_STAND_IN_RANGE = range(0xF8FE, 0xE000, -1)  # the private-use area, from its end (U+F8FF is Apple's logo)


@dataclass(frozen=True)
class QtText:
    """The mapping for one document: build it with ``QtText.for_text(text)`` when the text is loaded."""

    stand_ins: tuple[tuple[str, str], ...] = ()
    """(character, private-use stand-in) for each of LOST_ON_INSERT."""

    @classmethod
    def for_text(cls, text: str) -> QtText:
        """A mapping whose stand-ins do not occur in ``text`` (so mapping back is exact)."""
        used = set(text)
        free = (chr(c) for c in _STAND_IN_RANGE if chr(c) not in used)
        return cls(tuple((char, next(free)) for char in LOST_ON_INSERT))

    def to_qt(self, text: str) -> str:
        """``text`` as it must be given to ``setPlainText`` / ``insertText``."""
        return text.translate({ord(char): stand_in for char, stand_in in self.stand_ins})

    def from_qt(self, raw: str) -> str:
        """The document's text from ``toRawText()``, a selection's ``selectedText()``, or block texts joined
        with U+2029: block breaks become "\\n", stand-ins their characters. Never use ``toPlainText()``."""
        table = {ord(QT_BLOCK_BREAK): "\n"} | {ord(stand_in): char for char, stand_in in self.stand_ins}
        return raw.translate(table)
