"""Sizes, counts and durations as people read them: one wording for the CLI and the editor."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """1234567 -> "1.2 MB" (decimal units, as disks and downloads are sold)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def human_count(n: int) -> str:
    """25_200_000_000 -> "25.2B" (parameters)."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def human_duration(seconds: float) -> str:
    """Seconds, then minutes, then hours and minutes."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"
