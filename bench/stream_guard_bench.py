"""Stream output guards: CPU per streamed event and the cost of many redactions, a git revision's
``StreamGuard`` beside the working tree's, measured in the same run (runs interleaved, medians).

    python bench/stream_guard_bench.py --base cf0376b

* ``per event``: the default output guards (``GuardSettings()``) over a stream of ~5-character events
  with nothing to find (what most answers are), prose and indented code: CPU µs per event, and how
  many characters the caller waits for before the first one is released.
* ``many redactions``: one event holding N AWS keys, through the stream guard and through the unary
  scan of the same text (the stream guard's overhead on top of its detectors).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bastion.config import GuardSettings
from bastion.detectors.interface import Direction

ROOT = Path(__file__).resolve().parent.parent
PROSE = "the quick brown fox jumps over the lazy dog while the model keeps on writing its answer "
#: indented code: runs of white space, which count once towards the windows
CODE = "def f(x):\n    if x:\n        return  x  +  1\n    return 0\n\n"
AWS = "AKIAQWERTYUIOPASDFGH"


def load_revision(rev: str) -> ModuleType:
    """``bastion.services.guard`` as it was at ``rev`` (imported under another name)."""
    src = subprocess.run(
        ["git", "show", f"{rev}:src/bastion/services/guard.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"guard_{rev}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"guard_{rev}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def per_event(mod: Any, events: list[str]) -> tuple[float, int]:
    """CPU µs per event over the stream, and characters fed before the first was released."""
    svc = mod.GuardService(GuardSettings())
    g = svc.stream(mod.GuardTarget("chat", "m"))
    fed, first = 0, -1
    started = time.process_time()
    for e in events:
        fed += len(e)
        if g.feed("0", e).text and first < 0:
            first = fed
    g.finish()
    g.result()
    return (time.process_time() - started) / len(events) * 1e6, first


def many_redactions(mod: Any, n: int) -> tuple[float, float]:
    """Seconds for one event with ``n`` keys: through the stream guard, and the unary scan's."""
    svc = mod.GuardService(GuardSettings(input=[], output=["secrets"]))
    text = "".join(f"k{i} {AWS} " for i in range(n))
    t0 = time.process_time()
    svc.scan([text], Direction.OUTPUT, mod.GuardTarget("chat", "m"))
    unary = time.process_time() - t0
    g = svc.stream(mod.GuardTarget("chat", "m"))
    t0 = time.process_time()
    g.feed("0", text)
    g.finish()
    return time.process_time() - t0, unary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare the working tree with")
    ap.add_argument("--events", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--keys", type=int, nargs="*", default=[250, 1000, 2000])
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from bastion.services import guard as work

    base = load_revision(args.base)
    words = (PROSE * (args.events // 16 + 1)).split(" ")
    code = CODE * (args.events * 5 // len(CODE) + 1)
    streams = {
        "prose": [w + " " for w in words][: args.events],
        "code": [code[i : i + 5] for i in range(0, args.events * 5, 5)],
    }
    sides = {"base": base, "work": work}
    for mod in sides.values():  # warm-up (patterns compiled, caches filled)
        per_event(mod, streams["prose"][:200])
    print(f"\nper event: {args.events} events of ~5 characters, default output guards, {args.repeats} runs")
    print(f"(base = {args.base}, work = working tree)\n")
    print("| text | side | CPU µs/event (median) | runs | characters before the first is released |")
    print("|---|---|---|---|---|")
    ratios = []
    for text, events in streams.items():
        cpu: dict[str, list[float]] = {k: [] for k in sides}
        first: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, mod in sides.items():
                us, first[name] = per_event(mod, events)
                cpu[name].append(us)
        for name in sides:
            runs = " / ".join(f"{v:.0f}" for v in cpu[name])
            print(f"| {text} | {name} | {statistics.median(cpu[name]):.1f} | {runs} | {first[name]} |")
        ratios.append(f"{text} {statistics.median(cpu['work']) / statistics.median(cpu['base']):.2f}")
    print(f"\nwork / base: {', '.join(ratios)}")
    print("\nmany redactions: one event with N AWS keys (secrets only), medians of 3\n")
    print("| N | side | stream guard s | unary scan s | stream / unary |")
    print("|---|---|---|---|---|")
    for n in args.keys:
        for name, mod in sides.items():
            timed = [many_redactions(mod, n) for _ in range(3)]
            s = statistics.median(r[0] for r in timed)
            u = statistics.median(r[1] for r in timed)
            print(f"| {n} | {name} | {s:.3f} | {u:.3f} | {s / u:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
