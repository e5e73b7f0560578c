"""View > Confidence: the model's probability of each token of existing text, shaded in place.

The reading runs on the worker (``EngineBridge.inspect``), chunk after chunk of whole paragraphs; each chunk
is shaded as it arrives, so a whole document fills in progressively while the user types. Only what is
on screen is painted (an overlay over the editor's viewport), so a 1 MB document costs no more per paint
than a short one. An edit cancels the reading and drops the readings from the edit on; after a pause the
reading resumes from there. The scale is cividis (blue to yellow, readable with every colour-vision
deficiency and in greyscale); hovering a token shows its probability and the model's alternatives.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor, QPainter, QPaintEvent, QTextCursor
from PySide6.QtWidgets import QLabel, QMenu, QToolTip, QWidget

from diffedit.document.spans import chunk_spans
from diffedit.document.textpos import from_utf16, utf16_len
from diffedit.engine.types import TokenReading
from diffedit.ui.editing.editor import MarkdownEditor
from diffedit.worker import EngineBridge, ReadChunk

# cividis at five points, low probability (dark blue) to high (yellow); upper bounds of p for each bin
SCALE: tuple[tuple[float, str], ...] = (
    (0.1, "#00224e"),
    (0.3, "#434e6c"),
    (0.5, "#7d7c78"),
    (0.8, "#bcaf6f"),
    (1.01, "#fee838"),
)
SHADE_ALPHA = (150, 130, 110, 80, 40)  # per bin: the likely tokens, most of any text, only tinted
RESUME_AFTER_MS = 800  # a pause in typing before the reading resumes
CHUNK_CHARS = 500  # about one canvas of the demo model: the shading fills in steadily


def bin_of(p: float) -> int:
    return next(i for i, (upper, _) in enumerate(SCALE) if p < upper)


def shade(p: float) -> QColor:
    i = bin_of(p)
    color = QColor(SCALE[i][1])
    color.setAlpha(SHADE_ALPHA[i])
    return color


def visible_part(text: str) -> tuple[int, int] | None:
    """The part of a token's text to shade (offsets in it): its characters without the whitespace around
    them, up to a line break; None for a token of whitespace alone (a paragraph break is not shaded)."""
    stripped = text.strip()
    if not stripped:
        return None
    a = len(text) - len(text.lstrip())
    line = stripped.split("\n", 1)[0].rstrip()
    return a, a + len(line)


def tooltip_text(text: str, r: TokenReading) -> str:
    alternatives = ", ".join(f"“{t}” {q:.2f}" for t, q in r.top if t != text)
    return f"“{text}”: p = {r.p:.3f}, entropy {r.entropy:.2f} nats\nAlternatives: {alternatives or '—'}"


@dataclass
class Readings:
    """Token readings in document order, with their Qt spans (sorted, never overlapping)."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    readings: list[TokenReading] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def add(self, start: int, end: int, reading: TokenReading, text: str) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.readings.append(reading)
        self.texts.append(text)

    def drop_from(self, position: int) -> None:
        """Forget every reading that ends after ``position`` (an edit there made them stale)."""
        i = bisect.bisect_right(self.ends, position)
        del self.starts[i:], self.ends[i:], self.readings[i:], self.texts[i:]

    def at(self, position: int) -> int | None:
        i = bisect.bisect_right(self.starts, position) - 1
        return i if i >= 0 and position < self.ends[i] else None

    def visible(self, first: int, last: int) -> range:
        return range(bisect.bisect_right(self.ends, first), bisect.bisect_right(self.starts, last))

    def __len__(self) -> int:
        return len(self.starts)


