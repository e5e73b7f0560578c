"""The history dock: every committed rewrite; select one to jump to it, Replay to watch it denoise again."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.history import HistoryEntry


class HistoryDock(QDockWidget):
    """Every committed rewrite; select to jump, Replay to watch its denoising again."""

    entrySelected = Signal(int)
    replayRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("History", parent)
        self.setObjectName("historyDock")
        body = QWidget(self)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(2, 2, 2, 2)
        self.list = QListWidget(body)
        self.list.setObjectName("historyList")
        self.list.itemClicked.connect(lambda item: self.entrySelected.emit(self.list.row(item)))
        self.list.itemActivated.connect(lambda item: self.entrySelected.emit(self.list.row(item)))
        buttons = QHBoxLayout()
        self.replay_button = QPushButton("Replay", body)
        self.replay_button.setObjectName("replayButton")
        self.replay_button.clicked.connect(self._replay)
        buttons.addStretch(1)
        buttons.addWidget(self.replay_button)
        lay.addWidget(self.list, 1)
        lay.addLayout(buttons)
        self.setWidget(body)

    def add_entry(self, entry: HistoryEntry[Any]) -> None:
        item = QListWidgetItem(entry.label())
        item.setToolTip(f"Model {entry.model}, seed {entry.seed}\n\n{entry.replacement[:400]}")
        self.list.addItem(item)
        self.list.setCurrentItem(item)

    def _replay(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.replayRequested.emit(row)
