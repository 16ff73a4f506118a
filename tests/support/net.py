"""Servers on loopback for tests: a free port, a uvicorn server in a thread, and waiting for a server
started as a subprocess to answer."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_config(config: uvicorn.Config, start_timeout_s: float = 10.0) -> Iterator[str]:
    """Run a uvicorn server for ``config`` in a thread; yield its base URL once it has started.

    Raises ``RuntimeError`` when it has not started within ``start_timeout_s`` (or its thread died), so
    a test fails at the cause rather than on a refused connection.
    """
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"{'https' if config.is_ssl else 'http'}://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run the ASGI ``app`` over plain HTTP on 127.0.0.1 in a thread; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port or free_port(), log_level="error", lifespan="on", access_log=False
    )
    with serve_config(config) as url:
        yield url


def wait_until_ready(
    url: str, proc: subprocess.Popen[Any], *, path: str = "/readyz", timeout_s: float = 60.0
) -> None:
    """Poll ``url + path`` until it answers 200; fail if ``proc`` exits or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited during start-up with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not become ready within {timeout_s} s")
        time.sleep(0.1)
