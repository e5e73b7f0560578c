"""Preferences: splitting a model between the GPU and RAM (``"offload"`` in the settings file, issue 16)."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from diffedit.settings import Settings
from diffedit.ui.dialogs import PreferencesDialog


def test_the_split_choice_is_a_checkbox_saved_as_offload(qtbot: QtBot) -> None:
    dialog = PreferencesDialog(Settings())
    qtbot.addWidget(dialog)
    assert dialog.offload.isChecked()  # auto by default: split only where the weights do not fit the GPU
    dialog.offload.setChecked(False)
    assert dialog.collected().offload == "none"
    again = PreferencesDialog(Settings(offload="none"))
    qtbot.addWidget(again)
    assert not again.offload.isChecked() and again.collected().offload == "none"


def test_an_unknown_offload_value_in_the_settings_file_is_the_default() -> None:
    assert Settings.from_dict({"offload": "sometimes"}).offload == "auto"
    assert Settings.from_dict({"offload": "none"}).offload == "none"
