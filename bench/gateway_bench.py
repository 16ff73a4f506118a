"""Gateway overhead benchmark: direct-to-mock-upstream vs through Bastion, side by side, one run.

    .venv/bin/python bench/gateway_bench.py [--seconds 5] [--out bench/results/gateway.md]

Needs ``wrk`` (apt-get install -y wrk) and ``taskset``. The gateway runs pinned to CPU 0; wrk and
the mock upstream share CPU 1. Through Bastion means: API-key authentication (in-memory key table;
the identity service's database lookup is not included), authorization with the real Cedar
``bastion.authz.Authorizer``, limits on (memory: requests/min and concurrency per key), the real
audit ledger (``bastion.services.audit.AuditLog`` on SQLite, group commit, durable before the
response), metrics on; detectors off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
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

    uvloop.run(main())


# -- gateway ------------------------------------------------------------------------------------


def run_gateway(port: int, upstream_port: int, data_dir: str) -> None:
    import uvicorn

    from bastion.authz.authorizer import Authorizer
    from bastion.config import load_settings
    from bastion.domain.identity import Authentication, AuthMethod, Principal, PrincipalKind, Role
    from bastion.errors import AuthenticationError
    from bastion.gateway import GatewayComponents, create_gateway
    from bastion.services.audit import AuditLog

    settings = load_settings(
        None,
        data_dir=data_dir,
        gateway={
            "upstreams": {
                "mock": {"base_url": f"http://127.0.0.1:{upstream_port}/v1", "max_connections": 512}
            },
            "models": {"bench": {"upstream": "mock", "attributes": {"team": "shared"}}},
            "egress_allowlist": ["127.0.0.1"],
            "limits": {"per_key": {"requests_per_minute": 10**9, "concurrent": 4096}},
        },
    )
    p = Principal("bench-user", PrincipalKind.USER, "bench", frozenset({Role.USER}), team="bench")
    auth = Authentication(p, AuthMethod.API_KEY, key_id="bench-key")

    class KeyTable:
        async def authenticate(self, credential: str, client_ip: str) -> Authentication:
            if credential != "bench-secret":
                raise AuthenticationError("bad key")
            return auth

    class NoLedger:
        async def arecord(self, event: object) -> None:
            return None

    audit = NoLedger() if os.environ.get("BENCH_LEDGER") == "off" else AuditLog.open(settings)
    app = create_gateway(settings, GatewayComponents(KeyTable(), Authorizer(), audit))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        access_log=False,
        loop="uvloop",
        http="httptools",
        backlog=4096,
    )


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
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def wrk(url: str, body: bytes, conns: int, seconds: int, lua_dir: Path) -> dict[str, float]:
    script = lua_dir / f"post{len(body)}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.body = [[' + body.decode() + "]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Authorization"] = "Bearer bench-secret"\n'
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench/results/gateway.md"))
    ap.add_argument("role", nargs="?", default="driver")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    if a.role == "mock":
        run_mock(int(a.args[0]), float(a.args[1]))
        return
    if a.role == "gateway":
        run_gateway(int(a.args[0]), int(a.args[1]), a.args[2])
        return
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bastion-gw-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

    def start(cpu: str, *args: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(["taskset", "-c", cpu, sys.executable, __file__, *args], env=env)
        procs.append(p)
        return p

    rows: list[str] = []
    try:
        results: dict[str, dict[str, float]] = {}
        for delay in (0.0, 0.05):
            up = free_port()
            gwp = free_port()
            start("1", "mock", str(up), str(delay))
            gw = start("0", "gateway", str(gwp), str(up), str(tmp / f"data{int(delay * 1000)}"))
            wait_port(up)
            wait_port(gwp)
            direct, through = (
                f"http://127.0.0.1:{up}/v1/chat/completions",
                f"http://127.0.0.1:{gwp}/v1/chat/completions",
            )
            tag = f"{int(delay * 1000)}ms"
            wrk(through, BODY, 8, 2, tmp)  # warm-up
            for conns in (1, 128) if delay else (1, 32):
                for name, body in (("unary", BODY), ("stream", SBODY)):
                    results[f"direct {tag} c{conns} {name}"] = wrk(direct, body, conns, a.seconds, tmp)
                    c0, r0 = cpu_seconds(gw.pid), rss_mib(gw.pid)
                    r = wrk(through, body, conns, a.seconds, tmp)
                    r["cpu_ms_per_req"] = (cpu_seconds(gw.pid) - c0) * 1000 / max(1.0, r["requests"])
                    r["rss_before"], r["rss_after"] = r0, rss_mib(gw.pid)
                    results[f"bastion {tag} c{conns} {name}"] = r
            for p in procs:
                p.send_signal(signal.SIGINT)
            for p in procs:
                p.wait(30)
            procs.clear()
        rows = report(results, a.seconds)
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join(rows) + "\n"
    print(text)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)


def report(results: dict[str, dict[str, float]], seconds: int) -> list[str]:
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
    rows.append("")
    rows.append(f"wrk -t1, {seconds} s per cell; gateway pinned to CPU 0, wrk and mock upstream to CPU 1.")
    return rows


if __name__ == "__main__":
    main()
