"""Word count and outline, kept up to date without costing the typist: after a pause, a few ms at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

from PySide6.QtCore import QObject, QTimer, Signal

from diffedit.document.outline import Summary, scan
from diffedit.document.outline import run as run_scan

REFRESH_SLICE_S = 0.004  # word count and outline work per turn of the event loop


def refresh_delay_ms(size: int) -> int:
    """Outline and word count wait for a pause in typing; longer pauses for long documents."""
    return 300 if size < 200_000 else 900


class SummaryRefresher(QObject):
    """Emits ``ready(Summary)`` for the text ``text()`` returns; headings only while ``want_headings()``."""

    ready = Signal(object)  # Summary

    def __init__(
        self, text: Callable[[], str], want_headings: Callable[[], bool], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._text = text
        self._want_headings = want_headings
        self.job: Generator[None, None, Summary] | None = None
        self.timer = QTimer(self, singleShot=True)
        self.timer.timeout.connect(self.start)
        self.slice_timer = QTimer(self, singleShot=True, interval=0)
        self.slice_timer.timeout.connect(self.run_slice)

    def schedule(self, size: int) -> None:
        """The text changed: refresh after a pause in typing (what was under way is out of date)."""
        self.job = None
        self.timer.start(refresh_delay_ms(size))

    def refresh_now(self) -> None:
        """Word count and outline now, in one go (a new document; ~40 ms per MB)."""
        self.job = None
        self.ready.emit(run_scan(scan(self._text(), self._want_headings())))

    def start(self) -> None:
        """Word count and outline in slices of a few ms while the event loop runs."""
        self.job = scan(self._text(), self._want_headings())
        self.run_slice()

    def run_slice(self) -> None:
        job = self.job
        if job is None:
            return
        deadline = time.perf_counter() + REFRESH_SLICE_S
        try:
            while time.perf_counter() < deadline:
                next(job)
        except StopIteration as done:
            self.job = None
            self.ready.emit(done.value)
            return
        self.slice_timer.start()
