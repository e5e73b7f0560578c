"""The fence rule, the fence scanner and the whole-block window agree with markdown-it-py (CommonMark)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from diffedit.document.blocks import parse_blocks
from diffedit.document.textwindow import (
    FenceScanner,
    Spans,
    block_window,
    fence_closes,
    fence_opener,
    fenced_spans,
    in_spans,
)


@pytest.mark.parametrize(
    ("line", "fence"),
    [
        ("```", "```"),
        ("```python", "```"),
        ("~~~~ x", "~~~~"),
        ("   ```", "```"),
        ("    ```", None),
        ("``", None),
        ("``` a`b", None),
        ("~~~ a`b", "~~~"),
        ("plain", None),
    ],
)
def test_fence_opener(line: str, fence: str | None) -> None:
    assert fence_opener(line) == fence


def test_fence_closes_needs_the_same_character_at_least_as_long_and_nothing_else() -> None:
    assert fence_closes("```", "```") and fence_closes("`````", "```") and fence_closes("  ~~~ ", "~~~")
    assert (
        not fence_closes("~~~", "```") and not fence_closes("``", "```") and not fence_closes("``` x", "```")
    )


@pytest.mark.parametrize(
    "doc",
    [
        "a\n\n```\ncode\n```\n\nb\n",
        "a\n\n``` x`y\n\nb\n",  # not a fence: a backtick in the info string
        "a\n\n~~~~\n~~~\n~~~~\n\nb\n",
        "a\n\n```\nnever closed\n\nb\n",
    ],
)
def test_rules_agree_with_markdown_it(doc: str) -> None:
    # the last paragraph is code exactly when a fence is still open before it
    fence = None
    for line in doc.split("\n")[:-3]:
        fence = fence_opener(line) if fence is None else (None if fence_closes(line, fence) else fence)
    assert (parse_blocks(doc)[-1].kind == "code") == (fence is not None)


# Pieces of Markdown whose blocks can reach across blank lines: fences, lists (loose, nested, empty items,
# lazy lines, markers that cannot interrupt a paragraph), quotes, code.
# Pieces that open a list item or a block quote (or a fence inside one).
CONTAINERS = (
    "- item\n",
    "* star\n",
    "1. one\n",
    "> quote\n",
    "2. two\n",
    "1.  wide\n",
    "-\n",
    "- ```\n",
    "> ```\n",
    "  - sub\n",
    "   - three\n",
)
PIECES = [
    "```\n",
    "````py\n",
    "~~~\n",
    "``` a`b\n",
    "   ```\n",
    "    ```\n",
    "\n",
    "\n\n",
    "para words\n",
    "## Heading\n",
    "  continued\n",
    "    indented\n",
    "\tTab\n",
    "---\n",
    "*** \n",
    "  ```\n",
    " ~~~\n",
    *CONTAINERS,
]
documents = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
plain_documents = st.lists(st.sampled_from([p for p in PIECES if p not in CONTAINERS]), max_size=40).map(
    "".join
)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos)


@settings(max_examples=300, deadline=None)
@given(text=plain_documents)
def test_fenced_spans_are_markdown_its_fences(text: str) -> None:
    fences = [t.map for t in MarkdownIt("commonmark").parse(text) if t.type == "fence" and t.map]
    spans = fenced_spans(text)
    assert [_line(text, s) for s, _ in spans] == [m[0] for m in fences]
    for (_, e), m in zip(spans, fences, strict=True):
        assert e == len(text) or _line(text, e - 1) == m[1] - 1  # the closing line (unclosed: to the end)


def test_fenced_spans_run_from_the_opening_line_to_the_end_of_the_closing_line() -> None:
    text = "a\n\n```\ncode\n~~~\n```  \n\n~~~~\nopen to the end\n"
    spans = fenced_spans(text)
    assert [text[s:e] for s, e in spans] == ["```\ncode\n~~~\n```  ", "~~~~\nopen to the end\n"]
    assert in_spans(spans[0][0], spans) and not in_spans(spans[0][1], spans)


@settings(max_examples=200, deadline=None)
@given(text=documents, cuts=st.lists(st.integers(0, 10_000), min_size=1, max_size=8))
def test_the_scanner_fed_in_slices_finds_the_same_fences(text: str, cuts: list[int]) -> None:
    line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    chosen = sorted({line_starts[c % len(line_starts)] for c in cuts} | {0, len(text)})
    scanner = FenceScanner(text)
    for a, b in itertools.pairwise(chosen):
        scanner.feed(a, b)
    assert scanner.finish() == fenced_spans(text)


@settings(max_examples=400, deadline=None)
@given(text=documents, where=st.floats(0, 1), width=st.integers(0, 60))
@example(
    text="- item\n    ```\n\n```\n", where=0.0, width=3
)  # an open fence in a list item owns the blank line
def test_a_block_window_parses_and_renders_as_within_the_whole_document(
    text: str, where: float, width: int
) -> None:
    start = int(where * len(text))
    end = min(len(text), start + width)
    lo, hi = block_window(text, start, end)
    assert lo <= start <= end <= hi
    assert lo == 0 or text[lo - 2 : lo] == "\n\n"  # starts at a block after a blank line
    assert hi == len(text) or text[hi : hi + 2] == "\n\n"  # ends at a block's last line
    whole = {(b.start, b.end, b.kind) for b in parse_blocks(text)}
    assert {(b.start + lo, b.end + lo, b.kind) for b in parse_blocks(text[lo:hi])} <= whole
    md = MarkdownIt("commonmark")
    assert md.render(text[lo:hi]) in md.render(text)


def test_a_block_window_does_not_cut_a_list_that_runs_on_across_blank_lines() -> None:
    # "- a" could still belong to a list above it, so the window starts at the paragraph before
    text = "Intro.\n\nMore.\n\n- a\n\n- b\n\n\n\n  still b\n\nAfter.\n"
    assert block_window(text, text.index("still"), text.index("still")) == (
        text.index("More."),
        text.index("b\n\nAfter") + 1,
    )


def test_a_fence_opened_in_a_list_item_does_not_shift_the_top_level_fences() -> None:
    # found by Hypothesis: "   ```" belongs to the item; the item's end closes it; the top-level fence is next
    text = "- item\n   ```\n\n```\n\n```\n"
    second = text.index("\n```") + 1
    assert fenced_spans(text) == [(text.index("   ```"), second), (second, len(text) - 1)]
    lo, hi = block_window(text, 0, 3)
    md = MarkdownIt("commonmark")
    assert md.render(text[lo:hi]) in md.render(text)


def _scanned(text: str) -> tuple[Spans, Spans]:
    scanner = FenceScanner(text)
    scanner.feed(0, len(text))
    return scanner.finish(), scanner.top_level


def _assert_same_fences(text: str, spans: Spans, fences: list[list[int]]) -> None:
    assert [_line(text, s) for s, _ in spans] == [m[0] for m in fences]
    for (_, e), m in zip(spans, fences, strict=True):
        assert e == len(text) or _line(text, e - 1) == m[1] - 1  # its last line (unclosed: to the end)


@settings(max_examples=500, deadline=None)
@given(text=documents)
@example(text="- item\npara words\n   ```\n\n```\n")  # a lazy line keeps the item (and its fence) open
@example(text="para words\n2. two\n   ```\n")  # "2." cannot interrupt a paragraph: no item, a fence
@example(text="para words\n    ```\n-\n  ```\n")  # "-" underlines a setext heading: not an item
def test_the_top_level_spans_are_markdown_its_top_level_fences_around_containers(text: str) -> None:
    fences = [
        t.map for t in MarkdownIt("commonmark").parse(text) if t.type == "fence" and t.map and t.level == 0
    ]
    _assert_same_fences(text, _scanned(text)[1], fences)


NESTED_LISTS = ("  - sub\n", "   - three\n")
one_level_documents = st.lists(
    st.sampled_from([p for p in PIECES if p not in NESTED_LISTS]), max_size=40
).map("".join)


@settings(max_examples=500, deadline=None)
@given(text=one_level_documents)
@example(text="- item\n  ```\n  # a comment, not a heading\n  ```\n")
def test_fenced_spans_are_markdown_its_fences_at_the_top_level_and_in_top_level_items(text: str) -> None:
    # without nested lists, markdown-it's level-0 fences and the level-2 ones (list > item > fence)
    fences = [
        t.map
        for t in MarkdownIt("commonmark").parse(text)
        if t.type == "fence" and t.map and t.level in (0, 2)
    ]
    _assert_same_fences(text, fenced_spans(text), fences)
