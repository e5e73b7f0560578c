"""Which part of a long document the preview renders: whole blocks around the cursor, never half a fence.

Rendering a 1 MB document with markdown-it takes about a second of the UI thread (and Qt's HTML layout a
third of a second more), so past ``LARGE_DOCUMENT`` characters the preview shows about ``WINDOW`` characters
around the cursor, whole blocks only (``textwindow.block_window``) so every block renders as it would in the
whole document.
"""

from __future__ import annotations

from diffedit.document.textwindow import block_window

LARGE_DOCUMENT = 150_000
WINDOW = 24_000


def preview_window(
    text: str, anchor: int, window: int = WINDOW, large: int = LARGE_DOCUMENT
) -> tuple[int, int]:
    """The span ``[start, end)`` of ``text`` to preview around ``anchor``: all of it for short texts."""
    if len(text) <= large:
        return 0, len(text)
    anchor = max(0, min(anchor, len(text)))
    return block_window(text, anchor - window // 2, anchor + window // 2)
