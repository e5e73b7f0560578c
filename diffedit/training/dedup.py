"""Paragraph-level deduplication of the corpus: exact (after normalisation) and near-duplicate (MinHash).

Blocks are compared after :func:`normalized` (lower case, punctuation and markup to single spaces), so
``**Note:** Use `apt`.`` and ``Note: use apt.`` are the same block. Near duplicates are blocks whose word
3-shingle sets have an estimated Jaccard similarity of at least ``threshold``, found with a MinHash
signature (``PERMUTATIONS`` seeded splitmix64 mixes of the CRC-32 of each shingle) and banded
locality-sensitive hashing, then confirmed on the whole signatures (the share of equal components
estimates the Jaccard similarity; only signatures are kept, not shingle sets). Everything is
deterministic (no salted ``hash()``).

The first occurrence wins, so the caller decides the order: the corpus feeds held-out documents first, so a
training paragraph that repeats a held-out one is dropped from training, never the other way round.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

import numpy as np

PERMUTATIONS = 64
BANDS = 16  # 16 bands of 4 rows: pairs at Jaccard 0.8 share some band with probability > 0.999
MIN_WORDS = 8  # shorter blocks are compared exactly only (too few shingles for a useful estimate)
_SEEDS = np.random.default_rng(20261202).integers(0, 2**63, PERMUTATIONS, dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of 64-bit integers that scatters every input bit (uint64
    arithmetic wraps, which is what it relies on)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def normalized(block: str) -> str:
    """Lower case, every run of non-alphanumeric characters (markup, punctuation, spacing) one space."""
    return re.sub(r"[\W_]+", " ", block.lower()).strip()


def shingles(text: str, n: int = 3) -> set[str]:
    words = text.split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def signature(shingle_set: set[str]) -> np.ndarray:
    """The MinHash signature: for each of the universal hashes, the minimum over the shingles."""
    hashes = np.fromiter(
        (zlib.crc32(s.encode("utf-8")) for s in sorted(shingle_set)), dtype=np.uint64, count=len(shingle_set)
    )
    # one hash function per seed: mix(h XOR seed), a different pseudo-random permutation of the shingles each
    mixed = _mix(hashes[None, :] ^ _SEEDS[:, None])
    return np.asarray(mixed.min(axis=1))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


@dataclass
class Deduplicator:
    """Remembers every block it has kept; :meth:`is_new` says whether a block adds something."""

    threshold: float = 0.8
    exact: set[str] = field(default_factory=set)
    buckets: dict[tuple[int, bytes], list[int]] = field(default_factory=dict)
    kept: list[np.ndarray] = field(default_factory=list)
    kept_text: list[str] = field(default_factory=list)
    dropped_exact: int = 0
    dropped_near: int = 0
    near_examples: list[tuple[str, str]] = field(default_factory=list)  # (dropped, kept), the first few

    def is_new(self, block: str) -> bool:
        key = normalized(block)
        if not key:
            return False
        if key in self.exact:
            self.dropped_exact += 1
            return False
        words = key.split()
        if len(words) >= MIN_WORDS:
            sig = signature(shingles(key))
            rows = PERMUTATIONS // BANDS
            bands = [(b, sig[b * rows : (b + 1) * rows].tobytes()) for b in range(BANDS)]
            candidates = {i for band in bands for i in self.buckets.get(band, ())}
            match = next(
                (i for i in sorted(candidates) if estimated_jaccard(sig, self.kept[i]) >= self.threshold),
                None,
            )
            if match is not None:
                self.dropped_near += 1
                if len(self.near_examples) < 20:
                    self.near_examples.append((block, self.kept_text[match]))
                return False
            index = len(self.kept)
            self.kept.append(sig)
            self.kept_text.append(block)
            for band in bands:
                self.buckets.setdefault(band, []).append(index)
        self.exact.add(key)
        return True
