"""Committed rewrites and the frames to replay them, with a fixed memory bound. Pure Python.

What a "frame" is belongs to the UI (it records what it painted); history only keeps and thins them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from diffedit.document.session import TrackedSpan

MAX_FRAMES_PER_ENTRY = 96
MAX_ENTRIES_WITH_FRAMES = 24
MAX_ENTRIES = 200

F = TypeVar("F")


class FrameRecorder(Generic[F]):
    """At most ``limit`` frames of one run: when full, every other one goes (first and last stay)."""

    def __init__(self, limit: int = MAX_FRAMES_PER_ENTRY) -> None:
        self.limit = max(2, limit)
        self.frames: list[F] = []
        self._stride = 1
        self._seen = 0

    def add(self, frame: F, final: bool = False) -> None:
        self._seen += 1
        if final or (self._seen - 1) % self._stride == 0:
            self.frames.append(frame)
        if len(self.frames) > self.limit:
            last = self.frames[-1]
            self.frames = [*self.frames[:-1:2], last]
            self._stride *= 2


@dataclass
class HistoryEntry(Generic[F]):
    when: datetime
    blocks: str  # e.g. "3" or "3-5"
    instruction: str
    steps: int
    tokens_per_forward: float
    seconds: float
    model: str
    seed: int
    original: str
    replacement: str
    span: TrackedSpan
    frames: list[F] = field(default_factory=list)
    title: str = ""  # what the history calls the run instead of its instruction (a draft: its section)

    @property
    def what(self) -> str:
        """``draft of “Usage”``, ``“make it shorter”`` or ``rewrite``."""
        if self.title:
            return self.title
        return f"“{self.instruction}”" if self.instruction else "rewrite"

    def label(self) -> str:
        what = self.what
        return (
            f"{self.when:%H:%M:%S}  blocks {self.blocks}  {what}\n"
            f"{self.steps} steps · {self.tokens_per_forward:.1f} tok/forward · {self.seconds:.1f} s"
        )


class History(Generic[F]):
    """Newest last; old entries lose their frames first, then go."""

    def __init__(self) -> None:
        self.entries: deque[HistoryEntry[F]] = deque(maxlen=MAX_ENTRIES)

    def add(self, entry: HistoryEntry[F]) -> None:
        self.entries.append(entry)
        for old in list(self.entries)[:-MAX_ENTRIES_WITH_FRAMES]:
            old.frames = []

    def apply_change(self, position: int, removed: int, added: int) -> None:
        for e in self.entries:
            e.span.apply_change(position, removed, added)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> HistoryEntry[F]:
        return self.entries[i]
