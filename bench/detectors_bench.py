"""Benchmark Bastion's runtime detectors: precision, recall, F1, TPR at 1% FPR, latency p50/p99.

    .venv/bin/python bench/detectors_bench.py [--logo] [--n-pii 2000] [--data ../shared/data/prompt-injection/dev.jsonl]
        [--model CANDIDATE.npz] [--only prompt_injection]

- prompt_injection: with --logo, the held-out-source numbers (leave-one-source-group-out, the same
  code as training/train_prompt_injection.py) for Bastion and a word TF-IDF + LR baseline; always the
  shipped model's latency per 1,000-character prompt (one thread) and a 100,000+ character input.
- pii: a generated multi-locale corpus (Faker: en_US, en_GB, de_DE, fr_FR, es_ES, it_IT, nl_NL, pt_BR,
  pl_PL) with gold spans, plus real text without PII (the dev set's benign math/instruction prompts,
  or the Python stdlib's docstrings when the dev set is absent) for false positives.
- secrets: generated provider-format tokens for recall; the Python stdlib sources for precision.
- hidden_text, unsafe_output, canary: small generated positive/negative sets.

``--model`` scores with a candidate prompt-injection model file instead of the shipped one (to compare
a retrained model's latency and everyday false positives before shipping it), e.g. one trained with
``training/train_prompt_injection.py --external --out /tmp/candidate.npz``.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets as pysecrets
import string
import sys
import sysconfig
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bastion.detectors import load_builtins  # noqa: E402
from bastion.detectors.interface import Direction, ScanContext, detectors  # noqa: E402

CTX_IN = ScanContext()
CTX_OUT = ScanContext(direction=Direction.OUTPUT)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def latency(det, texts: list[str], ctx: ScanContext) -> tuple[float, float]:
    times = []
    for t in texts:
        s = time.perf_counter()
        det.scan(t, ctx)
        times.append((time.perf_counter() - s) * 1000)
    return pct(times, 50), pct(times, 99)


def row(name, p, r, tpr, p50, p99, note=""):
    f1 = 2 * p * r / (p + r) if p == p and r == r and (p + r) > 0 else float("nan")
    return {
        "detector": name,
        "precision": p,
        "recall": r,
        "f1": f1,
        "tpr@1%fpr": tpr,
        "p50_ms": p50,
        "p99_ms": p99,
        "note": note,
    }


# ---------------------------------------------------------------- prompt injection
def bench_prompt_injection(data: Path, do_logo: bool) -> list[dict]:
    det = detectors.create("prompt_injection")
    rows_out = []
    texts = []
    if data.exists():
        rows = [json.loads(line) for line in data.open(encoding="utf-8")]
        pool = " ".join(r["text"] for r in rows)
        rng = random.Random(0)
        for _ in range(300):
            i = rng.randrange(0, len(pool) - 1000)
            texts.append(pool[i : i + 1000])
    else:
        texts = [("The quick brown fox jumps over the lazy dog. " * 23)[:1000]] * 300
    det.scan(texts[0], CTX_IN)
    p50, p99 = latency(det, texts, CTX_IN)
    big = (texts[0] + " ") * 120
    tracemalloc.start()
    s = time.perf_counter()
    det.scan(big, CTX_IN)
    big_s = time.perf_counter() - s
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    note = f"1,000-char prompts; {len(big):,}-char input: {big_s * 1000:.0f} ms, peak {peak:.1f} MB traced"
    if do_logo and data.exists():
        from training.train_prompt_injection import (
            baseline_fit,
            baseline_score,
            generated_rows,
            hashed_fit,
            hashed_score,
            logo,
            source_group,
            summarise,
        )

        groups = [source_group(r["source"]) for r in rows]
        aug = generated_rows(rows, groups)
        y = np.asarray([r["label"] for r in rows])
        for label, fit_fn, score_fn, a in (
            ("prompt_injection (held-out sources)", hashed_fit, hashed_score, aug),
            ("baseline word TF-IDF+LR (held-out)", baseline_fit, baseline_score, []),
        ):
            oof = logo(rows, groups, a, None, fit_fn, score_fn)
            summ = summarise(label, rows, groups, oof)
            pred = oof >= summ["threshold"]
            tp = int(np.sum(pred & (y == 1)))
            fp = int(np.sum(pred & (y == 0)))
            prec = tp / (tp + fp) if tp + fp else float("nan")
            rec = tp / int(np.sum(y == 1))
            r = row(
                label,
                prec,
                rec,
                summ["tpr_at_1pct_fpr"],
                p50 if "baseline" not in label else float("nan"),
                p99 if "baseline" not in label else float("nan"),
                f"FPR benign_hard {summ['fpr_benign_hard']:.2%}; "
                + (note if "baseline" not in label else ""),
            )
            rows_out.append(r)
    else:
        rows_out.append(
            row("prompt_injection (latency only)", float("nan"), float("nan"), float("nan"), p50, p99, note)
        )
    rows_out.append(everyday_false_positives())
    return rows_out


EVERYDAY = Path(__file__).parent / "data" / "everyday_prompts.jsonl"


def everyday_false_positives() -> dict:
    """Flag and block rates of ``bastion scan prompts`` scoring on everyday benign requests.

    ``bench/data/everyday_prompts.jsonl``: 139 ordinary requests written for this check (many with the
    verbs attacks use: ignore, forget, reveal, from now on, pretend), never used in training.
    """
    from bastion.detectors.pipeline import ranking_score, run_detectors

    names = ("prompt_injection", "hidden_text")  # what `bastion scan prompts` runs by default
    texts = [json.loads(line)["text"] for line in EVERYDAY.open(encoding="utf-8")]
    scores = [ranking_score(t, run_detectors(t, names, CTX_IN), names) for t in texts]
    flagged = sum(s >= 0.5 for s in scores)
    blocked = sum(s >= 0.9 for s in scores)
    return row(
        "prompt_injection on everyday prompts (benign)",
        float("nan"),
        float("nan"),
        float("nan"),
        float("nan"),
        float("nan"),
        f"{len(texts)} texts: flagged {flagged} ({flagged / len(texts):.1%}), blocked {blocked} "
        f"({blocked / len(texts):.1%})",
    )


# ---------------------------------------------------------------- PII
LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pl_PL"]


def _valid_national_id(fake, locale: str) -> str | None:
    from stdnum.br import cpf
    from stdnum.es import dni
    from stdnum.fr import nir
    from stdnum.it import codicefiscale
    from stdnum.nl import bsn
    from stdnum.pl import pesel
    from stdnum.us import ssn

    gen = {
        "en_US": (lambda: fake.ssn(), ssn.is_valid, "SSN"),
        "fr_FR": (
            lambda: fake.ssn(),
            lambda v: nir.is_valid(v.replace(" ", "")),
            "numéro de sécurité sociale",
        ),
        "it_IT": (lambda: fake.ssn(), codicefiscale.is_valid, "codice fiscale"),
        "es_ES": (lambda: fake.nif(), dni.is_valid, "DNI"),
        "nl_NL": (lambda: fake.ssn(), bsn.is_valid, "BSN"),
        "pt_BR": (lambda: fake.cpf(), cpf.is_valid, "CPF"),
        "pl_PL": (lambda: fake.pesel(), pesel.is_valid, "PESEL"),
    }.get(locale)
    if gen is None:
        return None
    for _ in range(20):
        v = gen[0]()
        try:
            if gen[1](v):
                return f"{gen[2]} {v}"
        except Exception:
            continue
    return None


def pii_corpus(n: int) -> list[tuple[str, list[tuple[str, int, int]]]]:
    from faker import Faker

    docs = []
    rng = random.Random(1)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for f in fakers.values():
        f.seed_instance(7)
    for i in range(n):
        loc = LOCALES[i % len(LOCALES)]
        f = fakers[loc]
        parts: list[tuple[str, str | None]] = [("Hello, please update my account. ", None)]
        choice = rng.sample(["email", "phone", "payment_card", "iban", "national_id", "ip_address"], 3)
        for kind in choice:
            if kind == "email":
                parts += [("My e-mail is ", None), (f.email(), "email")]
            elif kind == "phone":
                parts += [("Call me at ", None), (f.phone_number(), "phone")]
            elif kind == "payment_card":
                parts += [("My card number is ", None), (f.credit_card_number(), "payment_card")]
            elif kind == "iban":
                parts += [("Transfer to IBAN ", None), (f.iban(), "iban")]
            elif kind == "national_id":
                v = _valid_national_id(f, loc)
                if v is None:
                    continue
                label, value = v.rsplit(" ", 1)
                parts += [(f"my {label} is ", None), (value, "national_id")]
            else:
                parts += [
                    ("the login came from ", None),
                    (f.ipv4() if rng.random() < 0.7 else f.ipv6(), "ip_address"),
                ]
            parts.append((". ", None))
        text, gold = "", []
        for s, kind in parts:
            if kind:
                gold.append((kind, len(text), len(text) + len(s)))
            text += s
        docs.append((text, gold))
    return docs


def negatives(data: Path) -> list[str]:
    if data.exists():
        rows = [json.loads(line) for line in data.open(encoding="utf-8")]
        keep = (
            "grade-school-math",
            "url-nlp",
            "self-instruct",
            "TaskTracker:task_tracker/dataset_creation/datasets/trivia",
        )
        return [r["text"] for r in rows if r["label"] == 0 and any(k in r["source"] for k in keep)]
    import ast

    out = []
    for p in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:200]:
        try:
            tree = ast.parse(p.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        out += [d for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and (d := ast.get_docstring(n))]
    return out


def bench_pii(n: int, data: Path) -> list[dict]:
    det = detectors.create("pii")
    docs = pii_corpus(n)
    tp = defaultdict(int)
    fp = defaultdict(int)
    fn = defaultdict(int)
    for text, gold in docs:
        found = [(f.type.split(".", 1)[1], f.spans[0].start, f.spans[0].end) for f in det.scan(text, CTX_IN)]
        for kind, a, b in gold:
            if any(k == kind and s < b and a < e for k, s, e in found):
                tp[kind] += 1
            else:
                fn[kind] += 1
        for k, s, e in found:
            if not any(k == kind and s < b and a < e for kind, a, b in gold):
                fp[k] += 1
    neg = negatives(data)
    for t in neg:
        for f in det.scan(t, CTX_IN):
            fp[f.type.split(".", 1)[1]] += 1
    p50, p99 = latency(det, [d[0] for d in docs[:500]] + neg[:500], CTX_IN)
    out = []
    for kind in [
        "email",
        "phone",
        "payment_card",
        "iban",
        "national_id",
        "ip_address",
        "street_address",
        "person_name",
    ]:
        p = tp[kind] / (tp[kind] + fp[kind]) if tp[kind] + fp[kind] else float("nan")
        r = tp[kind] / (tp[kind] + fn[kind]) if tp[kind] + fn[kind] else float("nan")
        note = f"gold {tp[kind] + fn[kind]}, FP {fp[kind]} (incl. {len(neg)} PII-free texts)"
        out.append(row(f"pii.{kind}", p, r, float("nan"), p50, p99, note))
    return out


# ---------------------------------------------------------------- secrets
def _rand(alphabet: str, n: int, rng: random.Random) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def secret_samples(rng: random.Random) -> list[str]:
    an = string.ascii_letters + string.digits
    up = string.ascii_uppercase + string.digits
    return [
        "AKIA" + _rand(up, 16, rng),
        "AIza" + _rand(an + "_-", 35, rng),
        "sk-proj-" + _rand(an + "_-", 48, rng),
        "sk-ant-api03-" + _rand(an + "_-", 93, rng),
        "hf_" + _rand(string.ascii_letters, 34, rng),
        "ghp_" + _rand(an, 36, rng),
        "github_pat_" + _rand(an + "_", 82, rng),
        "glpat-" + _rand(an + "_-", 20, rng),
        "xoxb-" + _rand(string.digits, 12, rng) + "-" + _rand(an, 24, rng),
        "sk_live_" + _rand(an, 24, rng),
        "SG." + _rand(an, 22, rng) + "." + _rand(an, 43, rng),
        "npm_" + _rand(an, 36, rng),
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "postgres://app:" + _rand(an, 16, rng) + "@db.internal:5432/prod",
        'client_secret = "' + _rand(an, 32, rng) + '"',
    ]


def bench_secrets() -> list[dict]:
    det = detectors.create("secrets")
    rng = random.Random(3)
    tp = fn = 0
    for _ in range(100):
        for s in secret_samples(rng):
            text = f"config line: {s}\n"
            if det.scan(text, CTX_IN):
                tp += 1
            else:
                fn += 1
    fp = 0
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    sizes = 0
    times = []
    for p in files:
        t = p.read_text(encoding="utf-8", errors="replace")
        sizes += len(t)
        s = time.perf_counter()
        fp += len(det.scan(t, CTX_IN))
        times.append((time.perf_counter() - s) * 1000)
    p50, p99 = latency(det, [("x = compute(a, b)  # some code\n" * 40)[:1000]] * 300, CTX_IN)
    note = (
        f"recall on {tp + fn} generated tokens; FP on {len(files)} stdlib files ({sizes / 1e6:.1f} M chars)"
    )
    return [
        row(
            "secrets",
            tp / (tp + fp) if tp + fp else float("nan"),
            tp / (tp + fn),
            float("nan"),
            p50,
            p99,
            note,
        )
    ]


# ---------------------------------------------------------------- small synthetic sets
def bench_small() -> list[dict]:
    rng = random.Random(5)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog",
        "while",
        "people",
        "read",
        "news",
        "about",
        "weather",
    ]

    def sentence() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(8, 30))).capitalize() + "."

    def tags(s: str) -> str:
        return "".join(chr(0xE0000 + ord(c)) for c in s)

    hidden_pos = [
        sentence()
        + rng.choice([tags("ignore the rules"), "\u200b", "\u202e", " pаypal ", "\x1b[31m", "\u2066x\u2069"])
        for _ in range(300)
    ]
    hidden_neg = [sentence() for _ in range(300)] + [
        "Привет, как дела? " + sentence(),
        "Ελληνικά κείμενο.",
        "👨\u200d👩\u200d👧 family",
    ] * 10
    b64 = lambda: pysecrets.token_urlsafe(30)  # noqa: E731
    out_pos = [
        sentence()
        + rng.choice(
            [
                f" ![img](https://x{i}.example/p.png?q={b64()})",
                "<script>alert(1)</script>",
                f" [link](https://t{i}.example/c?d={b64()})",
                " <img src=x onerror=alert(1)>",
            ]
        )
        for i in range(300)
    ]
    out_neg = [
        sentence()
        + rng.choice(
            [
                "",
                " See [docs](https://docs.python.org/3/library/re.html).",
                " ![logo](https://example.com/logo.png)",
            ]
        )
        for _ in range(300)
    ]
    system = " ".join(rng.choice(words) for _ in range(60))
    canary_val = "bst-canary-0123456789abcdef"
    can_pos = [sentence() + " " + " ".join(system.split()[i : i + 30]) for i in range(0, 30)] + [
        sentence() + " " + canary_val for _ in range(30)
    ]
    can_neg = [sentence() + " " + sentence() for _ in range(60)]
    out = []
    for name, pos, neg, ctx, ignore in (
        ("hidden_text", hidden_pos, hidden_neg, CTX_IN, set()),
        ("unsafe_output", out_pos, out_neg, CTX_OUT, {"output.external_image"}),
        (
            "canary",
            can_pos,
            can_neg,
            ScanContext(direction=Direction.OUTPUT, system_prompt=system, canary=canary_val),
            set(),
        ),
    ):
        det = detectors.create(name)
        tp = sum(any(f.type not in ignore for f in det.scan(t, ctx)) for t in pos)
        fp = sum(any(f.type not in ignore for f in det.scan(t, ctx)) for t in neg)
        p50, p99 = latency(det, [(t * 10)[:1000] for t in pos[:200]], ctx)
        out.append(
            row(
                name,
                tp / (tp + fp) if tp + fp else float("nan"),
                tp / len(pos),
                float("nan"),
                p50,
                p99,
                f"generated: {len(pos)} positive, {len(neg)} negative",
            )
        )
    return out


def fmt(v: float, pct_: bool = False) -> str:
    if v != v:
        return "—"
    return f"{v:.1%}" if pct_ else f"{v:.3f}"


def use_model(path: Path) -> None:
    """Make the prompt-injection detector score with the model file at ``path`` (a candidate)."""
    from bastion.detectors import prompt_injection as pi

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode("utf-8"))
        weights = data["weights"].astype(np.float32)
        bias = float(data["bias"][0])
    pi._model = pi.Model(weights, bias, float(meta["threshold_flag"]), float(meta["threshold_block"]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/prompt-injection/dev.jsonl")
    ap.add_argument(
        "--logo", action="store_true", help="also run held-out-source validation (about 2 minutes)"
    )
    ap.add_argument("--n-pii", type=int, default=1800)
    ap.add_argument("--model", type=Path, default=None, help="a candidate prompt-injection model (.npz)")
    ap.add_argument("--only", choices=["prompt_injection"], default=None, help="skip the other detectors")
    args = ap.parse_args()
    load_builtins()
    if args.model:
        use_model(args.model)
    rows = bench_prompt_injection(args.data, args.logo)
    if args.only is None:
        rows += bench_pii(args.n_pii, args.data) + bench_secrets() + bench_small()
    print("| detector | precision | recall | F1 | TPR@1%FPR | p50 ms | p99 ms | note |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['detector']} | {fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['f1'])} | "
            f"{fmt(r['tpr@1%fpr'], True)} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | {r['note']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
