"""Block line numbers as ``diffedit blocks`` prints them."""

from __future__ import annotations

import pytest

from diffedit.document.blocks import parse_blocks


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("- a\n- b\n\nPara.\n", [(1, 1), (2, 2), (4, 4)]),  # a tight list's last item
        ("- a\n\n- b\n\nPara.\n", [(1, 1), (3, 3), (5, 5)]),  # a loose list: every item
        ("- a\n  more\n\n  second paragraph\n\nPara.\n", [(1, 4), (6, 6)]),  # a blank line inside stays
        ("Para.\n\n\n\n# Head\n", [(1, 1), (5, 5)]),
    ],
)
def test_a_blocks_lines_end_at_its_last_non_blank_line(text: str, lines: list[tuple[int, int]]) -> None:
    assert [(b.first_line, b.last_line) for b in parse_blocks(text)] == lines