class _Shade(QWidget):
    """Transparent to the mouse, over the viewport: paints the visible tokens' shades."""

    def __init__(self, view: ConfidenceView) -> None:
        super().__init__(view.editor.viewport())
        self.view = view
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)

    def paintEvent(self, event: QPaintEvent) -> None:
        data, editor = self.view.data, self.view.editor
        if not len(data):
            return
        first = editor.cursorForPosition(QPoint(0, 0)).position()
        last = editor.cursorForPosition(QPoint(self.width(), self.height())).position()
        painter = QPainter(self)
        doc = editor.document()
        cursor = QTextCursor(doc)
        for i in data.visible(first, last):
            part = visible_part(data.texts[i])
            if part is None:
                continue
            text = data.texts[i]
            cursor.setPosition(data.starts[i] + utf16_len(text[: part[0]]))
            a = editor.cursorRect(cursor)
            cursor.setPosition(data.starts[i] + utf16_len(text[: part[1]]))
            b = editor.cursorRect(cursor)
            color = shade(data.readings[i].p)
            if a.top() == b.top():
                painter.fillRect(QRect(a.left(), a.top(), max(2, b.left() - a.left()), a.height()), color)
            else:  # wrapped across lines: the end of the first line and the start of the last
                painter.fillRect(QRect(a.left(), a.top(), self.width() - a.left(), a.height()), color)
                painter.fillRect(QRect(0, b.top(), b.left(), b.height()), color)
        painter.end()


