"""Text through a real QTextDocument and back is exact with ``QtText``; ``toPlainText()`` is not."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffedit.document.qt_text import LOST_ON_INSERT, QtText

QtGui = pytest.importorskip("PySide6.QtGui")

SPECIAL = ["\u00a0", "\u2028", "\u2029", "\ufdd0", "\ufdd1"]


def _document(text: str) -> QtGui.QTextDocument:
    doc = QtGui.QTextDocument()
    doc.setPlainText(text)
    return doc


@pytest.mark.parametrize("char", SPECIAL)
def test_to_plain_text_loses_each_special_character_and_qt_text_keeps_it(qapp: object, char: str) -> None:
    text = f"a{char}b\nc\n"
    assert _document(text).toPlainText() != text  # what the editor used, and why it changed the file
    mapping = QtText.for_text(text)
    doc = _document(mapping.to_qt(text))
    assert mapping.from_qt(doc.toRawText()) == text
    blocks = []
    block = doc.begin()
    while block.isValid():
        blocks.append(block.text())
        block = block.next()
    assert mapping.from_qt("\u2029".join(blocks)) == text


def test_stand_ins_are_not_in_the_text_and_keep_positions() -> None:
    text = "".join(chr(c) for c in range(0xF8F0, 0xF8FF)) + "".join(LOST_ON_INSERT)
    mapping = QtText.for_text(text)
    assert all(stand_in not in text for _char, stand_in in mapping.stand_ins)
    assert len(mapping.to_qt(text).encode("utf-16-le")) == len(text.encode("utf-16-le"))
    assert mapping.from_qt(mapping.to_qt(text)) == text


_TEXT = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"),
        st.sampled_from([*SPECIAL, "\n", "\ufeff", "\U0010ffff"]),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXT, data=st.data())
def test_any_text_round_trips_through_qt_and_through_edit_then_undo(
    qapp: object, text: str, data: st.DataObject
) -> None:
    mapping = QtText.for_text(text)
    doc = _document(mapping.to_qt(text))
    assert mapping.from_qt(doc.toRawText()) == text
    # Positions are UTF-16 units on both sides: a selection reads back as the same slice of the text.
    units = len(text.encode("utf-16-le")) // 2
    start = data.draw(st.integers(0, units))
    cursor = QtGui.QTextCursor(doc)
    cursor.setPosition(start)
    cursor.insertText(mapping.to_qt(data.draw(_TEXT)))
    doc.undo()
    assert mapping.from_qt(doc.toRawText()) == text
