"""The rendered preview: markdown-it-py HTML in a QTextBrowser, updated a moment after typing stops.

A long document is previewed around the cursor (``diffedit.document.preview_window``): rendering a whole
megabyte would hold the UI thread for over a second after every pause in typing.
"""

from __future__ import annotations

from collections.abc import Callable

from markdown_it import MarkdownIt
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QAbstractScrollArea, QTextBrowser, QWidget

from diffedit.document.preview_window import preview_window
from diffedit.ui.editing.theme import Theme

_md = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def render_html(markdown: str, theme: Theme, note: str = "") -> str:
    css = (
        f"body {{ color: {theme.text}; background: {theme.base}; }} "
        f"code, pre {{ background: {theme.code_bg}; color: {theme.code_fg}; }} "
        "pre { white-space: pre-wrap; } "  # wrapped, not clipped behind a horizontal scrollbar
        f"a {{ color: {theme.link}; }} blockquote {{ color: {theme.quote}; }} "
        f".note {{ color: {theme.quote}; font-style: italic; }}"
    )
    head = f'<p class="note">{note}</p>' if note else ""
    return f"<html><head><style>{css}</style></head><body>{head}{_md.render(markdown)}</body></html>"


def debounce_ms(size: int) -> int:
    """A short pause: even a long document renders only its part around the cursor."""
    return 250 if size < 100_000 else 400


class PreviewPane(QTextBrowser):
    # The user scrolled the preview (wheel, keys, scroll bar; never a scroll the pane made itself): the
    # place now at the top, as a fraction of the whole document.
    userScrolled = Signal(float)

    def __init__(
        self,
        source: Callable[[], str],
        theme: Theme,
        parent: QWidget | None = None,
        anchor: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__(parent)
        self._anchor = anchor
        self.shown_span: tuple[int, int] | None = None  # the part shown, where the document is long
        self._size = 0
        self.setObjectName("preview")
        self.setOpenExternalLinks(True)
        self._source = source
        self.theme = theme
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.refresh)
        self.renders = 0
        self._fraction: float | None = None  # the editor's scroll position, once it has scrolled
        self.verticalScrollBar().rangeChanged.connect(self._on_range_changed)
        # Qt reports wheel, keys and scroll-bar drags as slider actions, before the value moves.
        self.verticalScrollBar().actionTriggered.connect(self._on_user_scroll)
        self._stale = True  # the text changed (or was never rendered) while the pane was hidden

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:  # e.g. left on from the last session: render now, not at the first keystroke
            self.refresh()

    def scroll_to_fraction(self, fraction: float) -> None:
        """Follow the editor's scroll position (the whole document is shown; a long one moves by part)."""
        self._fraction = fraction
        if self.shown_span is None:
            bar = self.verticalScrollBar()
            bar.setValue(round(fraction * bar.maximum()))

    def _on_user_scroll(self, _action: int) -> None:
        bar = self.verticalScrollBar()
        here = bar.sliderPosition() / bar.maximum() if bar.maximum() else 0.0
        if self.shown_span is None:
            self._fraction = here  # a re-layout keeps the user's place, not the editor's last one
            self.userScrolled.emit(here)
        elif self._size:  # a long document's part: the place in the whole
            start, end = self.shown_span
            self.userScrolled.emit((start + here * (end - start)) / self._size)

    def _on_range_changed(self, _low: int, high: int) -> None:
        # The browser lays out lazily: its scroll range settles after a render; keep the followed place.
        if self._fraction is not None and self.shown_span is None:
            self.verticalScrollBar().setValue(round(self._fraction * high))

    def schedule(self, size: int) -> None:
        if self.isVisible():
            self._timer.start(debounce_ms(size))

    def follow(self, position: int) -> None:
        """The cursor moved: a long document's preview moves with it once it leaves the part shown."""
        if self.shown_span is not None and not self.shown_span[0] <= position <= self.shown_span[1]:
            self._timer.start(debounce_ms(self._size))

    def refresh(self) -> None:
        if not self.isVisible():
            self._stale = True
            return
        self._stale = False
        bar = self.verticalScrollBar()
        fraction = bar.value() / bar.maximum() if bar.maximum() else 0.0
        text = self._source()
        self._size = len(text)
        anchor = self._anchor()
        start, end = preview_window(text, anchor)
        note = ""
        previous, self.shown_span = self.shown_span, None
        if (start, end) != (0, len(text)):
            self.shown_span = (start, end)
            if previous != self.shown_span:  # a new part: show the cursor's place in it, not the old scroll
                fraction = (anchor - start) / max(1, end - start)
            note = (
                f"A long document: the preview shows the part around the cursor "
                f"({start * 100 // len(text)}–{end * 100 // len(text)} % of {len(text):,} characters)."
            )
        self.setHtml(render_html(text[start:end], self.theme, note))
        bar.setValue(round(fraction * bar.maximum()))
        self.renders += 1

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.refresh()


class ScrollSync(QObject):
    """The preview follows the editor's scroll; while ``both_ways()`` the editor follows the preview's too.

    A scroll made to follow the other side is never echoed back to it: the preview reports only the
    user's own scrolls, and the editor's scrolls made while following the preview are not passed on.
    """

    def __init__(
        self, editor: QAbstractScrollArea, preview: PreviewPane, both_ways: Callable[[], bool] = lambda: False
    ) -> None:
        super().__init__(preview)
        self.editor, self.preview, self.both_ways = editor, preview, both_ways
        self._following = False
        editor.verticalScrollBar().valueChanged.connect(self._editor_scrolled)
        preview.userScrolled.connect(self._preview_scrolled)

    def _editor_scrolled(self, value: int) -> None:
        if self._following:
            return
        bar = self.editor.verticalScrollBar()
        self.preview.scroll_to_fraction(value / bar.maximum() if bar.maximum() else 0.0)

    def _preview_scrolled(self, fraction: float) -> None:
        if not self.both_ways():
            return
        bar = self.editor.verticalScrollBar()
        self._following = True
        try:
            bar.setValue(round(fraction * bar.maximum()))
        finally:
            self._following = False
