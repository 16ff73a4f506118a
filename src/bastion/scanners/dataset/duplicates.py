"""Exact and near duplicates with bounded memory: 64-bit hashes and MinHash with LSH banding.

Exact duplicates: a 64-bit BLAKE2b digest of the normalised text per row. Near duplicates: a
64-permutation MinHash over word 2-shingles, indexed in 16 bands of 4; a
candidate pair is confirmed when the estimated Jaccard similarity reaches ``threshold`` (0.7 by
default). Near-duplicate indexing stops after ``max_rows`` rows (memory: about 400 bytes a row).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
_PERMS = 64
_BANDS = 16
_ROWS = _PERMS // _BANDS
_PRIME = np.uint64((1 << 61) - 1)
_rng = np.random.default_rng(20261126)
_A = _rng.integers(1, (1 << 31) - 1, size=_PERMS, dtype=np.uint64)
_B = _rng.integers(0, (1 << 31) - 1, size=_PERMS, dtype=np.uint64)


def _h64(b: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(b, digest_size=8).digest(), "little")


def normalise(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def minhash(norm: str) -> np.ndarray:
    """64 MinHash values (uint32) of the word 2-shingles of an already normalised text."""
    words = norm.split()
    grams = {" ".join(words[i : i + 2]) for i in range(max(len(words) - 1, 1))}
    h = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64, count=len(grams))
    sig: np.ndarray = (((_A[:, None] * h[None, :] + _B[:, None]) % _PRIME).min(axis=1) & 0xFFFFFFFF).astype(
        np.uint32
    )
    return sig


@dataclass(slots=True)
class DuplicateIndex:
    """Feed texts in order; collects ``(row, first_row)`` pairs for exact and near duplicates."""

    threshold: float = 0.7
    max_rows: int = 1_000_000
    min_words: int = 5
    exact: list[tuple[int, int]] = field(default_factory=list)
    near: list[tuple[int, int]] = field(default_factory=list)
    _seen: dict[int, int] = field(default_factory=dict)
    _bands: list[dict[bytes, int]] = field(default_factory=lambda: [{} for _ in range(_BANDS)])
    _sigs: dict[int, np.ndarray] = field(default_factory=dict)

    def add(self, index: int, text: str) -> None:
        norm = normalise(text)
        if not norm:
            return
        h = _h64(norm.encode())
        first = self._seen.get(h)
        if first is not None:
            self.exact.append((index, first))
            return
        if len(self._seen) < 5 * self.max_rows:
            self._seen[h] = index
        if norm.count(" ") + 1 < self.min_words or len(self._sigs) >= self.max_rows:
            return
        sig = minhash(norm)
        match = None
        for b, table in enumerate(self._bands):
            key = sig[b * _ROWS : (b + 1) * _ROWS].tobytes()
            other = table.get(key)
            if other is None:
                table[key] = index
            elif match is None and float((self._sigs[other] == sig).mean()) >= self.threshold:
                match = other
        self._sigs[index] = sig
        if match is not None:
            self.near.append((index, match))
