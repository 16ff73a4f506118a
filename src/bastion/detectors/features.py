"""Feature extraction for the prompt-injection classifier (numpy only; shared by training and inference).

A text becomes a sparse vector of three blocks: hashed character 2–5-grams, hashed word 1–2-grams
(both of the folded text, :func:`bastion.detectors.normalize.fold`; sub-linear term frequency, each
block L2-normalised on its own, so the few word n-grams are not drowned by the many character ones),
then a few dense features (one per heuristic rule, and whether a rule fired only after
de-obfuscation). The hash is a fixed 64-bit mix over code points: deterministic across processes and
platforms.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bastion.detectors.injection_rules import RULES, RuleHit, match_rules
from bastion.detectors.normalize import Folded, collapse_spaced_letters, deleet, fold, rot13

HASH_BITS = 18
HASH_DIM = 1 << HASH_BITS
CHAR_NGRAMS = (2, 3, 4, 5)
#: Dense features after the two hashed blocks: one per rule, then "rule fired only in a de-obfuscated view".
DENSE_NAMES: tuple[str, ...] = (*(f"rule:{r.name}" for r in RULES), "obfuscated_rule")
#: Feature layout version, stored in the model file's metadata and checked when it is loaded.
LAYOUT = 2
WORD_OFFSET = HASH_DIM  # the word block follows the character block
DENSE_OFFSET = 2 * HASH_DIM
N_FEATURES = DENSE_OFFSET + len(DENSE_NAMES)

_MASK = np.uint64(HASH_DIM - 1)
_MUL = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_WORD_SALT = 0x5BD1E995


@dataclass(frozen=True, slots=True)
class Analysis:
    """What feature extraction learned about one text (reused by the detector for explanations)."""

    folded: Folded
    hits: tuple[RuleHit, ...]
    obfuscated_hits: tuple[RuleHit, ...]  # rule hits found only in a de-obfuscated view


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    h = h ^ (h >> _S33)
    h = h * _MIX1
    h = h ^ (h >> _S33)
    h = h * _MIX2
    return h ^ (h >> _S33)


def _char_ngram_ids(text: str) -> npt.NDArray[np.uint64]:
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts: list[npt.NDArray[np.uint64]] = []
    for n in CHAR_NGRAMS:
        length = cps.size - n + 1
        if length <= 0:
            continue
        h = np.full(length, np.uint64(n * 0x9E3779B1), dtype=np.uint64)
        for k in range(n):
            h = (h * _MUL) ^ cps[k : k + length]
        parts.append(_mix(h) & _MASK)
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    return np.concatenate(parts)


def _word_ids(text: str) -> npt.NDArray[np.uint64]:
    words = [w.strip(".,;:!?\"'()[]{}<>*`") for w in text.split()]
    words = [w for w in words if w]
    keys = [zlib.crc32(w.encode(), _WORD_SALT) for w in words]
    keys += [zlib.crc32(f"{a} {b}".encode(), _WORD_SALT + 1) for a, b in itertools.pairwise(words)]
    if not keys:
        return np.zeros(0, dtype=np.uint64)
    return _mix(np.asarray(keys, dtype=np.uint64)) & _MASK


def _obfuscation_views(folded: str, raw: str) -> list[str]:
    views: list[str] = []
    if any(c in folded for c in "013457@$!"):
        views.append(deleet(folded))
    if " " in folded:
        collapsed = collapse_spaced_letters(folded)
        if collapsed != folded:
            views.append(collapsed)
    views.append(rot13(folded))
    return views


def analyse(text: str) -> Analysis:
    """Fold ``text`` and run the heuristic rules on it and on its de-obfuscated views."""
    folded = fold(text)
    hits = tuple(match_rules(folded.text))
    seen = {h.rule.name for h in hits}
    extra: list[RuleHit] = []
    for view in _obfuscation_views(folded.text, text):
        for h in match_rules(view):
            if h.rule.name not in seen and h.rule.weight >= 0.5:
                seen.add(h.rule.name)
                extra.append(h)
    return Analysis(folded, hits, tuple(extra))


def vectorize(text: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], Analysis]:
    """Sparse features of ``text``: (indices, values, analysis); indices are unique and sorted."""
    analysis = analyse(text)
    squeezed = " " + " ".join(analysis.folded.text.split()) + " "
    c_idx, c_val = _block(_char_ngram_ids(squeezed))
    w_idx, w_val = _block(_word_ids(squeezed))
    dense = np.zeros(len(DENSE_NAMES), dtype=np.float32)
    for h in analysis.hits:
        dense[RULE_INDEX[h.rule.name]] = 1.0
    if analysis.obfuscated_hits:
        dense[-1] = 1.0
    nz = np.flatnonzero(dense)
    indices = np.concatenate((c_idx, WORD_OFFSET + w_idx, DENSE_OFFSET + nz.astype(np.int64)))
    values = np.concatenate((c_val, w_val, dense[nz]))
    return indices, values.astype(np.float32), analysis


def _block(ids: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Sorted unique hashed ids with L2-normalised sub-linear term frequencies."""
    uniq, counts = np.unique(ids.astype(np.int64), return_counts=True)
    vals = np.log1p(counts.astype(np.float32))
    norm = float(np.sqrt(np.dot(vals, vals)))
    if norm > 0:
        vals /= norm
    return uniq, vals


RULE_INDEX = {r.name: i for i, r in enumerate(RULES)}
