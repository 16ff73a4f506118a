"""Refuse request bodies over a limit before the application reads them (413), for the admin API.

The gateway's ``/v1`` path has its own bounded reader; this guards everything that falls through
to FastAPI. A declared ``Content-Length`` over the limit is refused at once; a chunked body is
counted as it streams and cut off when it passes the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BODY = json.dumps(
    {
        "error": {
            "code": "request_too_large",
            "message": "request body too large",
            "hint": "Send a smaller body.",
        }
    }
).encode()


class BodyLimitMiddleware:
    """ASGI middleware: 413 for bodies larger than ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_bytes:
                    await _reject(send, 413 if declared > self.max_bytes else 400)
                    return
        seen = 0
        started = rejected = False

        async def limited_receive() -> Message:
            # Past the limit: answer 413 ourselves and tell the app the client is gone (an
            # exception here would be turned into a 400 by FastAPI's body parsing).
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if not started and not rejected:
                        rejected = True
                        await _reject(send, 413)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # the 413 is the answer; drop whatever the app says afterwards
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _reject(send: Send, status: int) -> None:
    body = _BODY if status == 413 else b'{"error":{"code":"invalid_request","message":"bad Content-Length"}}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
