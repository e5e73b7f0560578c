"""The rendered preview: markdown-it-py HTML in a QTextBrowser, updated a moment after typing stops."""

from __future__ import annotations

from collections.abc import Callable

from markdown_it import MarkdownIt
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QTextBrowser, QWidget

from diffedit.ui.theme import Theme

_md = MarkdownIt("commonmark").enable("table").enable("strikethrough")


def render_html(markdown: str, theme: Theme) -> str:
    css = (
        f"body {{ color: {theme.text}; background: {theme.base}; }} "
        f"code, pre {{ background: {theme.code_bg}; color: {theme.code_fg}; }} "
        f"a {{ color: {theme.link}; }} blockquote {{ color: {theme.quote}; }}"
    )
    return f"<html><head><style>{css}</style></head><body>{_md.render(markdown)}</body></html>"


def debounce_ms(size: int) -> int:
    """Longer pauses for longer documents: rendering 1 MB takes about a second."""
    return 250 if size < 100_000 else 1500


class PreviewPane(QTextBrowser):
    def __init__(self, source: Callable[[], str], theme: Theme, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preview")
        self.setOpenExternalLinks(True)
        self._source = source
        self.theme = theme
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(self.refresh)
        self.renders = 0

    def schedule(self, size: int) -> None:
        if self.isVisible():
            self._timer.start(debounce_ms(size))

    def refresh(self) -> None:
        if not self.isVisible():
            return
        bar = self.verticalScrollBar()
        fraction = bar.value() / bar.maximum() if bar.maximum() else 0.0
        self.setHtml(render_html(self._source(), self.theme))
        bar.setValue(round(fraction * bar.maximum()))
        self.renders += 1

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.refresh()
