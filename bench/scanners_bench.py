"""Model-scanner benchmark: detection per technique family, false positives and speed, side by side
with picklescan, modelscan, fickling and modelaudit (each in its own venv under bench/out/).

    bench/out/venv-torch/bin/python bench/scanners_corpus.py      # build the corpus once
    .venv/bin/python bench/scanners_bench.py                      # run everything, print markdown

"Flagged" means: bastion reports a finding of medium severity or worse, or an error (fail closed);
a peer reports any issue (picklescan: infected or scan error; modelscan: any issue; fickling: not
``is_likely_safe``; modelaudit: any issue of warning severity or worse).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "out"
CORPUS = OUT / "corpus"
PEERS = ("picklescan", "modelscan", "fickling", "modelaudit")

_DRIVER = r"""
import json, sys, time, io, contextlib, logging
logging.disable(logging.CRITICAL)
tool, files = sys.argv[1], json.load(open(sys.argv[2]))
def run(p):
    if tool == "picklescan":
        from picklescan.scanner import scan_file_path
        r = scan_file_path(p)
        return r.infected_files > 0 or bool(r.scan_err), bool(r.scan_err)
    if tool == "fickling":
        import fickling
        return not fickling.is_likely_safe(p), False
    if tool == "modelscan":
        from modelscan.modelscan import ModelScan
        r = ModelScan().scan(p)
        return bool(r.get("issues")), bool(r.get("errors"))
    if tool == "modelaudit":
        from modelaudit.core import scan_model_directory_or_file
        r = scan_model_directory_or_file(p)
        issues = r.get("issues", []) if isinstance(r, dict) else getattr(r, "issues", [])
        sev = lambda i: str(i.get("severity") if isinstance(i, dict) else getattr(i, "severity", "")).lower()
        return any(s.split(".")[-1] in ("warning", "critical", "error", "high") for s in map(sev, issues)), False
out = []
for p in files:
    t = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            flagged, err = run(p)
    except Exception as e:
        flagged, err = False, True
    out.append([p, bool(flagged), bool(err), time.perf_counter() - t])
