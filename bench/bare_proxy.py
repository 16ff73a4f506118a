"""The floor for a Python gateway on this stack: uvicorn (uvloop, httptools) + one pooled upstream client,
relaying each POST to ``BARE_UPSTREAM`` and its answer back — no authentication, policy, limits, guards,
ledger or metrics. ``BARE_CLIENT`` picks the client: ``aiohttp`` (default) or ``http1`` (Bastion's own,
``bastion.gateway.http1``). ``bench/gateway_bench.py --floor`` measures both beside Bastion in the same
run, so the share of a call that is Bastion's own work is visible. Not a product; benchmark only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp

from bastion.gateway.http1 import ConnectionPool, Origin

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_UPSTREAM = os.environ.get("BARE_UPSTREAM", "")
_CLIENT = os.environ.get("BARE_CLIENT", "aiohttp")
_HEADERS = {"content-type": "application/json"}
_session: aiohttp.ClientSession | None = None
_pool: ConnectionPool | None = None


async def _relay_http1(body: bytes) -> tuple[int, bytes]:
    global _pool
    if _pool is None:
        origin = Origin.parse(_UPSTREAM.rsplit("/", 2)[0])
        _pool = ConnectionPool(origin, max_connections=512, connect_timeout_s=5, read_timeout_s=60)
    deadline = asyncio.get_running_loop().time() + 300
    reply = await _pool.post("/chat/completions", b"content-type: application/json\r\n", body, deadline)
    return reply.status, await reply.read(deadline, 64 << 20)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    global _session
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if _CLIENT == "http1":
        status, data = await _relay_http1(body)
    else:
        if _session is None:
            _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        async with _session.post(_UPSTREAM, data=body, headers=_HEADERS) as reply:
            data = await reply.read()
            status = reply.status
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": data})
