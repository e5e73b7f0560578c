"""Draft Sections' widgets: the dialog that chooses sections and length, and the bar shown while drafting."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diffedit.document.drafts import Section
from diffedit.rewrites import DRAFT_LENGTHS
from diffedit.ui.rewrite.draft_controller import DraftOptions, DraftState

LENGTH_NAMES = {"short": "Short", "medium": "Medium", "long": "Long (several canvases)"}


class DraftDialog(QDialog):
    """Which sections to draft (the empty ones are ticked), how many blocks each, and how long."""

    def __init__(self, found: list[Section], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Draft Sections")
        self.found = found
        lay = QVBoxLayout(self)
        intro = QLabel(
            "The model writes the ticked sections in order, one block at a time, reading the document so far "
            "and the rest of the outline. Each block is one undo step; headings and notes stay as they are.",
            self,
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.list = QListWidget(self)
        self.list.setObjectName("draftSections")
        for s in found:
            state = "" if s.empty else "  (has text)"
            item = QListWidgetItem(f"{'    ' * (s.level - 1)}{s.number}. {s.title or '(untitled)'}{state}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            ticked = s.drafted_by_default
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        lay.addWidget(self.list, 1)
        form = QFormLayout()
        self.blocks = QSpinBox(self)
        self.blocks.setObjectName("draftBlocks")
        self.blocks.setRange(1, 8)
        self.blocks.setToolTip("Paragraphs to draft under each section, each its own block and undo step")
        self.length = QComboBox(self)
        self.length.setObjectName("draftLength")
        for key, tokens in DRAFT_LENGTHS.items():
            self.length.addItem(f"{LENGTH_NAMES[key]}, about {tokens} tokens", key)
        self.length.setCurrentIndex(list(DRAFT_LENGTHS).index("medium"))
        form.addRow("Blocks per section", self.blocks)
        form.addRow("Block length", self.length)
        lay.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Draft")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(460, 420)

    def chosen(self) -> tuple[Section, ...]:
        return tuple(
            s for i, s in enumerate(self.found) if self.list.item(i).checkState() == Qt.CheckState.Checked
        )

    def options(self, steps: int | None = None) -> DraftOptions:
        return DraftOptions(self.chosen(), self.blocks.value(), str(self.length.currentData()), steps)


class DraftBar(QFrame):
    """Shown while drafting: where the draft is, and Skip / Redraft / Stop."""

    skipRequested = Signal()
    redraftRequested = Signal()
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("draftBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        self.label = QLabel(self)
        self.skip_button = QPushButton("Skip", self)
        self.skip_button.setObjectName("draftSkip")
        self.skip_button.setToolTip("Leave this section as it is and go on with the next")
        self.redraft_button = QPushButton("Redraft", self)
        self.redraft_button.setObjectName("draftRedraft")
        self.redraft_button.setToolTip("Take back this section's drafted blocks and draft it again")
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("draftStop")
        self.stop_button.setToolTip("Stop: the blocks drafted so far stay, the running one goes (Esc)")
        self.skip_button.clicked.connect(self.skipRequested)
        self.redraft_button.clicked.connect(self.redraftRequested)
        self.stop_button.clicked.connect(self.stopRequested)
        lay.addWidget(self.label, 1)
        for b in (self.skip_button, self.redraft_button, self.stop_button):
            lay.addWidget(b)
        self.hide()

    def show_state(self, state: DraftState | None) -> None:
        if state is None:
            self.hide()
            return
        self.label.setText(state.describe())
        self.show()
