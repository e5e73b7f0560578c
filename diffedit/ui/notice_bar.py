"""One line of news under the editor, for every room: info fades after a while, errors stay until closed."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget


class NoticeBar(QFrame):
    """One line of news: info fades after a while, errors stay until closed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noticeBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        self.label = QLabel(self)
        self.label.setObjectName("noticeText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setObjectName("noticeClose")
        close.setToolTip("Close")
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.hide)
        self.level = ""
        self.hide()

    def notify(self, level: str, message: str) -> None:
        self.level = level
        self.label.setText(message)
        error = level == "error"
        self.setStyleSheet(
            "QFrame#noticeBar { background: %s; }" % ("#f8d7da" if error else "#fff3cd")
            + " QLabel#noticeText, QToolButton#noticeClose { color: #1e1e1e; }"
        )
        self.show()
        self._timer.stop()
        if not error:
            self._timer.start(8000)
