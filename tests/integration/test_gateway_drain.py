"""Graceful shutdown drains streams: ``bastion serve`` told to stop (SIGTERM) while a stream is half
relayed lets it finish with ``[DONE]``, records its ledger event, and exits cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from support.net import free_port, wait_until_ready

from .test_quickstart import BASTION, _bastion, _env

CHUNKS = 10
GAP_S = 0.15


def _event(i: int) -> bytes:
    payload = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "slow",
        "choices": [{"index": 0, "delta": {"content": f"part{i} "}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


@contextlib.contextmanager
def _slow_stream_upstream() -> Iterator[int]:
    """An OpenAI-compatible upstream whose streams take CHUNKS * GAP_S seconds."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            for i in range(CHUNKS):
                writer.write(_event(i))
                await writer.drain()
                await asyncio.sleep(GAP_S)
            writer.write(b"data: [DONE]\n\n")
            await writer.drain()
        writer.close()

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", port))
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_sigterm_drains_a_stream_in_flight(tmp_path: Path) -> None:
    with _slow_stream_upstream() as up_port:
        (tmp_path / "bastion.yaml").write_text(
            yaml.safe_dump(
                {
                    "gateway": {
                        "upstreams": {"slow": {"base_url": f"http://127.0.0.1:{up_port}/v1"}},
                        "egress_allowlist": ["127.0.0.1"],
                        "models": {"slow-model": {"upstream": "slow", "attributes": {"team": "shared"}}},
                        "drain_timeout_s": 20,
                    }
                }
            )
        )
        port = free_port()
        with (tmp_path / "serve.out").open("w") as out:
            proc = subprocess.Popen(
                [*BASTION, "serve", "--port", str(port)],
                cwd=tmp_path,
                env=_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}", proc)
            created = _bastion(
                tmp_path, "keys", "create", "--name", "app", "--role", "user", "--format", "json"
            )
            assert created.returncode == 0, created.stderr
            key = json.loads(created.stdout)["key"]
            payloads: list[str] = []
            with httpx.stream(
                "POST",
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "slow-model", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                timeout=30,
            ) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    payloads.append(line[6:])
                    if len(payloads) == 1:
                        proc.send_signal(signal.SIGTERM)  # mid-stream: the rest must still come
            assert payloads[-1] == "[DONE]"
            texts = [json.loads(p)["choices"][0]["delta"]["content"] for p in payloads[:-1]]
            assert "".join(texts) == "".join(f"part{i} " for i in range(CHUNKS))
            # uvicorn re-raises the signal once it has shut down gracefully, as supervisors expect
            assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
            assert "Finished server process" in (tmp_path / "serve.out").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    tail = _bastion(tmp_path, "ledger", "tail", "-n", "20", "--format", "json")
    assert tail.returncode == 0, tail.stderr
    calls = [e for e in json.loads(tail.stdout) if e["target"] == "slow-model"]
    assert len(calls) == 1
    assert calls[0]["tag"] == "gateway:request:completed" and calls[0]["attributes"]["status"] == 200
    verify = _bastion(tmp_path, "ledger", "verify", "--format", "json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True
