"""Gateway overhead benchmark: direct-to-mock-upstream vs through Bastion, side by side, one run.

    .venv/bin/python bench/gateway_bench.py [--seconds 3] [--repeats 3] [--rss-requests 100000]
    .venv/bin/python bench/gateway_bench.py --floor   # Bastion vs bare uvicorn proxies, same run

Needs ``wrk`` (apt-get install -y wrk) and ``taskset``. The gateway runs pinned to CPU 0; wrk and
the mock upstream share CPU 1. Through Bastion is the real server: ``uvicorn --factory
bastion.app:create_app_from_env`` (API keys through the identity service, the Cedar authorizer,
limits on (memory), the audit ledger on SQLite with group commit, metrics on), detectors off
(``gateway.guards.input/output: []``), with ``durable_audit`` on and off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAT_OK = (
    b'{"id":"x","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hello from the mock upstream."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}'
)
CHUNK = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,'
    b'"delta":{"content":"tok "},"finish_reason":null}]}\n\n'
)
USAGE = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"bench","choices":[],'
    b'"usage":{"prompt_tokens":9,"completion_tokens":8,"total_tokens":17}}\n\ndata: [DONE]\n\n'
)
BODY = b'{"model":"bench","messages":[{"role":"user","content":"Say hello in one short sentence."}]}'
SBODY = BODY[:-1] + b',"stream":true}'


# -- mock upstream ------------------------------------------------------------------------------


class _Mock(asyncio.Protocol):
    delay = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            m = re.search(rb"content-length:\s*(\d+)", head)
            n = int(m.group(1)) if m else 0
            if len(self.buf) < end + 4 + n:
                return
            body = self.buf[end + 4 : end + 4 + n]
            self.buf = self.buf[end + 4 + n :]
            stream = b'"stream":true' in body
            if self.delay:
                asyncio.get_running_loop().call_later(self.delay, self._reply, stream)
            else:
                self._reply(stream)

    def _reply(self, stream: bool) -> None:
        if self.t.is_closing():  # type: ignore[attr-defined]
            return
        if stream:
            payload = CHUNK * 8 + USAGE
            self.t.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n"
                % len(payload)
                + payload
            )
        else:
            self.t.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                % len(CHAT_OK)
                + CHAT_OK
            )


def run_mock(port: int, delay: float) -> None:
    import uvloop

    _Mock.delay = delay

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Mock, "127.0.0.1", port, backlog=4096)
        await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):  # stopped with SIGINT by the driver
        uvloop.run(main())


# -- gateway ------------------------------------------------------------------------------------


def write_config(data_dir: Path, upstream_port: int, durable: bool) -> Path:
    """bastion.yaml for the gateway under test: mock upstream, detectors off, limits on."""
    import yaml

    cfg = {
        "data_dir": str(data_dir),
        "gateway": {
            "upstreams": {
                "mock": {"base_url": f"http://127.0.0.1:{upstream_port}/v1", "max_connections": 512}
            },
            "models": {"bench": {"upstream": "mock", "attributes": {"team": "shared"}}},
            "egress_allowlist": ["127.0.0.1"],
            "limits": {"per_key": {"requests_per_minute": 10**9, "concurrent": 4096}},
            "guards": {"input": [], "output": []},
            "durable_audit": durable,
        },
    }
    path = data_dir.parent / f"{data_dir.name}.yaml"
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def provision(config: Path) -> str:
    """Migrate, create a user principal and an API key through the identity service; the token."""
    from bastion.config import load_settings
    from bastion.domain.identity import Role
    from bastion.services.runtime import Runtime

    with Runtime.open(load_settings(config)) as rt:
        p = rt.identity.create_principal("bench", roles=[Role.USER], team="bench")
        return rt.identity.create_key(p.id, name="bench").token


def gateway_cmd(port: int, workers: int) -> list[str]:
    """The real server (create_app: identity service, Cedar, SQLite ledger) under uvicorn."""
    return [
        sys.executable, "-m", "uvicorn", "--factory", "bastion.app:create_app_from_env",
        "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "error", "--no-access-log", "--no-proxy-headers", "--no-server-header",
        "--backlog", "4096", "--workers", str(workers),
    ]  # fmt: skip


# -- driver -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def cpu_seconds(pid: int) -> float:
    """CPU time of all the process's threads, from schedstat (ns): /proc/PID/stat counts 10 ms ticks,
    too coarse for a cell of 38 calls (it reported 7 or 8 ticks / 38 calls as 1.842 or 2.105 ms)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _ms(v: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    assert m, v
    x = float(m.group(1))
    return {"us": x / 1000, "ms": x, "s": x * 1000}[m.group(2)]


def wrk(url: str, body: bytes, conns: int, seconds: int, lua_dir: Path, token: str = "x") -> dict[str, float]:
    script = lua_dir / f"post{len(body)}-{abs(hash(token))}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.body = [[' + body.decode() + "]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{conns}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    res["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    for pct in ("50", "99"):
        res[f"p{pct}"] = _ms(re.search(rf"\s{pct}%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = float(errs.group(1)) if errs else 0.0
    return res


async def _ttfb(url: str, token: str, n: int) -> list[float]:
    """Milliseconds to the first body byte of ``n`` sequential streamed calls (one keep-alive connection)."""
    import aiohttp

    out: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for _ in range(n):
            t0 = time.perf_counter()
            async with session.post(url, data=SBODY, headers=headers) as r:
                await r.content.readany()
                out.append((time.perf_counter() - t0) * 1000)
                await r.read()
    return out


def ttfb(url: str, token: str, n: int) -> dict[str, float]:
    xs = sorted(asyncio.run(_ttfb(url, token, n))[n // 10 :])  # first 10 % are warm-up
    return {"p50": statistics.median(xs), "p99": xs[int(len(xs) * 0.99) - 1]}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


class Bench:
    def __init__(self, tmp: Path, seconds: int, repeats: int) -> None:
        self.tmp, self.seconds, self.repeats = tmp, seconds, repeats
        self.env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.n = 0
        self.idle_ms_per_s = 0.0  # gateway CPU while idle after the last setup's warm-up

    def spawn(self, cpu: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["taskset", "-c", cpu, *cmd], env=env or self.env)
        self.procs.append(p)
        return p

    def stop(self) -> None:
        # the gateway first: it drains the calls the last wrk run abandoned while the mock still answers
        for p in reversed(self.procs):
            p.send_signal(signal.SIGINT)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs.clear()

    def setup(self, delay: float, durable: bool, workers: int = 1) -> tuple[str, str, int, str]:
        """Mock upstream on CPU 1, the real gateway on CPU 0 (both CPUs with 2 workers)."""
        self.n += 1
        up, gwp = free_port(), free_port()
        self.spawn("1", [sys.executable, __file__, "mock", str(up), str(delay)])
        wait_port(up)
        config = write_config(self.tmp / f"data{self.n}", up, durable)
        token = provision(config)
        gw = self.spawn(
            "0" if workers == 1 else "0,1",
            gateway_cmd(gwp, workers),
            {**self.env, "BASTION_CONFIG": str(config)},
        )
        wait_port(gwp)
        direct = f"http://127.0.0.1:{up}/v1/chat/completions"
        through = f"http://127.0.0.1:{gwp}/v1/chat/completions"
        wrk(through, BODY, 8, 2, self.tmp, token)  # warm-up
        c0 = cpu_seconds(gw.pid)
        time.sleep(2)
        self.idle_ms_per_s = (cpu_seconds(gw.pid) - c0) * 1000 / 2
        return direct, through, gw.pid, token

    def setup_bare(self, delay: float, client: str = "aiohttp") -> tuple[str, str, int]:
        """Mock upstream on CPU 1, the bare proxy (bench/bare_proxy.py, with ``client``) on CPU 0."""
        up, port = free_port(), free_port()
        self.spawn("1", [sys.executable, __file__, "mock", str(up), str(delay)])
        wait_port(up)
        direct = f"http://127.0.0.1:{up}/v1/chat/completions"
        cmd = [
            sys.executable, "-m", "uvicorn", "bare_proxy:app", "--app-dir", str(ROOT / "bench"),
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--log-level", "error", "--no-access-log", "--no-proxy-headers", "--no-server-header",
            "--backlog", "4096",
        ]  # fmt: skip
        proxy = self.spawn("0", cmd, {**self.env, "BARE_UPSTREAM": direct, "BARE_CLIENT": client})
        wait_port(port)
        through = f"http://127.0.0.1:{port}/v1/chat/completions"
        wrk(through, BODY, 8, 2, self.tmp)  # warm-up
        return direct, through, proxy.pid

    def cell(
        self, direct: str, through: str, pid: int, token: str, conns: int, body: bytes
    ) -> tuple[dict[str, float], dict[str, float]]:
        ds, bs = [], []
        for _ in range(self.repeats):
            ds.append(wrk(direct, body, conns, self.seconds, self.tmp, token))
            c0, r0 = cpu_seconds(pid), rss_mib(pid)
            r = wrk(through, body, conns, self.seconds, self.tmp, token)
            r["cpu_ms_per_req"] = (cpu_seconds(pid) - c0) * 1000 / max(1.0, r["requests"])
            r["rss_before"], r["rss_after"] = r0, rss_mib(pid)
            bs.append(r)
        return _median(ds), _median(bs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="each cell is run this often; medians reported")
    ap.add_argument(
        "--rss-requests", type=int, default=100_000, help="requests for the memory check (0: skip)"
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="only: Bastion (durable on/off) vs bare uvicorn proxies (aiohttp, http1)",
    )
    ap.add_argument("--out", default=str(ROOT / "bench/results/gateway-latest.md"))
    ap.add_argument("role", nargs="?", default="driver")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    if a.role == "mock":
        run_mock(int(a.args[0]), float(a.args[1]))
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bastion-gw-bench-"))
    b = Bench(tmp, a.seconds, a.repeats)
    if a.floor:
        try:
            text = "\n".join(floor(b)) + "\n"
        finally:
            b.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        print(text)
        return
    out: list[str] = [
        f"Medians of {a.repeats} runs of {a.seconds} s per cell (wrk -t1); direct and Bastion back to back.",
        "",
    ]
    try:
        for durable in (True, False):
            results: dict[str, dict[str, float]] = {}
            ttfbs: list[str] = []
            for delay in (0.0, 0.05):
                direct, through, pid, token = b.setup(delay, durable)
                tag = f"{int(delay * 1000)}ms"
                for conns in (1, 128) if delay else (1, 32):
                    for name, body in (("unary", BODY), ("stream", SBODY)):
                        d, r = b.cell(direct, through, pid, token, conns, body)
                        (
                            results[f"direct {tag} c{conns} {name}"],
                            results[f"bastion {tag} c{conns} {name}"],
                        ) = d, r
                td, tb = ttfb(direct, token, 300), ttfb(through, token, 300)
                ttfbs.append(
                    f"| {tag} | {td['p50']:.2f} / {td['p99']:.2f} | {tb['p50']:.2f} / {tb['p99']:.2f} "
                    f"| {tb['p50'] - td['p50']:.2f} / {tb['p99'] - td['p99']:.2f} | {b.idle_ms_per_s:.1f} |"
                )
                b.stop()
            out += [f"### durable_audit: {'on' if durable else 'off'}", "", *report(results), ""]
            out += ["Time to first streamed byte, one client, 270 calls after 30 warm-up (aiohttp):", "",
                    "| upstream delay | direct p50 / p99 ms | Bastion p50 / p99 ms | added p50 / p99 ms "
                    "| gateway CPU idle ms/s |",
                    "|---|---|---|---|---|", *ttfbs, ""]  # fmt: skip
        # one vs two workers (durable audit on): 0 ms / 32 clients is where one worker is CPU-bound;
        # 50 ms / 128 clients is the throughput target, which one worker may already nearly reach
        rows = ["| workers | scenario | direct rps | Bastion rps | ratio |", "|---|---|---|---|---|"]
        for workers in (1, 2):
            for delay, conns, bodies in (
                (0.0, 32, (("unary", BODY),)),
                (0.05, 128, (("unary", BODY), ("stream", SBODY))),
            ):
                direct, through, pid, token = b.setup(delay, True, workers)
                for name, body in bodies:
                    d, r = b.cell(direct, through, pid, token, conns, body)
                    rows.append(
                        f"| {workers} | {int(delay * 1000)}ms c{conns} {name} | {d['rps']:.0f} | {r['rps']:.0f} "
                        f"| {r['rps'] / d['rps']:.2f} |"
                    )
                b.stop()
        out += ["### Workers (durable audit on)", "", *rows, ""]
        if a.rss_requests:
            direct, through, pid, token = b.setup(0.0, True)
            samples, done = [f"0: {rss_mib(pid):.0f}"], 0
            while done < a.rss_requests:
                done += int(wrk(through, BODY, 32, 10, tmp, token)["requests"])
                samples.append(f"{done}: {rss_mib(pid):.0f}")
            b.stop()
            out += ["### Memory (0 ms upstream, 32 clients, durable audit on)", "",
                    "Gateway RSS MiB after N requests: " + ", ".join(samples), ""]  # fmt: skip
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(out) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


FLOOR_CELLS = ((0.0, 1), (0.0, 32), (0.05, 1), (0.05, 128))


def floor(b: Bench) -> list[str]:
    """Unary cells: direct vs the bare proxy vs Bastion with durable audit off and on, in one run."""
    got: dict[tuple[float, int, str], tuple[dict[str, float], dict[str, float]]] = {}
    for delay in sorted({d for d, _ in FLOOR_CELLS}):
        conns = [c for d, c in FLOOR_CELLS if d == delay]
        for client in ("aiohttp", "http1"):
            direct, through, pid = b.setup_bare(delay, client)
            for c in conns:
                got[(delay, c, client)] = b.cell(direct, through, pid, "x", c, BODY)
            b.stop()
        for durable in (False, True):
            direct, through, pid, token = b.setup(delay, durable)
            for c in conns:
                got[(delay, c, "on" if durable else "off")] = b.cell(direct, through, pid, token, c, BODY)
            b.stop()
    rows = [
        f"Unary calls; medians of {b.repeats} runs of {b.seconds} s per cell, each against direct in the same cell.",
        "",
        "Bare proxies: uvicorn + aiohttp, and uvicorn + Bastion's HTTP/1.1 client (http1).",
        "",
        "| scenario | direct rps | ratio: bare aiohttp / bare http1 / Bastion off / on "
        "| added p50 ms: same order | CPU ms per call: same order |",
        "|---|---|---|---|---|",
    ]
    for delay, c in FLOOR_CELLS:
        cells = [got[(delay, c, k)] for k in ("aiohttp", "http1", "off", "on")]
        d0 = cells[0][0]
        ratios = " / ".join(f"{r['rps'] / d['rps']:.2f}" for d, r in cells)
        added = " / ".join(f"{r['p50'] - d['p50']:.2f}" for d, r in cells)
        cpu = " / ".join(f"{r['cpu_ms_per_req']:.3f}" for _, r in cells)
        rows.append(f"| {int(delay * 1000)} ms c{c} | {d0['rps']:.0f} | {ratios} | {added} | {cpu} |")
    return rows


def report(results: dict[str, dict[str, float]]) -> list[str]:
    rows = [
        "| scenario | direct rps | Bastion rps | ratio | direct p50 / p99 ms | Bastion p50 / p99 ms "
        "| added p50 / p99 ms | gateway CPU ms/req | gateway RSS MiB (before → after) | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, b in results.items():
        if not key.startswith("bastion"):
            continue
        d = results["direct" + key[len("bastion") :]]
        rows.append(
            f"| {key[8:]} | {d['rps']:.0f} | {b['rps']:.0f} | {b['rps'] / d['rps']:.2f} "
            f"| {d['p50']:.2f} / {d['p99']:.2f} | {b['p50']:.2f} / {b['p99']:.2f} "
            f"| {b['p50'] - d['p50']:.2f} / {b['p99'] - d['p99']:.2f} | {b['cpu_ms_per_req']:.3f} "
            f"| {b['rss_before']:.0f} → {b['rss_after']:.0f} | {b['non2xx']:.0f} |"
        )
    return rows


if __name__ == "__main__":
    main()
