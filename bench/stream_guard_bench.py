"""Stream output guards: CPU per streamed event and the cost of many redactions, a git revision's
source beside the working tree's, measured in the same run (runs alternate, medians).

    python bench/stream_guard_bench.py --base cf0376b

Each run is a fresh child process importing ``bastion`` from one side's source (the revision's is
extracted with ``git archive``), so both sides run their own guard and detectors.

* ``per event``: the default output guards (``GuardSettings()``) over a stream of ~5-character events
  with nothing to find (what most answers are), prose and indented code: CPU µs per event, and how
  many characters the caller waits for before the first one is released.
* ``many redactions``: one event holding N AWS keys, through the stream guard and through the unary
  scan of the same text (the stream guard's overhead on top of its detectors).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROSE = "the quick brown fox jumps over the lazy dog while the model keeps on writing its answer "
#: indented code: runs of white space, which count once towards the windows
CODE = "def f(x):\n    if x:\n        return  x  +  1\n    return 0\n\n"
AWS = "AKIAQWERTYUIOPASDFGH"


def extract(rev: str) -> Path:
    """The ``src`` tree of ``rev`` in a temporary directory."""
    data = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    out = Path(tempfile.mkdtemp(prefix=f"guard-{rev}-"))
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(out, filter="data")
    return out / "src"


def child(events: list[str], keys: list[int]) -> dict[str, Any]:
    """One run, in this process (bastion imported from the source on sys.path)."""
    from bastion.config import GuardSettings
    from bastion.detectors.interface import Direction
    from bastion.services.guard import GuardService, GuardTarget

    target = GuardTarget("chat", "m")
    svc = GuardService(GuardSettings())
    g = svc.stream(target)
    for e in events[:200]:  # warm-up: patterns compiled, caches filled
        g.feed("0", e)
    g = svc.stream(target)
    fed, first = 0, -1
    started = time.process_time()
    for e in events:
        fed += len(e)
        if g.feed("0", e).text and first < 0:
            first = fed
    g.finish()
    g.result()
    us = (time.process_time() - started) / len(events) * 1e6
    many = {}
    secrets = GuardService(GuardSettings(input=[], output=["secrets"]))
    for n in keys:
        text = "".join(f"k{i} {AWS} " for i in range(n))
        t0 = time.process_time()
        secrets.scan([text], Direction.OUTPUT, target)
        unary = time.process_time() - t0
        sg = secrets.stream(target)
        t0 = time.process_time()
        sg.feed("0", text)
        sg.finish()
        many[str(n)] = [time.process_time() - t0, unary]
    return {"us": us, "first": first, "many": many}


def run_child(src: Path, events: list[str], keys: list[int]) -> dict[str, Any]:
    spec = json.dumps({"src": str(src), "events": events, "keys": keys})
    out = subprocess.run(
        [sys.executable, __file__, "--child"], input=spec, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare the working tree with")
    ap.add_argument("--events", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--keys", type=int, nargs="*", default=[250, 1000, 4000])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(sys.stdin.read())
        sys.path.insert(0, spec["src"])
        print(json.dumps(child(spec["events"], spec["keys"])))
        return 0
    sides = {"base": extract(args.base), "work": ROOT / "src"}
    words = (PROSE * (args.events // 16 + 1)).split(" ")
    code = CODE * (args.events * 5 // len(CODE) + 1)
    streams = {
        "prose": [w + " " for w in words][: args.events],
        "code": [code[i : i + 5] for i in range(0, args.events * 5, 5)],
    }
    print(f"\nper event: {args.events} events of ~5 characters, default output guards, {args.repeats} runs")
    print(f"(base = {args.base}, work = working tree; each run a fresh process)\n")
    print("| text | side | CPU µs/event (median) | runs | characters before the first is released |")
    print("|---|---|---|---|---|")
    ratios = []
    many: dict[str, dict[str, list[list[float]]]] = {name: {} for name in sides}
    for text, events in streams.items():
        cpu: dict[str, list[float]] = {k: [] for k in sides}
        first: dict[str, int] = {}
        for i in range(args.repeats):
            order = list(sides.items()) if i % 2 == 0 else list(sides.items())[::-1]
            for name, src in order:
                r = run_child(src, events, args.keys if text == "prose" and i < 3 else [])
                cpu[name].append(r["us"])
                first[name] = r["first"]
                for n, pair in r["many"].items():
                    many[name].setdefault(n, []).append(pair)
        for name in sides:
            runs = " / ".join(f"{v:.0f}" for v in cpu[name])
            print(f"| {text} | {name} | {statistics.median(cpu[name]):.1f} | {runs} | {first[name]} |")
        ratios.append(f"{text} {statistics.median(cpu['work']) / statistics.median(cpu['base']):.2f}")
    print(f"\nwork / base: {', '.join(ratios)}")
    print("\nmany redactions: one event with N AWS keys (secrets only), medians of 3\n")
    print("| N | side | stream guard s | unary scan s | stream / unary |")
    print("|---|---|---|---|---|")
    for n in map(str, args.keys):
        for name in sides:
            s = statistics.median(p[0] for p in many[name][n])
            u = statistics.median(p[1] for p in many[name][n])
            print(f"| {n} | {name} | {s:.3f} | {u:.3f} | {s / u:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