class ConfidenceView(QObject):
    """Owns one reading at a time: its scope, its readings, the overlay, the legend and the tooltip."""

    status = Signal(str)  # a line for the status bar

    def __init__(self, editor: MarkdownEditor, bridge: EngineBridge, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.editor = editor
        self.bridge = bridge
        self.data = Readings()
        self.scope: tuple[int, int] | None = None  # Qt positions being shaded; None: off
        self._job: int | None = None
        self._text = ""  # the text the running reading reads (Python str)
        self._spans: list[tuple[int, int]] = []
        self._cursor = (0, 0)  # (Python offset, Qt position) of the last chunk converted: no O(n) per chunk
        self._shade = _Shade(self)
        self._shade.hide()
        self.legend = QLabel(editor)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setAutoFillBackground(True)
        self.legend.hide()
        self._resume = QTimer(self, singleShot=True, interval=RESUME_AFTER_MS)
        self._resume.timeout.connect(self._read_rest)
        editor.viewport().installEventFilter(self)
        editor.updateRequest.connect(lambda *_: self._shade.update())
        editor.document().contentsChange.connect(self._on_contents_change)
        bridge.chunkRead.connect(self._on_chunk)
        bridge.inspectEnded.connect(self._on_ended)
        self.menu = QMenu("&Confidence", editor)
        self.act_block = self._action("Current &Block", lambda: self.show_scope("block"), "Ctrl+Alt+K")
        self.act_selection = self._action("&Selection", lambda: self.show_scope("selection"), None)
        self.act_document = self._action("Whole &Document", lambda: self.show_scope("document"), None)
        self.menu.addSeparator()
        self.act_off = self._action("&Off", self.stop, None)

    def _action(self, title: str, slot: object, shortcut: str | None) -> QAction:
        action = QAction(title, self.menu)
        if shortcut:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        self.menu.addAction(action)
        return action

    # -- scope -------------------------------------------------------------------------------------
    def show_scope(self, scope: str) -> bool:
        """Shade the current block, the (snapped) selection or the whole document."""
        editor = self.editor
        if scope == "document":
            span: tuple[int, int] | None = (0, editor.document().characterCount() - 1)
        elif scope == "selection" and not editor.textCursor().hasSelection():
            self.status.emit("Confidence: select some text first (or choose Current Block).")
            return False
        else:
            span = editor.snapped_target()
        if span is None or span[0] >= span[1]:
            self.status.emit("Confidence: nothing to read here.")
            return False
        self.start(span)
        return True

    def start(self, span: tuple[int, int]) -> None:
        self.stop()
        self.scope = span
        self._shade.setGeometry(self.editor.viewport().rect())
        self._shade.show()
        self._read_rest()

    def stop(self) -> None:
        self._resume.stop()
        if self._job is not None:
            self.bridge.cancel_inspection()
            self._job = None
        self.scope = None
        self.data = Readings()
        self._shade.hide()
        self.legend.hide()

    def on_rewrite_running(self, running: bool) -> None:
        """A rewrite goes first (submitting it cancelled the reading); resume once it is over."""
        if running:
            self._job = None
            self._resume.stop()
        elif self.scope is not None:
            self._resume.start()

    @property
    def reading(self) -> bool:
        return self._job is not None

    def _read_rest(self) -> None:
        """Read from the last reading (or the scope's start) to the scope's end."""
        if self.scope is None:
            return
        text = self.editor.exact_text()
        q_from = max(self.scope[0], self.data.ends[-1] if len(self.data) else self.scope[0])
        a, b = from_utf16(text, q_from), from_utf16(text, self.scope[1])
        self._text, self._spans = text, chunk_spans(text, a, b, CHUNK_CHARS)
        self._cursor = (a, q_from)
        if not self._spans:
            self._job = None
            self._show_legend("")
            return
        self._job = self.bridge.inspect(text, self._spans)
        self._show_legend(self._progress())

    # -- results -----------------------------------------------------------------------------------
    def _on_chunk(self, chunk: ReadChunk) -> None:
        if chunk.job_id != self._job:
            return
        text = self._text
        a, q = self._cursor
        q += utf16_len(text[a : chunk.start])  # Qt position of the chunk's start, from the last one
        target_end = self._spans[chunk.index][1]
        target = text[chunk.start : target_end]
        done = 0
        for r in chunk.readings:
            q += utf16_len(target[done : r.start])
            width = utf16_len(target[r.start : r.end])
            self.data.add(q, q + width, r, target[r.start : r.end])
            q += width
            done = r.end
        q += utf16_len(target[done:])
        self._cursor = (target_end, q)
        self._shade.update()
        self._show_legend(self._progress(chunk.index + 1))

    def _on_ended(self, job_id: int, why: str) -> None:
        if job_id != self._job:
            return
        self._job = None
        self._show_legend("" if not why else f"stopped: {why}")

    def _progress(self, done: int = 0) -> str:
        total = len(self._spans)
        return f"reading… {100 * done // total}%" if total and done < total else ""

    def _show_legend(self, state: str) -> None:
        cells = "".join(
            f'<span style="background:{color}; color:{color}">&#9608;&#9608;</span><span> {label} </span>'
            for (upper, color), label in zip(SCALE, self._labels(), strict=True)
            if upper
        )
        extra = f" · {state}" if state else ""
        self.legend.setText(f"<small>model's probability: {cells}{extra}</small>")
        self.legend.adjustSize()
        self._place_legend()
        self.legend.show()
        self.legend.raise_()

    @staticmethod
    def _labels() -> list[str]:
        uppers = [u for u, _ in SCALE]
        return [f"<{u:g}" for u in uppers[:-1]] + [f"≥{uppers[-2]:g}"]

    def _place_legend(self) -> None:
        vp = self.editor.viewport()
        self.legend.move(
            vp.x() + vp.width() - self.legend.width() - 6, vp.y() + vp.height() - self.legend.height() - 4
        )

    # -- edits and hover ---------------------------------------------------------------------------
    def _on_contents_change(self, position: int, removed: int, added: int) -> None:
        if self.scope is None or removed == added:  # formatting (re-highlighting) is no edit
            return
        if self._job is not None:
            self.bridge.cancel_inspection()
            self._job = None
        start, end = self.scope
        if position < end:
            end = max(position, end + added - removed)
        self.scope = (start, end)
        self.data.drop_from(position - 1)  # the token the edit touched (and all after it) are stale
        self._shade.update()
        self._resume.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.editor.viewport():
            if event.type() == QEvent.Type.Resize:
                self._shade.setGeometry(self.editor.viewport().rect())
                if self.legend.isVisible():
                    self._place_legend()
            elif event.type() == QEvent.Type.ToolTip and self.scope is not None and len(self.data):
                pos = event.pos()  # type: ignore[attr-defined]
                i = self.data.at(self.editor.cursorForPosition(pos).position())
                if i is not None:
                    tip = tooltip_text(self.data.texts[i], self.data.readings[i])
                    QToolTip.showText(event.globalPos(), tip, self.editor)  # type: ignore[attr-defined]
                    return True
        return super().eventFilter(watched, event)
