"""The preview of a long document: whole blocks around the cursor, never a fence cut in half."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from diffedit.document.preview_window import preview_window
from diffedit.document.textwindow import fenced_spans

PARAGRAPH = "Some prose about paths and files, long enough to matter.\n\n"
CODE = "```python\nx = 1\n\ny = 2\n```\n\n"  # a blank line inside the fence: not a place to cut


def test_a_short_document_is_previewed_whole() -> None:
    text = PARAGRAPH * 10
    assert preview_window(text, 5) == (0, len(text))


def _blocks(n: int, seed: int) -> str:
    parts = []
    for i in range(n):
        kind = (i * 7 + seed) % 5
        parts.append(
            CODE if kind == 0 else f"## Heading {i}\n\n" if kind == 1 else f"Block {i}. " + PARAGRAPH
        )
    return "".join(parts)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(100, 600), seed=st.integers(0, 4), where=st.floats(0, 1), window=st.integers(200, 3000))
def test_the_window_holds_the_cursor_and_renders_as_in_the_whole_document(
    n: int, seed: int, where: float, window: int
) -> None:
    text = _blocks(n, seed)
    anchor = int(where * len(text))
    start, end = preview_window(text, anchor, window=window, large=1000)
    assert 0 <= start <= anchor <= end or (start, end) == (0, len(text))
    assert start == 0 or text[start - 2 : start] == "\n\n"  # starts at a block
    assert end == len(text) or text[end : end + 2] == "\n\n"  # ends at a block
    for s, e in fenced_spans(text):
        assert e <= start or s >= end or (start <= s and e <= end)  # a fence is in whole or not at all
    md = MarkdownIt("commonmark")
    part = md.render(text[start:end])
    assert part in md.render(text)  # the part renders exactly as it does within the whole document
    assert end - start <= window + 200  # about the window: at most one block (a fence) more


def test_a_fence_longer_than_the_window_is_kept_whole() -> None:
    big = "```\n" + "line\n\n" * 500 + "```\n\n"
    text = PARAGRAPH * 50 + big + PARAGRAPH * 50
    anchor = text.index("line") + 1000
    start, end = preview_window(text, anchor, window=400, large=1000)
    assert text[start:end].startswith("```") and text[start:end].rstrip().endswith("```")
