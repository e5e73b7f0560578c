"""Inline bars under the editor: the next rewrite's options, and the review after a commit."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

FREE_FORM_TIP = "Let the model restructure the blocks: off keeps each block's kind, markers and length"
INSTRUCTION_HINT = "Instruction (optional), e.g. “make it shorter” — Ctrl+I"


def no_instruction_note(model: str) -> str:
    return f"{model} cannot follow instructions: it rewrites from the text around the target"


class RewriteBar(QFrame):
    """Instruction, strength, step budget and Free form for the next run, plus Rewrite / Stop."""

    rewriteRequested = Signal()
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("rewriteBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        self.instruction = QLineEdit(self)
        self.instruction.setObjectName("instruction")
        self.instruction.setPlaceholderText(INSTRUCTION_HINT)
        self.instruction.setClearButtonEnabled(True)
        self.instruction.setMinimumWidth(200)  # "make it shorter" stays readable at any window size
        self.instruction.returnPressed.connect(self.rewriteRequested)
        self.strength = QSlider(Qt.Orientation.Horizontal, self)
        self.strength.setObjectName("strength")
        self.strength.setRange(10, 100)
        self.strength.setSingleStep(5)
        self.strength.setFixedWidth(80)  # narrow enough that the bar, Free form included, fits 800 px
        self.strength.setToolTip("Strength: low refines the original, high writes afresh")
        self.strength_label = QLabel(self)
        self.strength_label.setMinimumWidth(30)
        self.strength.valueChanged.connect(lambda v: self.strength_label.setText(f"{v / 100:.1f}"))
        self.steps = QSpinBox(self)
        self.steps.setObjectName("steps")
        self.steps.setRange(1, 256)
        self.steps.setSuffix(" steps")
        self.steps.setToolTip("Most denoising steps per canvas (the model may settle sooner)")
        self.free_form = QCheckBox("Free form", self)
        self.free_form.setObjectName("freeForm")
        self.free_form.setToolTip(FREE_FORM_TIP)
        self.run_button = QPushButton("Rewrite", self)
        self.run_button.setObjectName("rewriteButton")
        self.run_button.setToolTip("Rewrite the selected blocks (Ctrl+R)")
        self.run_button.clicked.connect(self.rewriteRequested)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop and keep the original (Esc)")
        self.stop_button.clicked.connect(self.stopRequested)
        self.stop_button.setEnabled(False)
        lay.addWidget(self.instruction, 1)
        lay.addWidget(QLabel("Refine", self))
        lay.addWidget(self.strength)
        lay.addWidget(QLabel("Afresh", self))
        lay.addWidget(self.strength_label)
        lay.addWidget(self.steps)
        lay.addWidget(self.free_form)
        lay.addWidget(self.run_button)
        lay.addWidget(self.stop_button)
        self.set_values(24, 1.0)

    def set_values(self, steps: int, strength: float) -> None:
        self.steps.setValue(steps)
        self.strength.setValue(round(strength * 100))
        self.strength_label.setText(f"{strength:.1f}")

    def strength_value(self) -> float:
        return self.strength.value() / 100

    def set_follows_instructions(self, follows: bool, model: str) -> None:
        """An infill model has no place for an instruction: the field says so instead of taking one."""
        note = no_instruction_note(model)
        self.instruction.setPlaceholderText(
            INSTRUCTION_HINT if follows else f"{note} (instructions are ignored)"
        )
        self.instruction.setToolTip("" if follows else note)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def focus_instruction(self) -> None:
        self.show()
        self.instruction.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.instruction.selectAll()


class ReviewBar(QFrame):
    """Shown after a commit: Keep, Undo, Try again."""

    keepRequested = Signal()
    undoRequested = Signal()
    retryRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 3, 6, 3)
        self.label = QLabel(self)
        self.keep_button = QPushButton("Keep", self)
        self.keep_button.setObjectName("keepButton")
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.setObjectName("undoButton")
        self.retry_button = QPushButton("Try again", self)
        self.retry_button.setObjectName("retryButton")
        self.retry_button.setToolTip("Undo and rewrite again with a new seed")
        self.keep_button.clicked.connect(self.keepRequested)
        self.undo_button.clicked.connect(self.undoRequested)
        self.retry_button.clicked.connect(self.retryRequested)
        lay.addWidget(self.label, 1)
        for b in (self.keep_button, self.undo_button, self.retry_button):
            lay.addWidget(b)
        self.hide()

    def offer(self, message: str) -> None:
        self.label.setText(message)
        self.show()
