"""Request intake for the gateway: the ASGI types, reading a request body (with its size limit),
sending a JSON answer, and the caller's headers and verified TLS client certificate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bastion.gateway.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(Exception):
    """The caller disconnected."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 as soon as it grows past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone
        body = msg.get("body", b"")
        if body:
            size += len(body)
            if size > limit:
                raise ApiError(413, f"the request body is larger than {limit} bytes", "request_too_large")
            chunks.append(body)
        if not msg.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    hdrs = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if headers:
        hdrs.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


def client_cert(scope: Scope) -> bytes | None:
    """The DER client certificate the TLS layer verified (see gateway/tls_scope.py), if any."""
    tls = scope.get("extensions", {}).get("tls")
    der = tls.get("client_cert_der") if isinstance(tls, dict) else None
    return der if isinstance(der, bytes) and der else None


def header_value(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case), or None."""
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return None


def last_header_value(scope: Scope, name: bytes) -> bytes | None:
    """The last value of header ``name`` (lower case): what a proxy in front added last."""
    found = None
    for k, v in scope["headers"]:
        if k == name:
            found = v
    return None if found is None else bytes(found)


def header_count(scope: Scope, name: bytes) -> int:
    """How often header ``name`` (lower case) was sent."""
    return sum(1 for k, _ in scope["headers"] if k == name)
