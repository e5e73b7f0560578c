"""Does the output read like English? Dictionary-word rate and repetition of generated Markdown.

* **Dictionary-word rate**: the share of the prose words of a text found in an English word list
  (``/usr/share/dict/words`` from Debian's ``wamerican``, compared case-insensitively, a possessive ``'s``
  allowed). Prose words: runs of ASCII letters (with inner apostrophes) outside fenced code blocks, inline
  code spans and URLs, so identifiers in backticks neither help nor hurt. ``prose_words`` says exactly what
  is counted.
* **Repetition**: the share of a text's word bigrams that already occurred earlier in the same text (0 for
  text without a repeated pair; "the the the the" is 2/3).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WORDS_FILE = Path("/usr/share/dict/words")
WORDS_PACKAGE = "wamerican"

_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\b[\w.+-]+@[\w-]+\.[\w.-]+")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


class MissingWordList(RuntimeError):
    pass


def load_words(path: Path = WORDS_FILE) -> frozenset[str]:
    """The word list, lower-cased. Raises :class:`MissingWordList` naming the package to install."""
    if not path.is_file():
        raise MissingWordList(
            f"no word list at {path}: install Debian's {WORDS_PACKAGE} (`apt-get install {WORDS_PACKAGE}`) "
            "or pass --words PATH"
        )
    text = path.read_text(encoding="utf-8", errors="replace")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def prose_words(markdown: str) -> list[str]:
    text = _FENCE.sub(" ", markdown)
    text = _INLINE_CODE.sub(" ", text)
    text = _URL.sub(" ", text)
    return _WORD.findall(text)


def in_dictionary(word: str, words: frozenset[str]) -> bool:
    w = word.lower()
    return w in words or (w.endswith("'s") and w[:-2] in words)


@dataclass(frozen=True)
class WordCount:
    known: int
    total: int

    @property
    def rate(self) -> float:
        return self.known / self.total if self.total else 0.0

    def __add__(self, other: WordCount) -> WordCount:
        return WordCount(self.known + other.known, self.total + other.total)


def dictionary_words(text: str, words: frozenset[str]) -> WordCount:
    found = prose_words(text)
    return WordCount(sum(in_dictionary(w, words) for w in found), len(found))


def dictionary_word_rate(texts: Iterable[str], words: frozenset[str]) -> WordCount:
    """Pooled over all texts (every word counts once, long texts weigh more)."""
    total = WordCount(0, 0)
    for t in texts:
        total = total + dictionary_words(t, words)
    return total


def repetition(text: str) -> float:
    lowered = [w.lower() for w in prose_words(text)]
    pairs = list(itertools.pairwise(lowered))
    if not pairs:
        return 0.0
    seen: set[tuple[str, str]] = set()
    repeated = 0
    for p in pairs:
        repeated += p in seen
        seen.add(p)
    return repeated / len(pairs)
