"""The outline dock: the document's headings as a tree; activating one jumps there."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Signal
from PySide6.QtWidgets import QDockWidget, QTreeWidget, QTreeWidgetItem, QTreeWidgetItemIterator, QWidget

from diffedit.document.outline import Heading

Key = tuple[int, str]  # (level, title): what an outline item shows and where it nests


class OutlineDock(QDockWidget):
    """Headings as a tree; activating one jumps there (Python offset into the text).

    Refreshing after an edit touches only the items that changed: a 1 MB document has thousands of
    headings, and rebuilding them all costs ~25 ms. Items hold no offsets (every edit moves the offsets
    of all the headings after it); an activated item's place in the tree finds its heading instead.
    """

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
        self._keys: list[Key] = []
        self._headings: list[Heading] = []

    def set_headings(self, headings: list[Heading]) -> None:
        keys = [(h.level, h.title) for h in headings]
        self._headings = headings
        if keys != self._keys:
            selected = self.tree.currentItem()
            self._sync(self.tree.invisibleRootItem(), self._keys, keys)
            self._keys = keys
            if selected is not None and selected.treeWidget() is None:
                # Its heading is gone: Qt would move the selection to a neighbour the user never chose.
                self.tree.blockSignals(True)
                self.tree.setCurrentIndex(QModelIndex())
                self.tree.clearSelection()
                self.tree.blockSignals(False)

    def _sync(self, parent: QTreeWidgetItem, old: list[Key], new: list[Key]) -> None:
        """Make ``parent``'s subtrees, built from ``old`` (pre-order keys), match ``new``."""
        old_groups, new_groups = _groups(old), _groups(new)
        same = 0
        while same < min(len(old_groups), len(new_groups)) and old_groups[same] == new_groups[same]:
            same += 1
        tail = 0
        while (
            tail < min(len(old_groups), len(new_groups)) - same
            and old_groups[-1 - tail] == new_groups[-1 - tail]
        ):
            tail += 1
        old_mid = old_groups[same : len(old_groups) - tail]
        new_mid = new_groups[same : len(new_groups) - tail]
        if len(old_mid) == len(new_mid) == 1 and old_mid[0][0] == new_mid[0][0]:
            child = parent.child(same)
            if child is not None:  # the same heading, something changed under it
                had_children = child.childCount() > 0
                self._sync(child, list(old_mid[0][1:]), list(new_mid[0][1:]))
                if not had_children:
                    _expand(child)
                return
        for _ in old_mid:
            parent.takeChild(same)
        items = [_build(group) for group in new_mid]
        parent.insertChildren(same, items)
        for item in items:
            _expand(item)

    def _activated(self, item: QTreeWidgetItem) -> None:
        index = 0
        it = QTreeWidgetItemIterator(self.tree)
        while (current := it.value()) is not None and current is not item:
            index += 1
            it += 1
        if current is not None and index < len(self._headings):
            self.headingActivated.emit(self._headings[index].offset)


def _groups(keys: list[Key]) -> list[tuple[Key, ...]]:
    """``keys`` (pre-order) cut into top-level subtrees: a heading nests under the nearest one before it
    with a lower level, so a new subtree starts at every heading no deeper than all the ones before it."""
    groups: list[tuple[Key, ...]] = []
    start = 0
    lowest = 1 << 30
    for i, (level, _title) in enumerate(keys):
        if level <= lowest:
            if i:
                groups.append(tuple(keys[start:i]))
            start, lowest = i, level
    if keys:
        groups.append(tuple(keys[start:]))
    return groups


def _build(group: tuple[Key, ...]) -> QTreeWidgetItem:
    item = QTreeWidgetItem([group[0][1] or "(untitled)"])
    for sub in _groups(list(group[1:])):
        item.addChild(_build(sub))
    return item


def _expand(item: QTreeWidgetItem) -> None:
    if item.childCount():
        item.setExpanded(True)
        for i in range(item.childCount()):
            child = item.child(i)
            if child is not None:
                _expand(child)
