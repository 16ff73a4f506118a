"""The built-in demo upstream (``type: demo``): a deterministic fake model, in process.

It answers chat completions, completions (both also streamed) and embeddings in OpenAI's wire
format, so the quickstart needs nothing external and tests are reproducible. It "echoes": the
reply quotes the last user message, which makes guard behaviour easy to see. Tools are honoured
(the first tool is called with ``{}`` arguments unless ``tool_choice`` is ``none``), and JSON mode
returns a JSON object.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from bastion.gateway.upstream import UpstreamReply

_MAX_ECHO = 200


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _last_user_text(messages: list[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, str):
                return c
            if isinstance(c, list):
                return " ".join(
                    p.get("text", "") for p in c if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
    return ""


def _prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return " ".join(
            m["content"]
            for m in body["messages"]
            if isinstance(m, dict) and isinstance(m.get("content"), str)
        )
    p = body.get("prompt", "")
    return p if isinstance(p, str) else " ".join(x for x in p if isinstance(x, str))


def reply_text(body: dict[str, Any]) -> str:
    """What the demo model answers to a chat or completion request."""
    if "messages" in body:
        said = _last_user_text(body["messages"])[:_MAX_ECHO]
    else:
        p = body.get("prompt", "")
        said = (p if isinstance(p, str) else (p[0] if p and isinstance(p[0], str) else ""))[:_MAX_ECHO]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        return orjson.dumps({"model": "bastion-demo", "echo": said}).decode()
    return f"Bastion demo model here. You said: {said}"


def _embedding(text: str, dims: int) -> list[float]:
    raw = b""
    counter = 0
    while len(raw) < dims * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [v / 2**31 for v in struct.unpack(f"<{dims}i", raw[: dims * 4])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


class DemoUpstream:
    """A deterministic in-process model that speaks the OpenAI wire format."""

    def __init__(self, name: str = "demo", *, delay_s: float = 0.0) -> None:
        self.name = name
        self.delay_s = delay_s
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-demo{self._n:08d}"

    async def send(self, path: str, payload: bytes) -> UpstreamReply:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return UpstreamReply(400, b'{"error":{"message":"invalid JSON","type":"invalid_request_error"}}')
        if path == "/embeddings":
            return UpstreamReply(200, orjson.dumps(self._embeddings(body)))
        return UpstreamReply(200, orjson.dumps(self._complete(path, body)))

    def _usage(self, body: dict[str, Any], completion: str) -> dict[str, int]:
        p, c = _tokens(_prompt_text(body)), _tokens(completion)
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def _complete(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        text = reply_text(body)
        model = body.get("model", "bastion-demo")
        n = int(body.get("n") or 1)
        if path == "/completions":
            choices: list[dict[str, Any]] = [
                {"index": i, "text": text, "logprobs": None, "finish_reason": "stop"} for i in range(n)
            ]
            return {
                "id": self._id("cmpl"),
                "object": "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                "usage": self._usage(body, text),
            }
        tools = body.get("tools")
        message: dict[str, Any]
        if tools and body.get("tool_choice") != "none":
            fn = tools[0].get("function", {}).get("name", "tool") if isinstance(tools[0], dict) else "tool"
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": self._id("call"), "type": "function", "function": {"name": fn, "arguments": "{}"}}
                ],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": text}
            finish = "stop"
        return {
            "id": self._id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)
            ],
            "usage": self._usage(body, text),
        }

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input", "")
        items = [inputs] if isinstance(inputs, str) else list(inputs)
        dims = int(body.get("dimensions") or 8)
        data = [
            {"object": "embedding", "index": i, "embedding": _embedding(str(t), max(1, min(dims, 4096)))}
            for i, t in enumerate(items)
        ]
        tokens = sum(_tokens(str(t)) for t in items)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", "bastion-demo"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def open_stream(self, path: str, payload: bytes) -> _DemoStream:
        body = orjson.loads(payload)
        return _DemoStream(self, path, body)

    async def aclose(self) -> None:
        return None


class _DemoStream:
    def __init__(self, up: DemoUpstream, path: str, body: dict[str, Any]) -> None:
        self._up = up
        self._path = path
        self._body = body

    async def events(self) -> AsyncIterator[bytes]:
        up, body = self._up, self._body
        if up.delay_s:
            await asyncio.sleep(up.delay_s)
        text = reply_text(body)
        words = text.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        created = int(time.time())
        model = body.get("model", "bastion-demo")
        chat = self._path == "/chat/completions"
        ident = up._id("chatcmpl" if chat else "cmpl")
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choice: dict[str, Any]) -> bytes:
            return orjson.dumps(
                {"id": ident, "object": obj, "created": created, "model": model, "choices": [choice]}
            )

        if chat:
            yield chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
        for piece in pieces:
            await asyncio.sleep(0)
            if chat:
                yield chunk({"index": 0, "delta": {"content": piece}, "finish_reason": None})
            else:
                yield chunk({"index": 0, "text": piece, "finish_reason": None})
        if chat:
            yield chunk({"index": 0, "delta": {}, "finish_reason": "stop"})
        else:
            yield chunk({"index": 0, "text": "", "finish_reason": "stop"})
        opts = body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage"):
            usage = up._usage(body, text)
            yield orjson.dumps(
                {
                    "id": ident,
                    "object": obj,
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
            )
        yield b"[DONE]"

    async def aclose(self) -> None:
        return None
