"""Status bar: a badge while the demo model is in use, model and device, step k/N, tokens per forward,
speed, word count."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

from diffedit.ui.rewrite.controller import Progress

DEMO_EXPLAINED = (
    "diffedit's bundled demo model is in use: it shows how rewriting works and writes nonsense. "
    "For a real model, open Rewrite > Models… to download one or choose a folder you have."
)


class StatusPanel:
    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.demo = self._label("demoBadge", "Demo model")
        self.demo.setToolTip(DEMO_EXPLAINED)
        self.demo.setStyleSheet("QLabel { background: #fff3cd; color: #1e1e1e; padding: 0 6px; }")
        self.demo.hide()
        self.model = self._label("modelStatus", "Model: not loaded")
        self.step = self._label("stepStatus", "")
        self.tpf = self._label("tpfStatus", "")
        self.speed = self._label("speedStatus", "")
        self.words = self._label("wordStatus", "0 words")

    def _label(self, name: str, text: str) -> QLabel:
        label = QLabel(text, self.bar)
        label.setObjectName(name)
        self.bar.addPermanentWidget(label)
        return label

    def set_demo(self, on: bool) -> None:
        self.demo.setVisible(on)

    def set_model(self, text: str) -> None:
        self.model.setText(text)

    def set_loading(self, text: str) -> None:
        self.step.setText(text)
        self.tpf.setText("")
        self.speed.setText("")

    def clear_run(self) -> None:
        """The last run's figures go with it (Esc, Undo, another document)."""
        for label in (self.step, self.tpf, self.speed):
            label.setText("")

    def set_words(self, count: int) -> None:
        self.words.setText(f"{count:,} words")

    def set_progress(self, p: Progress) -> None:
        self.step.setText(f"Step {p.step}/{p.total_steps}" if p.total_steps else f"Step {p.step}")
        if p.tokens_per_forward is not None:
            self.tpf.setText(f"{p.tokens_per_forward:.2f} tok/forward")
        self.speed.setText(f"{p.tokens_per_s:.1f} tok/s" if p.elapsed_s > 0 else "")