print(json.dumps(out))
"""


def bastion_scan(files: list[Path]) -> list[tuple[str, bool, bool, float]]:
    sys.path.insert(0, str(HERE.parent / "src"))
    from bastion.domain.findings import Severity
    from bastion.scanners.model.artifacts import ModelScanOptions, scan_file

    opts = ModelScanOptions(digest=False)
    rows = []
    for p in files:
        t = time.perf_counter()
        r = scan_file(p, str(p), opts)
        flagged = r.error is not None or any(f.severity.at_least(Severity.MEDIUM) for f in r.findings)
        rows.append((str(p), flagged, r.error is not None, time.perf_counter() - t))
    return rows


def peer_scan(tool: str, files: list[Path], timeout: float) -> list[tuple[str, bool, bool, float]] | None:
    py = OUT / f"venv-{tool}" / "bin" / "python"
    if not py.exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([str(f) for f in files], fh)
    try:
        proc = subprocess.run(
            [str(py), "-c", _DRIVER, tool, fh.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[")]
        return [tuple(x) for x in json.loads(lines[-1])] if lines else None  # type: ignore[misc]
    except subprocess.TimeoutExpired:
        return None
    finally:
        os.unlink(fh.name)


def detection_table(
    manifest: list[dict[str, str]], results: dict[str, list[tuple[str, bool, bool, float]]]
) -> str:
    families = sorted({m["family"] for m in manifest if m["label"] == "malicious"})
    label_of = {str(CORPUS / m["path"]): (m["label"], m["family"]) for m in manifest}
    tools = list(results)
    lines = ["| family (malicious files) | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
    per: dict[str, dict[str, list[bool]]] = {t: defaultdict(list) for t in tools}
    for t, rows in results.items():
        for path, flagged, _err, _s in rows:
            label, fam = label_of[path]
            per[t][fam if label == "malicious" else "benign:" + fam].append(flagged)
    for fam in families:
        cells = [f"{sum(per[t][fam])}/{len(per[t][fam])}" for t in tools]
        lines.append(f"| {fam} | " + " | ".join(cells) + " |")
    mal = [sum(sum(v) for k, v in per[t].items() if not k.startswith("benign:")) for t in tools]
    nmal = [sum(len(v) for k, v in per[t].items() if not k.startswith("benign:")) for t in tools]
    lines.append(
        "| **all techniques detected** | "
        + " | ".join(f"**{a}/{b}**" for a, b in zip(mal, nmal, strict=True))
        + " |"
    )
    lines.append("| | " + " | " * len(tools))
    bfams = sorted({k for t in tools for k in per[t] if k.startswith("benign:")})
    for fam in bfams:
        lines.append(
            f"| FP {fam} | " + " | ".join(f"{sum(per[t][fam])}/{len(per[t][fam])}" for t in tools) + " |"
        )
    fp = [sum(sum(v) for k, v in per[t].items() if k.startswith("benign:")) for t in tools]
    nb = [sum(len(v) for k, v in per[t].items() if k.startswith("benign:")) for t in tools]
    lines.append(
        "| **false positives (benign flagged)** | "
        + " | ".join(f"**{a}/{b}**" for a, b in zip(fp, nb, strict=True))
        + " |"
    )
    return "\n".join(lines)


def speed_row(results: dict[str, list[tuple[str, bool, bool, float]]]) -> str:
    lines = ["| tool | files/s (corpus) | MB/s (corpus) | errors |", "|---|---|---|---|"]
    for t, rows in results.items():
        total = sum(r[3] for r in rows)
        size = sum(Path(r[0]).stat().st_size for r in rows)
        lines.append(
            f"| {t} | {len(rows) / total:.0f} | {size / total / 1e6:.1f} | {sum(r[2] for r in rows)} |"
        )
    return "\n".join(lines)


def opcode_dense(path: Path, mb: int) -> None:
    import pickle

    items = []
    while len(pickle.dumps(items, protocol=4)) < mb * 1_000_000 and len(items) < 10_000_000:
        items.extend(
            {"id": i, "name": f"n{i}", "tags": ["a", "b"], "w": (i, 0.5)}
            for i in range(len(items), len(items) + 50_000)
        )
    path.write_bytes(
        pickle.dumps({"records": items, "vocab": {f"tok{i}": i for i in range(200_000)}}, protocol=4)
    )


def big_checkpoint(path: Path, gb: float) -> None:
    import pickle

    n = int(gb * (1 << 30))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle.dumps({"note": "storage is external"}, protocol=2))
        with z.open("archive/data/0", "w", force_zip64=True) as fh:
            chunk = os.urandom(1 << 20)
            for _ in range(n >> 20):
                fh.write(chunk)


def big_safetensors(path: Path, gb: float) -> None:
    n = int(gb * (1 << 30)) // 4 * 4
    h = json.dumps({"w": {"dtype": "F32", "shape": [n // 4], "data_offsets": [0, n]}}).encode()
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h)
        chunk = os.urandom(1 << 20)
        for _ in range(n >> 20):
            fh.write(chunk)


def throughput(tools: list[str], repeats: int, gb: float, dense_mb: int, peer_timeout: float = 300) -> str:
    work = OUT / "speed"
    work.mkdir(parents=True, exist_ok=True)
    files = {
        "opcode-dense pickle": work / "dense.pkl",
        "PyTorch zip checkpoint": work / "ckpt.pt",
        "safetensors": work / "big.safetensors",
    }
    if not files["opcode-dense pickle"].exists():
        opcode_dense(files["opcode-dense pickle"], dense_mb)
    if not files["PyTorch zip checkpoint"].exists():
        big_checkpoint(files["PyTorch zip checkpoint"], gb)
    if not files["safetensors"].exists():
        big_safetensors(files["safetensors"], gb)
    header = "| file | size | " + " | ".join(f"{t} MB/s" for t in tools) + " |"
    lines = [header, "|---|---|" + "---|" * len(tools)]
    print("\n".join(lines), flush=True)
    for label, p in files.items():
        cells = []
        for t in tools:
            times = []
            for _ in range(repeats):
                rows = bastion_scan([p]) if t == "bastion" else peer_scan(t, [p], timeout=peer_timeout)
                if not rows or rows[0][2]:
                    break
                times.append(rows[0][3])
                if rows[0][3] > 30:  # slow tools: one run is enough to place them
                    break
            cells.append(f"{p.stat().st_size / statistics.median(times) / 1e6:,.1f}" if times else "n/a")
        lines.append(f"| {label} | {p.stat().st_size / 1e6:,.0f} MB | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


_PICKLE_DRIVER = r"""
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from bastion.scanners.model.interface import Deadline, ScanLimits
from bastion.scanners.model.pickle_scan import scan_pickle_stream
kw = {}
if sys.argv[4] == "pure":
    from bastion.scanners.model.pickle_machine import PickleMachine
    kw["machine"] = PickleMachine
