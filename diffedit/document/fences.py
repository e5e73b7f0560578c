"""Fenced code blocks by CommonMark's rules: one definition for the highlighter and the document logic."""

from __future__ import annotations


def fence_opener(line: str) -> str | None:
    """The fence (e.g. ``````` or ``~~~~``) that ``line`` opens, or None if it opens none."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or stripped[:1] not in ("`", "~"):
        return None
    marker = stripped[0]
    run = len(stripped) - len(stripped.lstrip(marker))
    if run < 3:
        return None
    if marker == "`" and "`" in stripped[run:]:
        return None  # a backtick in the info string: inline code, not a fence
    return marker * run


def fence_closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a block opened by ``fence``: same character, no shorter, nothing else."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    run = len(stripped) - len(stripped.lstrip(fence[0]))
    return run >= len(fence) and not stripped[run:].strip()
