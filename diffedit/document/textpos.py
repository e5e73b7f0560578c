"""Python string indices (code points) <-> Qt document positions (UTF-16 code units). Pure Python."""

from __future__ import annotations


def _is_bmp_only(text: str) -> bool:
    return text.isascii() or max(text) <= "\uffff"


def to_utf16(text: str, index: int) -> int:
    """The UTF-16 position of Python index ``index`` in ``text``."""
    head = text[:index]
    if not head or _is_bmp_only(head):
        return index
    return index + sum(1 for ch in head if ord(ch) > 0xFFFF)


def from_utf16(text: str, position: int) -> int:
    """The Python index of UTF-16 position ``position`` in ``text``."""
    if not text or _is_bmp_only(text):
        return position
    units = 0
    for i, ch in enumerate(text):
        if units >= position:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def utf16_len(text: str) -> int:
    if not text or _is_bmp_only(text):
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)
