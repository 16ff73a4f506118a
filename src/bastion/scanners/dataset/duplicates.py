"""Exact and near duplicates with bounded memory: 64-bit hashes and SimHash with LSH banding.

Exact duplicates: a 64-bit BLAKE2b digest of the normalised text per row. Near duplicates: a 64-bit
SimHash over word 3-shingles; four 16-bit bands index candidates, and a pair is a near duplicate
when the Hamming distance is at most ``max_distance`` (3 by default, about 95% similar text).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

_WORD = re.compile(r"\w+", re.UNICODE)
_MASK = (1 << 64) - 1


def _h64(b: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little")


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def simhash(text: str) -> int:
    """64-bit SimHash of word 3-shingles (single words for short texts)."""
    words = normalise(text).split()
    shingles = [" ".join(words[i : i + 3]) for i in range(max(len(words) - 2, 1))] if words else [""]
    counts = [0] * 64
    for sh in shingles:
        h = _h64(sh.encode())
        for bit in range(64):
            counts[bit] += 1 if h >> bit & 1 else -1
    return sum(1 << bit for bit in range(64) if counts[bit] > 0)


@dataclass(slots=True)
class DuplicateIndex:
    """Feed texts in order; collects ``(row, first_row)`` for exact and near duplicates."""

    max_distance: int = 3
    max_rows: int = 5_000_000
    min_words: int = 5
    exact: list[tuple[int, int]] = field(default_factory=list)
    near: list[tuple[int, int]] = field(default_factory=list)
    _seen: dict[int, int] = field(default_factory=dict)
    _bands: list[dict[int, list[tuple[int, int]]]] = field(default_factory=lambda: [{}, {}, {}, {}])
    _count: int = 0

    def add(self, index: int, text: str) -> None:
        if self._count >= self.max_rows:
            return
        self._count += 1
        norm = normalise(text)
        if not norm:
            return
        h = _h64(norm.encode())
        first = self._seen.get(h)
        if first is not None:
            self.exact.append((index, first))
            return
        self._seen[h] = index
        if norm.count(" ") + 1 < self.min_words:
            return
        sh = simhash(norm)
        match = None
        for b, table in enumerate(self._bands):
            key = sh >> (16 * b) & 0xFFFF
            bucket = table.setdefault(key, [])
            if match is None:
                for other_sh, other_idx in bucket[:64]:
                    if (sh ^ other_sh).bit_count() <= self.max_distance:
                        match = other_idx
                        break
            if len(bucket) < 64:
                bucket.append((sh, index))
        if match is not None:
            self.near.append((index, match))
