"""Opening a file that is not UTF-8: the dialog previews encodings; the choice sticks through a save."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from diffedit.document.storage import EncodingProblem, read_document, write_document
from diffedit.ui.files.encoding_dialog import EncodingChoice, EncodingDialog, open_with_encoding_choice

RAW = "\u201cSmart\u201d quotes \u2014 and caf\u00e9.\r\n".encode("cp1252")


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.md"
    path.write_bytes(RAW)
    return path


def problem_for(path: Path) -> EncodingProblem:
    with pytest.raises(EncodingProblem) as info:
        read_document(path)
    return info.value


def test_dialog_previews_the_best_guess_and_switches(qtbot: QtBot, legacy: Path) -> None:
    dialog = EncodingDialog(problem_for(legacy))
    qtbot.addWidget(dialog)
    assert dialog.encoding() == "cp1252"
    assert dialog.preview.toPlainText().startswith("\u201cSmart\u201d")
    assert dialog.open_button.text() == "Open as cp1252"
    dialog.select("latin-1")
    assert dialog.preview.toPlainText().startswith("\x93Smart")
    dialog.combo.setEditText("no-such-codec")
    assert not dialog.open_button.isEnabled()
    dialog.select("cp1252")
    dialog.read_only_button.click()
    assert dialog.choice == EncodingChoice("cp1252", read_only=True)


def test_open_as_cp1252_then_save_keeps_cp1252(legacy: Path) -> None:
    opened = open_with_encoding_choice(legacy, ask=lambda p, parent: EncodingChoice(p.guesses[0], False))
    assert opened is not None and not opened.read_only
    doc = opened.document
    write_document(legacy, doc.text.replace("caf\u00e9", "caf\u00e9s"), like=doc)
    assert legacy.read_bytes() == RAW.replace(b"caf\xe9", b"caf\xe9s")


def test_wrong_choice_asks_again_and_cancel_opens_nothing(tmp_path: Path) -> None:
    path = tmp_path / "odd.md"
    path.write_bytes(b"abc \x81 def\n")  # cp1252 cannot decode 0x81
    asked: list[list[str]] = []

    def ask(problem: EncodingProblem, parent: object) -> EncodingChoice | None:
        asked.append(problem.guesses)
        return EncodingChoice("cp1252", False) if len(asked) == 1 else None

    assert open_with_encoding_choice(path, ask=ask) is None
    assert len(asked) == 2


def test_read_only_look(legacy: Path) -> None:
    opened = open_with_encoding_choice(legacy, ask=lambda p, parent: EncodingChoice("utf-8", True))
    assert opened is not None and opened.read_only and opened.document.lossy


def test_utf8_files_open_without_asking(tmp_path: Path) -> None:
    path = tmp_path / "plain.md"
    path.write_text("fine\n", encoding="utf-8")

    def never(*_args: object) -> None:
        raise AssertionError("asked")

    opened = open_with_encoding_choice(path, ask=never)
    assert opened is not None and opened.document.text == "fine\n"
