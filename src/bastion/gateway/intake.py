"""Request intake for the gateway: the ASGI types, reading a request body (with its size limit),
sending a JSON answer, and the caller's headers and verified TLS client certificate."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bastion.gateway.deadlines import Deadlines
from bastion.gateway.errors import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(Exception):
    """The caller disconnected."""


class _Read:
    __slots__ = ("done", "expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.done = False
        self.expired = False


class BodyDeadlines(Deadlines[_Read]):
    """Ends request-body reads that take longer than ``timeout_s`` (a caller that sends half a body
    and goes idle would otherwise hold its call, and what it sent, for ever: uvicorn has no body
    timeout). An expired read's task is cancelled; :func:`read_body` turns that into a 408."""

    __slots__ = ()

    def start(self) -> _Read:
        """Watch the current task's body read (mark the result ``done`` when it ends)."""
        task = asyncio.current_task()
        assert task is not None
        read = _Read(task)
        self.watch(read)
        return read

    def settled(self, item: _Read) -> bool:
        return item.done

    def expire(self, item: _Read) -> None:
        item.expired = True
        item.task.cancel()


async def read_body(receive: Receive, limit: int, deadlines: BodyDeadlines | None = None) -> bytes:
    """The whole request body; 413 as soon as it grows past ``limit``, 408 when it is not complete
    within the ``deadlines``' timeout."""
    read = deadlines.start() if deadlines is not None else None
    try:
        return await _read_body(receive, limit)
    except asyncio.CancelledError:
        # only this deadline's own cancellation becomes the 408 (a server shutting down goes on)
        if read is not None and read.expired and read.task.uncancel() == 0:
            raise ApiError(408, "the request body did not arrive in time", "request_timeout") from None
        raise
    finally:
        if read is not None:
            read.done = True


def refuse_declared_size(scope: Scope, limit: int) -> None:
    """413 before reading when the request declares a Content-Length over ``limit`` (the bytes that
    do arrive are still counted: a declared length is only believed when it is too large)."""
    declared = header_value(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes", "request_too_large")


async def _read_body(receive: Receive, limit: int) -> bytes:
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
