"""The outline and word count computed a slice at a time match the whole-text scan."""

from __future__ import annotations

import random

from diffedit.document.outline import outline, run, scan, word_count

PIECES = [
    "# A\n",
    "Title\n===\n",
    "x\n---\n",
    "```\n",
    "~~~~\n",
    "```py\n",
    "  ## B ##\n",
    "- item\n",
    "\n",
    "para words here\n",
    "    code\n",
    "###### six\n",
    "####### seven\n",
    "text",
    "\t# tab\n",
    "#\n",
]


def random_texts(n: int) -> list[str]:
    rng = random.Random(11)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def key(text: str, slice_chars: int) -> tuple[int, list[tuple[int, str, int]]]:
    summary = run(scan(text, slice_chars=slice_chars))
    return summary.words, [(h.level, h.title, h.offset) for h in summary.headings]


def test_slices_give_the_same_outline_and_words() -> None:
    for text in random_texts(400):
        whole = key(text, len(text) + 1)
        assert whole == (word_count(text), [(h.level, h.title, h.offset) for h in outline(text)])
        for slice_chars in (1, 5, 30):
            assert key(text, slice_chars) == whole, (text, slice_chars)


def test_scan_yields_between_slices_and_can_skip_headings() -> None:
    text = "## Heading\n\nSome words here.\n\n```\n# not a heading\n```\n" * 2000
    job = scan(text, headings=False, slice_chars=4096)
    steps = 0
    try:
        while True:
            next(job)
            steps += 1
    except StopIteration as done:
        assert done.value.words == len(text.split()) and done.value.headings == []
    assert steps >= len(text) // 4096
    assert len(outline(text)) == 2000


def test_a_comment_in_a_list_items_code_is_not_a_heading() -> None:
    text = (
        "# Setup\n\n1. Install it:\n   ```\n   # as root\n   apt install x\n   ```\n\n"
        "2. Then:\n\n   ~~~\n   ## not this either\n\n   ~~~\n\n## Next\n"
    )
    assert [(h.level, h.title) for h in outline(text)] == [(1, "Setup"), (2, "Next")]
