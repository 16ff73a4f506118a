"""Gateway CPU per call without the HTTP server: the real app called as ASGI, in-process.

    .venv/bin/python bench/gateway_inproc.py [--calls 20000] [--concurrency 128] [--repeats 3]
    .venv/bin/python bench/gateway_inproc.py --kind stream --profile cprofile   # where the time goes

The app is the real server's (``create_app_from_env``: identity service, Cedar, limits, the SQLite
ledger with group commit, durable audit on unless ``--no-durable``), detectors off, against the mock
upstream of ``gateway_bench.py`` (0 ms delay) on CPU 1; this process runs on CPU 0. Requests and
answers are handed over as ASGI messages, so what is measured is Bastion's own work per call plus
its upstream client, without uvicorn and without a load generator sharing the machine: a quieter
instrument than ``gateway_bench.py`` for comparing two versions of the hot path (alternate them,
same session). It reports the event loop thread's CPU per call and the whole process's (the ledger
writer thread included), medians of ``--repeats`` runs, unary and streamed calls alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway_bench as gb  # the mock upstream, its config and provisioning are shared


def _scope(token: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
    }


async def _one(app: Any, scope: dict[str, Any], body: bytes) -> None:
    """One call as uvicorn would make it; the caller never disconnects."""
    read = False
    statuses: list[int] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never  # like uvicorn: no disconnect while the answer is being sent
        raise AssertionError("unreachable")

    async def send(msg: Any) -> None:
        if msg["type"] == "http.response.start":
            statuses.append(msg["status"])

    await app(dict(scope), receive, send)
    if statuses != [200]:
        raise RuntimeError(f"the gateway answered {statuses}")


async def _run(app: Any, scope: dict[str, Any], body: bytes, calls: int, concurrency: int) -> None:
    async def worker(n: int) -> None:
        for _ in range(n):
            await _one(app, scope, body)

    await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))


async def _measure(app: Any, token: str, a: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    replies: asyncio.Queue[Any] = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    lifespan = asyncio.ensure_future(app({"type": "lifespan"}, queue.get, replies.put))
    await replies.get()
    kinds = ["unary", "stream"] if a.kind == "both" else [a.kind]
    bodies = {"unary": gb.BODY, "stream": gb.SBODY}
    scopes = {k: _scope(token, bodies[k]) for k in kinds}
    for k in kinds:  # warm-up: connections, caches, the first commits
        await _run(app, scopes[k], bodies[k], 2_000, a.concurrency)
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    profiler: Any = None
    if a.profile == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
    elif a.profile == "pyinstrument":
        import pyinstrument

        profiler = pyinstrument.Profiler(interval=0.0002, async_mode="disabled")
    for _ in range(a.repeats):
        for k in kinds:
            if profiler is not None:
                profiler.enable() if a.profile == "cprofile" else profiler.start()
            t0, p0 = time.thread_time(), time.process_time()
            await _run(app, scopes[k], bodies[k], a.calls, a.concurrency)
            t1, p1 = time.thread_time(), time.process_time()
            if profiler is not None:
                profiler.disable() if a.profile == "cprofile" else profiler.stop()
            out[k].append(((t1 - t0) * 1e6 / a.calls, (p1 - p0) * 1e6 / a.calls))
    if a.profile == "cprofile":
        import pstats

        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
    elif a.profile == "pyinstrument":
        print(profiler.output_text(unicode=False, color=False))
    await queue.put({"type": "lifespan.shutdown"})
    await replies.get()
    await lifespan
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000, help="calls per run")
    ap.add_argument("--concurrency", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3, help="runs per kind; medians reported")
    ap.add_argument("--kind", choices=["unary", "stream", "both"], default="both")
    ap.add_argument("--no-durable", action="store_true", help="durable_audit: false")
    ap.add_argument("--profile", choices=["none", "cprofile", "pyinstrument"], default="none")
    a = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    tmp = Path(tempfile.mkdtemp(prefix="bastion-gw-inproc-"))
    up = gb.free_port()
    mock = subprocess.Popen(["taskset", "-c", "1", sys.executable, gb.__file__, "mock", str(up), "0"])
    try:
        gb.wait_port(up)
        config = gb.write_config(tmp / "data", up, not a.no_durable)
        token = gb.provision(config)
        os.environ["BASTION_CONFIG"] = str(config)
        import uvloop

        from bastion.app import create_app_from_env

        app = create_app_from_env()
        results = uvloop.run(_measure(app, token, a))
    finally:
        mock.kill()
        mock.wait()
    durable = "off" if a.no_durable else "on"
    print(
        f"\n{a.calls} calls per run, {a.concurrency} concurrent, durable audit {durable}, "
        f"medians of {a.repeats} runs\n"
    )
    print("| kind | event-loop thread CPU µs/call | process CPU µs/call | runs (loop thread) |")
    print("|---|---|---|---|")
    for kind, runs in results.items():
        loop_us = statistics.median(r[0] for r in runs)
        proc_us = statistics.median(r[1] for r in runs)
        each = " / ".join(f"{r[0]:.0f}" for r in runs)
        print(f"| {kind} | {loop_us:.1f} | {proc_us:.1f} | {each} |")


if __name__ == "__main__":
    main()
