"""Held-out check: does scoring sentence chunks (max over chunks) beat scoring the whole text?

    nice -n 10 .venv/bin/python training/chunk_experiment.py [--out training/out/chunk_experiment.json]

Indirect injections hide one instruction in a longer benign document, where a whole-text score dilutes
it. This scores every dev row by the same leave-one-source-group-out models as
:mod:`training.train_prompt_injection` (same generated rows, weights and folds), once on the whole text
and once on sentence chunks of at least ``60 / 150 / 300`` characters, taking ``max(whole, best chunk)``
and the mean of that and the whole-text score. Exploratory (about 3 minutes on 2 cores); not part of the
shipped build. The result is recorded in ``docs/model-card-prompt-injection.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from training import train_prompt_injection as T  # noqa: E402

_BOUNDARY = re.compile(r"(?<=[.!?。！？])\s+|\n+")
MIN_CHARS = (60, 150, 300)


def chunks(text: str, min_len: int) -> list[str]:
    """Sentences merged into chunks of at least ``min_len`` characters (a short tail joins the last)."""
    out: list[str] = []
    cur = ""
    for part in (p for p in _BOUNDARY.split(text) if p.strip()):
        cur = f"{cur} {part}" if cur else part
        if len(cur) >= min_len:
            out.append(cur)
            cur = ""
    if cur:
        if out and len(cur) < min_len // 2:
            out[-1] += " " + cur
        else:
            out.append(cur)
    return out or [text]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/prompt-injection/dev.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "training/out/chunk_experiment.json")
    args = ap.parse_args(argv)
    rows = T.load(args.data)
    groups = [T.source_group(str(r["source"])) for r in rows]
    aug = T.generated_rows(rows, groups)
    per_fold: list[dict[str, np.ndarray]] = []

    def score(model: Any, _vec: object, held: list[str]) -> np.ndarray:
        """Whole-text scores for :func:`logo`; the chunk variants of the fold go to ``per_fold``."""
        whole = model.predict_proba(T.matrix(held))[:, 1]
        fold = {}
        for m in MIN_CHARS:
            per_text = [chunks(t, m) for t in held]
            p = model.predict_proba(T.matrix([c for cs in per_text for c in cs]))[:, 1]
            ends = np.cumsum([len(cs) for cs in per_text])
            best = np.maximum(whole, [p[e - len(cs) : e].max() for e, cs in zip(ends, per_text, strict=True)])
            fold[f"max{m}"], fold[f"mix{m}"] = best, 0.5 * (whole + best)
        per_fold.append(fold)
        return whole

    variants = {"whole": T.logo(rows, groups, aug, None, T.hashed_fit, score)}
    # logo scores the groups in sorted order: put each fold's chunk variants back at the same rows
    for name in per_fold[0]:
        variants[name] = np.zeros(len(rows))
        for g, fold in zip(sorted(set(groups)), per_fold, strict=True):
            variants[name][[i for i, gg in enumerate(groups) if gg == g]] = fold[name]
    results = {}
    for name, scores in variants.items():
        r = T.summarise(name, rows, groups, scores)
        results[name] = {
            k: r[k] for k in ("tpr_at_1pct_fpr", "tpr_at_2pct_5pct_fpr", "roc_auc", "fpr_benign_hard")
        }
        print(name, json.dumps(results[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
