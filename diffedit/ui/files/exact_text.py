"""The one way document text enters and leaves a ``QTextDocument``: exact, whatever the characters.

``QtText`` (document/qt_text.py) maps the characters Qt would rewrite to private-use stand-ins the text does
not contain. The mapping belongs to the document's text, so it is kept on the ``QTextDocument`` itself (as
a property holding the stand-ins): every holder of the document (the file controller, the rewrite controller,
the editor) reads and writes through the same mapping. Undo restores the stand-ins, so it stays exact too.
"""

from __future__ import annotations

from PySide6.QtGui import QTextCursor, QTextDocument
from PySide6.QtWidgets import QPlainTextEdit

from diffedit.document.qt_text import LOST_ON_INSERT, QtText

_PROPERTY = "diffedit_qt_stand_ins"


def qt_text_of(document: QTextDocument) -> QtText:
    """The mapping of the text in ``document`` (no stand-ins before any text was set through here)."""
    stand_ins = document.property(_PROPERTY)
    if not isinstance(stand_ins, str) or len(stand_ins) != len(LOST_ON_INSERT):
        return QtText()
    return QtText(tuple(zip(LOST_ON_INSERT, stand_ins, strict=True)))


def set_editor_text(editor: QPlainTextEdit, text: str) -> None:
    """Put ``text`` into ``editor`` as a new document (undo history empty, caret at the start), with a fresh
    mapping."""
    mapping = QtText.for_text(text)
    editor.document().setProperty(_PROPERTY, "".join(stand_in for _, stand_in in mapping.stand_ins))
    editor.setPlainText(mapping.to_qt(text))


def document_text(document: QTextDocument) -> str:
    """The exact text of ``document`` with "\\n" line breaks (never ``toPlainText()``, which rewrites)."""
    return qt_text_of(document).from_qt(document.toRawText())


def selected_text(cursor: QTextCursor) -> str:
    """The exact text of ``cursor``'s selection with "\\n" line breaks."""
    return qt_text_of(cursor.document()).from_qt(cursor.selectedText())


def insert_text(cursor: QTextCursor, text: str) -> None:
    """Insert ``text`` at ``cursor`` (replacing its selection) so that it reads back exactly."""
    cursor.insertText(qt_text_of(cursor.document()).to_qt(text))
