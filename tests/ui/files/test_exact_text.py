"""Text goes into and out of the editor exactly (issue 11 item 3, UI side): through the real window, open ->
save is byte-identical, so is open -> edit -> undo -> save, and the recovery copy holds the exact text,
whatever the characters (U+00A0, U+2028, U+2029, U+FDD0, U+FDD1, every plane) and line endings."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtGui import QTextCursor
from pytestqt.qtbot import QtBot

from diffedit.document.storage import read_document
from diffedit.settings import Settings
from diffedit.ui.main_window import MainWindow
from tests.ui.conftest import WindowFactory
from tests.ui.fake_engine import FakeEngine, fake_loader, fake_rewrite_text

QT_SPECIAL = "\u00a0\u2028\u2029\ufdd0\ufdd1"
SPECIAL_CHARACTERS = QT_SPECIAL + "\ufeff\u0085\ufffe\uffff\U0010ffff\U0001f600\U000e0001\x0c\t"
NEWLINE_STYLES = {"lf": ["\n"], "crlf": ["\r\n"], "cr": ["\r"], "mixed": ["\n", "\r\n", "\r"]}


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[MainWindow]:
    w = MainWindow(Settings(), autoload_model=False)
    w.documents.confirm_discard = lambda: True  # type: ignore[method-assign]  # never a modal dialog
    w.show()
    yield w
    w.editor.document().setModified(False)
    w.bridge.shutdown()
    w.close()


def _line_text() -> st.SearchStrategy[str]:
    # Every plane; no surrogates (not encodable), no C0 controls but tab and form feed (binary, rightly).
    chars = st.one_of(st.characters(blacklist_categories=("Cs", "Cc")), st.sampled_from(SPECIAL_CHARACTERS))
    return st.text(chars, max_size=30)


@st.composite
def file_text(draw: st.DrawFn) -> str:
    endings = NEWLINE_STYLES[draw(st.sampled_from(sorted(NEWLINE_STYLES)))]
    out = [line + draw(st.sampled_from(endings)) for line in draw(st.lists(_line_text(), max_size=8))]
    out.append(draw(_line_text()))  # the last line, maybe empty
    return "".join(out) + draw(st.sampled_from(QT_SPECIAL))  # at least one character Qt rewrites


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=file_text())
def test_open_save_and_open_edit_undo_save_are_byte_identical(window: MainWindow, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.md"
        raw = text.encode("utf-8")
        path.write_bytes(raw)
        assert window.documents.open_path(path)
        assert window.documents.save()
        assert path.read_bytes() == raw

        cursor = QTextCursor(window.editor.document())
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText("replaced")
        assert window.editor.document().isModified()
        window.editor.undo()
        assert window.documents.save()
        assert path.read_bytes() == raw


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=file_text())
def test_the_recovery_copy_is_exact(window: MainWindow, text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "any.md"
        path.write_bytes(text.encode("utf-8"))
        assert window.documents.open_path(path)
        window.editor.document().setModified(True)  # as after an edit: a recovery copy is due
        assert window.documents.autosaver.save_now()
        (entry,) = window.documents.store.live_entries()
        assert entry.text == read_document(path).text
        window.documents.close()


@pytest.mark.parametrize("char", list(QT_SPECIAL))
def test_each_character_qt_rewrites_survives_open_and_save(
    window: MainWindow, tmp_path: Path, char: str
) -> None:
    raw = f"a{char}b\r\nc{char}\r\n".encode()
    path = tmp_path / "doc.md"
    path.write_bytes(raw)
    assert window.documents.open_path(path)
    assert window.documents.save()
    assert path.read_bytes() == raw


def test_a_rewrite_reads_and_commits_exact_text(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path
) -> None:
    engine = FakeEngine()
    w = make_window(fake_loader(engine), text=None)
    target = "Rewrite\u00a0this\u2028one\ufdd0please."
    before = "# Title\u00a0one\r\n\r\nKeep\u2029this\ufdd1 one.\r\n\r\n"
    after = "\r\n\r\nAfter\u2028the end\u00a0.\r\n"
    raw = (before + target + after).encode()
    path = tmp_path / "doc.md"
    path.write_bytes(raw)
    assert w.documents.open_path(path)
    start = w.documents.text().index(target)  # BMP only: Python index == Qt position
    cursor = w.editor.textCursor()
    cursor.setPosition(start)
    cursor.setPosition(start + len(target), QTextCursor.MoveMode.KeepAnchor)
    w.editor.setTextCursor(cursor)
    assert w.controller.start(replace(w.controller.options, instruction="shorter\u00a0\ufdd0\ufdd1"))
    qtbot.waitUntil(lambda: not w.controller.running, timeout=10_000)
    request = engine.jobs[-1].request
    assert request.target == target
    assert request.prefix == before.replace("\r\n", "\n") and request.suffix == after.replace("\r\n", "\n")
    replacement = fake_rewrite_text(target, "shorter\u00a0\ufdd0\ufdd1", engine.results[-1].seed)
    assert w.documents.save()
    assert path.read_bytes() == (before + replacement + after).encode()
    w.editor.undo()  # the rewrite, exactly
    assert w.documents.save()
    assert path.read_bytes() == raw
