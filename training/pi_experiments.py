"""Leave-one-source-group-out comparison of feature sets for the prompt-injection classifier.

    .venv/bin/python training/pi_experiments.py --table training/out/minilm_static.npz [--dims 256]

Each variant is scored by the protocol of :mod:`training.train_prompt_injection` (every source group
scored by a model trained without it, thresholds on the pooled out-of-group scores), in one run with
the word TF-IDF baseline. Prints one line per variant; exploratory, not part of the shipped build.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from training.augment import augmented_rows, augmented_rows_v2  # noqa: E402
from training.static_embeddings import from_arrays, quantise  # noqa: E402
from training.train_prompt_injection import (  # noqa: E402
    load,
    matrix,
    source_group,
    summarise,
)


def table(path: Path, dims: int):
    with np.load(path, allow_pickle=False) as d:
        emb = d["embeddings"][:, :dims].astype(np.float32)
        vocab = d["vocab"]
    t, s = quantise(emb)
    return from_arrays(vocab, t, s)


def logo_dense(x, y, groups_all, test_groups, make):
    scores = np.zeros(len(test_groups))
    tg = np.asarray(test_groups)
    ga = np.asarray(groups_all)
    for g in sorted(set(test_groups)):
        tr = ga != g
        model = make().fit(x[tr], y[tr])
        idx = np.flatnonzero(tg == g)
        scores[idx] = (
            model.decision_function(x[idx])
            if hasattr(model, "decision_function")
            else (model.predict_proba(x[idx])[:, 1])
        )
    return scores


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/prompt-injection/dev.jsonl")
    ap.add_argument("--table", type=Path, default=ROOT / "training/out/minilm_static.npz")
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--only", default="")
    ap.add_argument("--aug", choices=("v1", "v2"), default="v1")
    args = ap.parse_args()
    rows = load(args.data)
    groups = [source_group(str(r["source"])) for r in rows]
    aug = (augmented_rows_v2 if args.aug == "v2" else augmented_rows)(rows, groups)
    print(f"{len(aug)} augmented rows", flush=True)
    texts = [str(r["text"]) for r in rows] + [str(a["text"]) for a in aug]
    y = np.asarray([r["label"] for r in rows] + [a["label"] for a in aug])
    gall = groups + [str(a["group"]) for a in aug]
    n = len(rows)
    t0 = time.perf_counter()
    st = table(args.table, args.dims)
    emb = np.vstack([st.features(t) for t in texts])
    print(f"embedding features {emb.shape} in {time.perf_counter() - t0:.1f}s", flush=True)
    t0 = time.perf_counter()
    hashed = matrix(texts)
    print(f"hashed features in {time.perf_counter() - t0:.1f}s", flush=True)
    results = {}

    def report(name, s):
        r = summarise(name, rows, groups, s)
        results[name] = r
        pg = {g: (v["tpr"], v["fpr"]) for g, v in r["per_group"].items()}
        print(
            f"{name:40s} TPR {r['tpr_at_1pct_fpr']:.4f} hardFPR {r['fpr_benign_hard']:.4f} {pg}", flush=True
        )
        return s

    def lr(c):
        return lambda: LogisticRegression(C=c, max_iter=3000, solver="liblinear", class_weight="balanced")

    variants = {}
    variants["hashed_lr"] = lambda: logo_dense(hashed, y, gall, groups, lr(0.5))
    for c in (0.25, 1.0, 2.0):
        variants[f"hashed_C{c}"] = lambda c=c: logo_dense(hashed, y, gall, groups, lr(c))
    full = ROOT / "training/out/full_minilm_v2.npy"
    if full.exists():
        variants["full_minilm_lr"] = lambda: logo_dense(np.load(full)[: len(texts)], y, gall, groups, lr(4.0))
    for c in (0.3, 1.0, 4.0):
        variants[f"emb_lr_C{c}"] = lambda c=c: logo_dense(emb, y, gall, groups, lr(c))
    variants["emb_mlp"] = lambda: logo_dense(
        emb,
        y,
        gall,
        groups,
        lambda: MLPClassifier((128,), alpha=1e-3, max_iter=300, early_stopping=False, random_state=0),
    )
    for a in (0.5, 1.0, 2.0):
        variants[f"concat_a{a}"] = lambda a=a: logo_dense(
            sparse.hstack((hashed, sparse.csr_matrix(emb * a))).tocsr(), y, gall, groups, lr(0.5)
        )
    only = set(args.only.split(",")) if args.only else None
    for name, fn in variants.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        s = fn()
        report(name, s[:n] if s.size > n else s)
        print(f"  ({time.perf_counter() - t0:.0f}s)", flush=True)
    Path(ROOT / "training/out").mkdir(exist_ok=True)
    (ROOT / f"training/out/experiments_{args.aug}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
