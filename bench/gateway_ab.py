"""A/B of two versions of the gateway, side by side: CPU per call and calls/s, paired run by run.

On a shared VM the CPU a call costs drifts by 10-20 % within minutes, more than most single changes
are worth, so a before-and-after of two separate runs says little. This starts the gateway of a git
revision (``--base``, the source extracted with ``git archive``) and the gateway of the working tree
beside it, each with its own mock upstream (the same mock as ``gateway_bench.py``), and loads them in
turn with wrk: ``--rounds`` pairs of runs, the order alternating, so drift hits both alike. It
reports each side's medians and the median of the per-pair ratios (work / base). ``--aa`` runs the
working tree on both sides: how far the method itself scatters on this machine.

    nice -n -15 .venv/bin/python bench/gateway_ab.py --base HEAD~1 --kind stream --durable off
    nice -n -15 .venv/bin/python bench/gateway_ab.py --aa --kind stream

CPU is the gateway process's (schedstat, all threads), split into the event loop's thread and the
others (the ledger writer). Same pinning as ``gateway_bench.py``: gateways on CPU 0, mocks and wrk
on CPU 1.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway_bench as gb  # the mock, config, provisioning, wrk and CPU readings are shared

ROOT = Path(__file__).resolve().parents[1]


def thread_cpu_ns(pid: int) -> tuple[int, int]:
    """CPU (ns) of the process's main thread (the event loop) and of its other threads together."""
    main = other = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ns = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # a thread that ended meanwhile
            continue
        if task.name == str(pid):
            main += ns
        else:
            other += ns
    return main, other


def extract(rev: str, into: Path) -> Path:
    """``src/`` of ``rev`` under ``into``; its path, to go first on the base gateway's PYTHONPATH."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare the working tree with")
    ap.add_argument("--aa", action="store_true", help="the working tree on both sides (method check)")
    ap.add_argument("--kind", choices=("unary", "stream"), default="stream")
    ap.add_argument("--durable", choices=("on", "off"), default="on")
    ap.add_argument("--delay-ms", type=float, default=50.0, help="the mock upstream's delay")
    ap.add_argument("--conns", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=10, help="pairs of runs")
    ap.add_argument("--seconds", type=int, default=2, help="per run")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    body = gb.SBODY if a.kind == "stream" else gb.BODY
    tmp = Path(tempfile.mkdtemp(prefix="bastion-gw-ab-"))
    b = gb.Bench(tmp, a.seconds, 1)
    work_path = b.env["PYTHONPATH"]
    base_path = work_path if a.aa else f"{extract(a.base, tmp)}:{work_path}"
    sides: dict[str, tuple[str, str, int, str]] = {}
    runs: dict[str, list[tuple[float, float, float]]] = {"base": [], "work": []}
    try:
        for name, path in (("base", base_path), ("work", work_path)):
            b.env["PYTHONPATH"] = path
            sides[name] = b.setup(a.delay_ms / 1000, a.durable == "on")
        for i in range(a.rounds):
            for name in ("base", "work") if i % 2 == 0 else ("work", "base"):
                _, through, pid, token = sides[name]
                m0, o0 = thread_cpu_ns(pid)
                r = gb.wrk(through, body, a.conns, a.seconds, tmp, token)
                m1, o1 = thread_cpu_ns(pid)
                n = max(1.0, r["requests"])
                runs[name].append((r["rps"], (m1 - m0) / 1e3 / n, (o1 - o0) / 1e3 / n))
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    base_label = "working tree (A/A)" if a.aa else a.base
    print(
        f"{a.kind}, {a.conns} clients, {a.delay_ms:g} ms mock, durable audit {a.durable}; "
        f"{a.rounds} pairs of {a.seconds} s runs; base = {base_label}\n"
    )
    print("| side | calls/s | event-loop thread µs/call | other threads µs/call |")
    print("|---|---|---|---|")
    for name, rs in runs.items():
        med = [statistics.median(r[j] for r in rs) for j in range(3)]
        print(f"| {name} | {med[0]:.0f} | {med[1]:.1f} | {med[2]:.1f} |")
    pairs = list(zip(runs["base"], runs["work"], strict=True))
    loop_ratio = [w[1] / b_[1] for b_, w in pairs]
    total_ratio = [(w[1] + w[2]) / (b_[1] + b_[2]) for b_, w in pairs]
    rps_ratio = [w[0] / b_[0] for b_, w in pairs]
    print(
        f"\nwork / base, median of the pairs: event-loop CPU {statistics.median(loop_ratio):.3f} "
        f"(pairs {' '.join(f'{x:.2f}' for x in loop_ratio)}), all threads' CPU "
        f"{statistics.median(total_ratio):.3f}, calls/s {statistics.median(rps_ratio):.3f}"
    )


if __name__ == "__main__":
    main()
