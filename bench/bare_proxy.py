"""The floor for a Python gateway on this stack: uvicorn (uvloop, httptools) + one pooled aiohttp client,
relaying each POST to ``BARE_UPSTREAM`` and its answer back — no authentication, policy, limits, guards,
ledger or metrics. ``bench/gateway_bench.py --floor`` measures it beside Bastion in the same run, so the
share of a call that is Bastion's own work is visible. Not a product; benchmark only.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_UPSTREAM = os.environ.get("BARE_UPSTREAM", "")
_HEADERS = {"content-type": "application/json"}
_session: aiohttp.ClientSession | None = None


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
    if _session is None:
        _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    async with _session.post(_UPSTREAM, data=body, headers=_HEADERS) as reply:
        data = await reply.read()
        status = reply.status
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": data})
