"""Find and replace: a bar above the editor (Ctrl+F / Ctrl+H), next/previous, replace, replace all."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor, QTextDocument
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)


class FindBar(QFrame):
    closed = Signal()

    def __init__(self, editor: QPlainTextEdit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.setObjectName("findBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 3, 6, 3)
        self.find_edit = QLineEdit(self)
        self.find_edit.setObjectName("findText")
        self.find_edit.setPlaceholderText("Find")
        self.replace_edit = QLineEdit(self)
        self.replace_edit.setObjectName("replaceText")
        self.replace_edit.setPlaceholderText("Replace with")
        self.case = QCheckBox("Match case", self)
        self.status = QLabel(self)
        # A fixed width for the longest report, so "18 replaced" appearing does not squeeze the fields.
        self.status.setFixedWidth(self.status.fontMetrics().horizontalAdvance("00000 replaced") + 8)
        prev_b = QPushButton("Previous", self)
        next_b = QPushButton("Next", self)
        rep_b = QPushButton("Replace", self)
        all_b = QPushButton("Replace all", self)
        close_b = QPushButton("Close", self)
        grid.addWidget(self.find_edit, 0, 0)
        grid.addWidget(prev_b, 0, 1)
        grid.addWidget(next_b, 0, 2)
        grid.addWidget(self.case, 0, 3)
        grid.addWidget(self.status, 0, 4)
        grid.addWidget(close_b, 0, 5)
        grid.addWidget(self.replace_edit, 1, 0)
        grid.addWidget(rep_b, 1, 1)
        grid.addWidget(all_b, 1, 2)
        grid.setColumnStretch(0, 1)
        prev_b.clicked.connect(self.find_previous)
        next_b.clicked.connect(self.find_next)
        rep_b.clicked.connect(self.replace)
        all_b.clicked.connect(self.replace_all)
        close_b.clicked.connect(self.close_bar)
        self.find_edit.returnPressed.connect(self.find_next)
        self.replace_edit.returnPressed.connect(self.replace)
        self._replace_widgets = (self.replace_edit, rep_b, all_b)
        self.hide()

    def open(self, replace: bool = False) -> None:
        selected = self.editor.textCursor().selectedText()
        if selected and "\u2029" not in selected:
            self.find_edit.setText(selected)
        for w in self._replace_widgets:
            w.setVisible(replace)
        self.show()
        self.find_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.find_edit.selectAll()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close_bar()
        else:
            super().keyPressEvent(event)

    def close_bar(self) -> None:
        self.hide()
        self.editor.setFocus()
        self.closed.emit()

    def _flags(self, backward: bool = False) -> QTextDocument.FindFlag:
        flags = QTextDocument.FindFlag(0)
        if self.case.isChecked():
            flags |= QTextDocument.FindFlag.FindCaseSensitively
        if backward:
            flags |= QTextDocument.FindFlag.FindBackward
        return flags

    def _find(self, backward: bool) -> bool:
        needle = self.find_edit.text()
        if not needle:
            return False
        doc = self.editor.document()
        cursor = self.editor.textCursor()
        found = doc.find(needle, cursor, self._flags(backward))
        if found.isNull():  # wrap around
            start = QTextCursor(doc)
            if backward:
                start.movePosition(QTextCursor.MoveOperation.End)
            found = doc.find(needle, start, self._flags(backward))
        if found.isNull():
            self.status.setText("Not found")
            return False
        self.status.setText("")
        self.editor.setTextCursor(found)
        return True

    def find_next(self) -> bool:
        return self._find(backward=False)

    def find_previous(self) -> bool:
        return self._find(backward=True)

    def _matches(self, text: str) -> bool:
        needle = self.find_edit.text()
        return text == needle if self.case.isChecked() else text.lower() == needle.lower()

    def replace(self) -> bool:
        """Replace the current match (if the selection is one) and move to the next."""
        cursor = self.editor.textCursor()
        if cursor.hasSelection() and self._matches(cursor.selectedText()):
            cursor.insertText(self.replace_edit.text())
        return self.find_next()

    def replace_all(self) -> int:
        """Replace every match as one undo step; returns how many."""
        needle = self.find_edit.text()
        if not needle:
            return 0
        doc = self.editor.document()
        count = 0
        edit = QTextCursor(doc)
        edit.beginEditBlock()
        found = doc.find(needle, 0, self._flags())
        while not found.isNull():
            found.insertText(self.replace_edit.text())
            count += 1
            found = doc.find(needle, found, self._flags())
        edit.endEditBlock()
        self.status.setText(f"{count} replaced")
        return count
