"""Dock widgets: the outline of headings and the history of committed regenerations."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.history import HistoryEntry
from diffedit.document.outline import Heading


class OutlineDock(QDockWidget):
    """Headings as a tree; activating one jumps there (Python offset into the text)."""

    headingActivated = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Outline", parent)
        self.setObjectName("outlineDock")
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setObjectName("outlineTree")
        self.tree.itemActivated.connect(self._activated)
        self.tree.itemClicked.connect(self._activated)
        self.setWidget(self.tree)
        self._last: list[tuple[int, str]] = []

    def set_headings(self, headings: list[Heading]) -> None:
        key = [(h.level, h.title) for h in headings]
        offsets_only = key == self._last
        self._last = key
        if offsets_only:  # same structure: keep the tree (and its expansion), refresh the offsets
            items = self._items()
            for item, h in zip(items, headings, strict=False):
                item.setData(0, Qt.ItemDataRole.UserRole, h.offset)
            return
        self.tree.clear()
        stack: list[tuple[int, QTreeWidgetItem]] = []
        for h in headings:
            while stack and stack[-1][0] >= h.level:
                stack.pop()
            parent = stack[-1][1] if stack else self.tree.invisibleRootItem()
            item = QTreeWidgetItem(parent, [h.title or "(untitled)"])
            item.setData(0, Qt.ItemDataRole.UserRole, h.offset)
            stack.append((h.level, item))
        self.tree.expandAll()

    def _items(self) -> list[QTreeWidgetItem]:
        out: list[QTreeWidgetItem] = []

        def walk(item: QTreeWidgetItem) -> None:
            for i in range(item.childCount()):
                child = item.child(i)
                if child is not None:
                    out.append(child)
                    walk(child)

        walk(self.tree.invisibleRootItem())
        return out

    def _activated(self, item: QTreeWidgetItem) -> None:
        self.headingActivated.emit(int(item.data(0, Qt.ItemDataRole.UserRole)))


class HistoryDock(QDockWidget):
    """Every committed regeneration; select to jump, Replay to watch its denoising again."""

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

    def add_entry(self, entry: HistoryEntry) -> None:
        item = QListWidgetItem(entry.label())
        item.setToolTip(f"Model {entry.model}, seed {entry.seed}\n\n{entry.replacement[:400]}")
        self.list.addItem(item)
        self.list.setCurrentItem(item)

    def _replay(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.replayRequested.emit(row)
