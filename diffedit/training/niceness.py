"""Lower a long job's CPU priority to a given niceness (never raising it, never lowering it twice)."""

from __future__ import annotations

import os


def nice_to(niceness: int) -> int:
    """Make this process's niceness at least ``niceness`` (os.nice is relative: a stage started by an
    already niced parent must not add its own on top). Returns the niceness now in effect."""
    current = os.nice(0)
    if niceness > current:
        return os.nice(niceness - current)
    return current
