"""Run every benchmark with its documented default command (``make bench``).

Each script prints its own table; results with their commands are kept in bench/README.md and
bench/results/*.md. Pass names to run a subset: ``python bench/run_all.py ledger authz``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

#: name -> argv (relative to the repository root). The quick variants keep `make bench` under ~15 minutes.
BENCHES: dict[str, list[str]] = {
    "authz": [PY, "bench/authz_bench.py", "--n", "20000"],
    "ledger": [PY, "bench/ledger_bench.py", "--size", "100000", "--repeat", "1"],
    "detectors": [PY, "bench/detectors_bench.py"],
    "crypto": [PY, "bench/crypto_bench.py", "--size-mb", "256", "--reps", "3"],
    "gateway": [PY, "bench/gateway_bench.py"],
    "gateway_inproc": [PY, "bench/gateway_inproc.py", "--calls", "10000"],
    "stream_guard": [PY, "bench/stream_guard_bench.py", "--base", "HEAD"],
    "scanners": [PY, "bench/scanners_bench.py"],
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== {name}: {' '.join(BENCHES[name][1:])}", flush=True)
        rc = subprocess.run(BENCHES[name], cwd=HERE.parent, env=os.environ.copy(), check=False).returncode
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