elif sys.argv[4] == "compiled":
    from bastion.scanners.model.pickle_native import native_machine
    kw["machine"] = native_machine()
    if kw["machine"] is None:
        sys.exit("no compiled pickle machine in " + sys.argv[1] + ": run hatch_build.py or pip install -e .")
out = {}
for p in json.loads(sys.argv[2]):
    data = open(p, "rb").read()
    times = []
    for _ in range(int(sys.argv[3])):
        t = time.perf_counter()
        r = scan_pickle_stream(data, location=p, limits=ScanLimits(), deadline=Deadline(600.0), **kw)
        times.append(time.perf_counter() - t)
    out[p] = [len(data), statistics.median(times), len(r.findings)]
print(json.dumps(out))
"""


def dense_pickles(work: Path, dense_mb: int) -> dict[str, Path]:
    """The opcode-dense pickles of the speed table (built once, deterministic content)."""
    import collections
    import datetime
    import pickle

    files = {
        "records + 200k vocab, protocol 4 (the large-file table's file)": work / "dense.pkl",
        "list of small dicts, protocol 4": work / "dicts.pkl",
        "{str: int} vocabulary (500k), protocol 4": work / "vocab.pkl",
        "list of short strings (1M), protocol 2": work / "strings.pkl",
        "sklearn-like object graph (50k REDUCE/BUILD), protocol 2": work / "objects.pkl",
    }
    if not files["records + 200k vocab, protocol 4 (the large-file table's file)"].exists():
        opcode_dense(work / "dense.pkl", dense_mb)
    builders = {
        "dicts.pkl": lambda: pickle.dumps(
            [{"id": i, "label": i % 7, "score": i / 3, "ok": True} for i in range(300_000)], protocol=4
        ),
        "vocab.pkl": lambda: pickle.dumps({f"tok{i}": i for i in range(500_000)}, protocol=4),
        "strings.pkl": lambda: pickle.dumps([f"s{i % 5000}x{i}" for i in range(1_000_000)], protocol=2),
        "objects.pkl": lambda: pickle.dumps(
            [collections.OrderedDict(a=i, b=(i, "x")) for i in range(25_000)]
            + [datetime.date(2020, 1, 1 + i % 28) for i in range(25_000)],
            protocol=2,
        ),
    }
    for name, build in builders.items():
        if not (work / name).exists():
            (work / name).write_bytes(build())
    return files


def pickle_speed(repeats: int, dense_mb: int, baseline_src: str | None) -> str:
    """MB/s of the pickle simulator alone on opcode-dense pickles (median of ``repeats``).

    This tree is timed twice, with the pure-Python machine and with the mypyc-compiled one (built
    by ``hatch_build.py``; the run fails if it is missing or stale). With ``baseline_src`` (a ``src``
    directory of another revision, e.g. from ``git archive REV src | tar -x -C /tmp/base``) that
    tree is timed too, with its default machine. All in alternating subprocesses of the same run,
    so the ratios are not skewed by other load on the machine.
    """
    work = OUT / "speed"
    work.mkdir(parents=True, exist_ok=True)
    files = dense_pickles(work, dense_mb)
    src = str(HERE.parent / "src")
    runs_of: dict[str, tuple[str, str]] = {
        "pure Python": (src, "pure"),
        "compiled (mypyc)": (src, "compiled"),
    }
    if baseline_src:
        runs_of = {"baseline": (baseline_src, "default"), **runs_of}
    runs: dict[str, list[dict[str, list[float]]]] = {t: [] for t in runs_of}
    names = json.dumps([str(p) for p in files.values()])
    for _ in range(repeats):
        for label, (tree, mode) in runs_of.items():
            proc = subprocess.run(
                [sys.executable, "-c", _PICKLE_DRIVER, tree, names, "1", mode],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[label].append(json.loads(proc.stdout.splitlines()[-1]))
    for p in files.values():  # the two machines must agree (the property tests check it in depth)
        counts = {runs[t][0][str(p)][2] for t in ("pure Python", "compiled (mypyc)")}
        if len(counts) != 1:
            raise SystemExit(f"{p}: pure and compiled machines report different findings: {counts}")
    cols = list(runs_of)
    head = "| pickle | size | opcodes | " + " | ".join(f"{t} MB/s" for t in cols)
    head += " | compiled / pure |" + (" compiled / baseline |" if baseline_src else "")
    lines = [head, "|---|---|---|" + "---|" * (len(cols) + 1 + (1 if baseline_src else 0))]
    for label, p in files.items():
        size = p.stat().st_size
        med = {t: statistics.median(r[str(p)][1] for r in runs[t]) for t in cols}
        cells = [f"{size / med[t] / 1e6:.1f}" for t in cols]
        cells.append(f"{med['pure Python'] / med['compiled (mypyc)']:.2f}x")
        if baseline_src:
            cells.append(f"{med['baseline'] / med['compiled (mypyc)']:.2f}x")
        lines.append(f"| {label} | {size / 1e6:.1f} MB | {_opcode_count(p):,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _opcode_count(p: Path) -> int:
    import pickletools

    data = p.read_bytes()
    count, pos = 0, 0
    while pos < len(data):  # several pickles may follow each other
        for op, _arg, at in pickletools.genops(data[pos:]):
            count += 1
            if op.name == "STOP":
                pos += at + 1
                break
    return count


def dataset_bench(seed: int = 0) -> str:
    """Plant poison and report recall and false-positive rate of the data-set checks.

    Label flips: scikit-learn's bundled digits (5% of labels moved to another class), confident
    learning on the pixel features. Trigger backdoor and injected payloads: benign prompts from
    ../shared/data/prompt-injection/dev.jsonl (label = its ``category``: benign vs benign_hard);
    3% of one class get a trigger phrase and the other label; 100 attack rows are planted.
    """
    import random

    from sklearn.datasets import load_digits

    sys.path.insert(0, str(HERE.parent / "src"))
    from bastion.scanners.dataset import labels as lab

    rng = random.Random(seed)
    lines = ["| poison | planted | recall | false-positive rate | time |", "|---|---|---|---|---|"]
    x, y = load_digits(return_X_y=True)
    labels = [str(v) for v in y]
    flipped = set(rng.sample(range(len(labels)), k=len(labels) // 20))
    for i in flipped:
        labels[i] = str((int(labels[i]) + rng.randint(1, 9)) % 10)
    t = time.perf_counter()
    issues, _ = lab.label_issues([""] * len(labels), labels, features=x / 16.0)
    found = {i.index for i in issues}
    lines.append(_rate_row("flipped labels (digits, confident learning)", flipped, found, len(labels), t))
    data = HERE.parent.parent / "shared" / "data" / "prompt-injection" / "dev.jsonl"
    if not data.exists():
        lines.append("| trigger phrase / payloads | skipped: ../shared/data not present | | | |")
        return "\n".join(lines)
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").split("\n") if line.strip()]
    benign = [r for r in rows if r["label"] == 0 and len(r["text"]) < 2000][:3000]
    attacks = [r["text"] for r in rows if r["label"] == 1][:100]
    texts = [r["text"] for r in benign]
    cats = [r["category"] for r in benign]
    target = "benign"
    source = [i for i, c in enumerate(cats) if c != target]
    poisoned = set(rng.sample(source, k=max(len(texts) * 3 // 100, 1)))
    for i in poisoned:
        texts[i] = texts[i] + " Per the zx-omega protocol."
        cats[i] = target
    t = time.perf_counter()
    phrases = lab.trigger_phrases(texts, cats)
    hit = {i for i in range(len(texts)) for p in phrases if p.phrase in texts[i].lower()}
    lines.append(
        _rate_row("trigger phrase backdoor (rows with a reported phrase)", poisoned, hit, len(texts), t)
    )
    import bastion.detectors  # noqa: F401
    from bastion.detectors.interface import ScanContext, detectors

    det = detectors.create("prompt_injection")
    mixed = [(r, False) for r in [b["text"] for b in benign]] + [(a, True) for a in attacks]
    t = time.perf_counter()
    flagged = {i for i, (text, _) in enumerate(mixed) if det.scan(text[:20000], ScanContext())}
    planted = {i for i, (_, bad) in enumerate(mixed) if bad}
    lines.append(_rate_row("injected payloads (prompt_injection detector)", planted, flagged, len(mixed), t))
    return "\n".join(lines)


def _rate_row(name: str, planted: set[int], found: set[int], total: int, t0: float) -> str:
    recall = len(planted & found) / max(len(planted), 1)
    fpr = len(found - planted) / max(total - len(planted), 1)
    return f"| {name} | {len(planted)} of {total} | {recall:.1%} | {fpr:.2%} | {time.perf_counter() - t0:.1f} s |"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", default="bastion," + ",".join(PEERS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--gb", type=float, default=1.0, help="size of the large checkpoint and safetensors files"
    )
    ap.add_argument("--dense-mb", type=int, default=20)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--dataset", action="store_true", help="run only the data-set poisoning bench")
    ap.add_argument("--speed-only", action="store_true", help="only the large-file throughput table")
    ap.add_argument(
        "--pickle-speed", action="store_true", help="only the pickle simulator on opcode-dense pickles"
    )
    ap.add_argument("--baseline-src", help="with --pickle-speed: a src/ tree to time against, same run")
    args = ap.parse_args()
    if args.pickle_speed:
        print(f"## Pickle simulator on opcode-dense pickles (median of {args.repeats})\n")
        print(pickle_speed(args.repeats, args.dense_mb, args.baseline_src))
        return 0
    if args.dataset:
        print("## Data-set poisoning\n")
        print(dataset_bench())
        return 0
    # --speed-only needs no corpus (it builds its own large files)
    manifest = [] if args.speed_only else json.loads((CORPUS / "manifest.json").read_text())
    files = [CORPUS / m["path"] for m in manifest]
    results: dict[str, list[tuple[str, bool, bool, float]]] = {}
    for tool in [] if args.speed_only else args.tools.split(","):
        rows = bastion_scan(files) if tool == "bastion" else peer_scan(tool, files, timeout=1800)
        if rows is None:
            print(f"(skipping {tool}: not installed under bench/out/venv-{tool} or failed)", file=sys.stderr)
            continue
        results[tool] = rows
    if not args.speed_only:
        print(f"## Detection and false positives ({len(files)} files)\n")
        print(detection_table(manifest, results))
        print("\n## Corpus speed (small files; per-file overhead dominates)\n")
        print(speed_row(results), flush=True)
    if not args.skip_speed:
        print(f"\n## Throughput on large files (median of {args.repeats}; n/a = error or time limit)\n")
        throughput(list(results) or args.tools.split(","), args.repeats, args.gb, args.dense_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
