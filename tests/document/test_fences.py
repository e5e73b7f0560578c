"""Fence rules shared by the highlighter and the document logic agree with markdown-it-py (CommonMark)."""

from __future__ import annotations

import pytest

from diffedit.document.blocks import parse_blocks
from diffedit.document.fences import fence_closes, fence_opener


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
