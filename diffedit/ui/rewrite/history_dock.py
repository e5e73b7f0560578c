"""The history dock: every committed rewrite; select one to jump to it, Replay to watch it denoise again."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QPalette
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
from diffedit.ui.rewrite.controller import blocks_phrase


def entry_label(entry: HistoryEntry[Any]) -> str:
    """Two lines: when, which blocks, what was asked; then the run's figures."""
    return (
        f"{entry.when:%H:%M:%S} · {blocks_phrase(entry.blocks)} · {entry.what}\n"
        f"{entry.steps} steps · {entry.tokens_per_forward:.1f} tok/forward · {entry.seconds:.1f} s"
    )


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
        item = QListWidgetItem(entry_label(entry))
        item.setData(Qt.ItemDataRole.UserRole, entry_label(entry))
        item.setToolTip(f"Model {entry.model}, seed {entry.seed}\n\n{entry.replacement[:400]}")
        self.list.addItem(item)
        self.list.setCurrentItem(item)

    def clear(self) -> None:
        self.list.clear()

    def set_undone(self, row: int, undone: bool) -> None:
        """An undone rewrite stays listed (it can be redone) but struck through and named so."""
        item = self.list.item(row)
        if item is None:
            return
        label = item.data(Qt.ItemDataRole.UserRole)
        item.setText(f"{label} · undone" if undone else label)
        font = item.font()
        font.setStrikeOut(undone)
        item.setFont(font)
        item.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText) if undone else QBrush())

    def _replay(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.replayRequested.emit(row)
