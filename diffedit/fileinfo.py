"""What a path is, in words: for the document storage and the model loader (neither imports the other)."""

from __future__ import annotations

import stat


def file_kind(mode: int) -> str:
    """What a file is, in words, from its ``st_mode``: "a regular file", "a named pipe (FIFO)", ..."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a symbolic link"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")
