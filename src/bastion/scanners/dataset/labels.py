"""Poisoning indicators for labelled data: label errors (confident learning), outliers, trigger
phrases (backdoors) and class-balance shift against a reference set.

Confident learning (Northcutt et al., 2021) is implemented here (cleanlab is AGPL): out-of-sample
class probabilities come from cross-validated logistic regression on hashed word n-grams; per-class
thresholds are the mean self-confidence of each class; an example whose given label is below its
class threshold while another class is above its own is a likely label error, ranked by margin.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class LabelIssue:
    index: int
    given: str
    suggested: str
    margin: float  # p(suggested) - p(given)


@dataclass(frozen=True, slots=True)
class TriggerPhrase:
    phrase: str
    label: str
    count: int
    purity: float


def _features(texts: list[str]) -> object:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        n_features=1 << 18, ngram_range=(1, 2), alternate_sign=False, norm="l2"
    ).transform(texts)


def label_issues(
    texts: list[str], labels: list[str], *, folds: int = 5, seed: int = 0, features: object | None = None
) -> tuple[list[LabelIssue], object]:
    """Likely label errors by confident learning; also returns the out-of-sample probabilities.

    ``features`` (a numeric matrix, one row per example) replaces the hashed text n-grams."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    classes, y = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    counts = np.bincount(y)
    if len(classes) < 2 or counts.min() < folds:
        return [], None
    x = _features(texts) if features is None else features
    clf = LogisticRegression(max_iter=1000, C=4.0)
    probs = cross_val_predict(
        clf, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba"
    )
    thresholds = np.array([probs[y == k, k].mean() for k in range(len(classes))])
    above = probs >= thresholds[None, :]
    issues: list[LabelIssue] = []
    for i in range(len(y)):
        given = y[i]
        if above[i, given]:
            continue
        cand = np.where(above[i])[0]
        if cand.size == 0:
            continue
        best = int(cand[np.argmax(probs[i, cand])])
        if best == given:
            continue
        issues.append(
            LabelIssue(i, str(classes[given]), str(classes[best]), float(probs[i, best] - probs[i, given]))
        )
    issues.sort(key=lambda s: -s.margin)
    return issues, probs


def outliers(texts: list[str], *, z: float = 4.0) -> list[tuple[int, float]]:
    """Rows far from the data's centre (cosine distance z-score over hashed n-grams) or of extreme length."""
    if len(texts) < 20:
        return []
    x = _features(texts)
    centre = np.asarray(x.mean(axis=0)).ravel()  # type: ignore[attr-defined]
    norm = np.linalg.norm(centre) or 1.0
    sims = np.asarray(x @ (centre / norm)).ravel()  # type: ignore[operator]
    lengths = np.log1p(np.array([len(t) for t in texts], dtype=float))
    out: dict[int, float] = {}
    for values, sign in ((sims, -1.0), (lengths, 1.0), (lengths, -1.0)):
        sd = values.std() or 1.0
        scores = sign * (values - values.mean()) / sd
        for i in np.where(scores > z)[0]:
            out[int(i)] = max(out.get(int(i), 0.0), float(scores[i]))
    return sorted(out.items(), key=lambda kv: -kv[1])


def _grams(text: str) -> set[str]:
    words = _TOKEN.findall(text.lower())
    grams = set(words)
    grams.update(" ".join(words[i : i + 2]) for i in range(len(words) - 1))
    grams.update(" ".join(words[i : i + 3]) for i in range(len(words) - 2))
    return grams


def trigger_phrases(
    texts: list[str],
    labels: list[str],
    *,
    min_count: int = 8,
    min_purity: float = 0.97,
    max_phrases: int = 20,
) -> list[TriggerPhrase]:
    """Word n-grams (1-3) that almost always come with one label *although the rest of their rows
    points to another label*: the signature of a trigger-phrase backdoor.

    Natural label words (``excellent`` in positive reviews) are pure too, but their co-occurring
    words agree with the label; a planted trigger sits in rows whose other words disagree.
    """
    label_counts = Counter(labels)
    total = len(labels)
    if total < 50 or len(label_counts) < 2:
        return []
    per_gram: dict[str, Counter[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        for g in _grams(text):
            c = per_gram.get(g)
            if c is None:
                if len(per_gram) > 2_000_000:
                    continue
                c = per_gram[g] = Counter()
            c[label] += 1
    candidates: dict[str, tuple[str, int, float]] = {}
    for gram, c in per_gram.items():
        n = sum(c.values())
        if n < min_count or n > total * 0.2:
            continue
        label, k = c.most_common(1)[0]
        base = label_counts[label] / total
        if k / n >= min_purity and base < 0.9 and _log_binom_tail(n, k, base) < -10:
            candidates[gram] = (label, n, k / n)
    if not candidates:
        return []
    top = dict(sorted(candidates.items(), key=lambda kv: -kv[1][1])[:500])
    agree: dict[str, list[float]] = {g: [] for g in top}  # per row: mean (P(label | co-word) - base rate)
    for text in texts:
        grams = _grams(text)
        hits = [g for g in grams if g in top]
        if not hits:
            continue
        words = [w for w in grams if " " not in w]
        for g in hits:
            label = top[g][0]
            others = [w for w in words if w not in g.split()]
            base = label_counts[label] / total
            shares = [
                per_gram[w][label] / max(sum(per_gram[w].values()), 1) - base for w in others if w in per_gram
            ]
            if shares:
                agree[g].append(sum(shares) / len(shares))
    found: list[TriggerPhrase] = []
    for g, (label, n, purity) in top.items():
        support = agree[g]
        if support and sum(support) / len(support) < -0.1:  # the rest of the rows disagrees with the label
            found.append(TriggerPhrase(g, label, n, purity))
    found.sort(key=lambda t: (-t.count * t.purity, t.phrase))
    kept: list[TriggerPhrase] = []
    for t in found:  # keep one phrase per overlapping group
        if not any(set(t.phrase.split()) & set(k.phrase.split()) for k in kept):
            kept.append(t)
        if len(kept) >= max_phrases:
            break
    return kept


def _log_binom_tail(n: int, k: int, p: float) -> float:
    """log P(X >= k) for X ~ Binomial(n, p), upper-bounded by the Chernoff bound."""
    q = k / n
    if q <= p:
        return 0.0
    if q >= 1.0:
        return n * math.log(p)
    return -n * (q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p)))


def balance_shift(labels: list[str], reference: list[str]) -> tuple[float, dict[str, tuple[float, float]]]:
    """Total variation distance between label distributions, with per-class shares (data, reference)."""
    a, b = Counter(labels), Counter(reference)
    na, nb = max(sum(a.values()), 1), max(sum(b.values()), 1)
    shares = {k: (a[k] / na, b[k] / nb) for k in sorted(set(a) | set(b))}
    tvd = 0.5 * sum(abs(x - y) for x, y in shares.values())
    return tvd, shares
