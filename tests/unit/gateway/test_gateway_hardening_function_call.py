"""Legacy function calling (``function_call``, before ``tool_calls``) is guarded like tool calls: its
arguments are scanned in request messages, in unary answers and in streamed answers (split over
chunks, on a channel of their own), and counted for token estimates."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.domain.events import EventTag
from bastion.gateway import wire
from bastion.gateway.stream_chunks import chunk_refs, count_texts, put_text
from bastion.gateway.upstream import UpstreamReply

from .harness import MemoryAudit, direct_gateway, gateway_settings, post_scope

SECRET_PIECES = ['{"q": "proj', "ect ", "zeus", ' now"}']
SECRET_ARGS = "".join(SECRET_PIECES)
REDACTED_ARGS = '{"q": "[REDACTED] now"}'
MODELS = {
    "bastion-demo": {"upstream": "demo", "attributes": {"team": "shared"}},
    "redact-model": {"upstream": "demo", "attributes": {"team": "shared"}},
}
GUARDS = {
    "input": ["denylist"],
    "output": ["denylist"],
    "options": {"denylist": {"terms": ["project zeus"]}},
    "default_action": "block",
    "rules": [{"action": "redact", "model": "redact-model"}],
}


class FunctionCallUpstream:
    """A provider that answers with a legacy function call, whole or streamed in pieces."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.bodies: list[dict[str, Any]] = []

    async def send(self, path: str, payload: bytes) -> UpstreamReply:
        self.bodies.append(orjson.loads(payload))
        message = {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "lookup", "arguments": "".join(self.pieces)},
        }
        resp = {
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "function_call"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        }
        return UpstreamReply(200, orjson.dumps(resp))

    async def open_stream(self, path: str, payload: bytes) -> _Stream:
        self.bodies.append(orjson.loads(payload))
        return _Stream(self.pieces)

    async def aclose(self) -> None:
        return None


class _Stream:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    async def events(self) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            obj = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [choice],
            }
            return orjson.dumps(obj)

        yield chunk(
            {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": ""}}
        )
        for piece in self.pieces:
            await asyncio.sleep(0)
            yield chunk({"function_call": {"arguments": piece}})
        yield chunk({}, "function_call")
        yield b"[DONE]"

    async def aclose(self) -> None:
        return None


async def _post(app: Any, body: dict[str, Any]) -> tuple[int, bytes]:
    sent: list[MutableMapping[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": orjson.dumps(body), "more_body": False}
        await asyncio.Event().wait()  # the caller stays
        raise AssertionError("unreachable")

    async def send(msg: MutableMapping[str, Any]) -> None:
        sent.append(msg)

    await app(post_scope("/v1/chat/completions"), receive, send)
    await app.gateway.drain()
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def _call(
    body: dict[str, Any], pieces: list[str] = SECRET_PIECES, guards: dict[str, Any] = GUARDS
) -> tuple[int, bytes, MemoryAudit, FunctionCallUpstream]:
    up = FunctionCallUpstream(pieces)
    app, audit = direct_gateway(gateway_settings(models=MODELS, guards=guards), upstreams={"demo": up})
    status, answer = asyncio.run(_post(app, body))
    return status, answer, audit, up


def _guards(audit: MemoryAudit) -> dict[str, Any]:
    """The guard states the call's (last) ledger event recorded."""
    guards = audit.events[-1].attributes["guards"]
    assert isinstance(guards, dict)
    return guards


def _ask(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "look it up"}], **extra}


def _events(body: bytes) -> list[bytes]:
    return [e.removeprefix(b"data: ") for e in body.split(b"\n\n") if e]


def _streamed_arguments(body: bytes) -> str:
    args = ""
    for payload in _events(body):
        if payload == b"[DONE]":
            continue
        for ch in orjson.loads(payload).get("choices") or ():
            fc = (ch.get("delta") or {}).get("function_call") or {}
            args += fc.get("arguments") or ""
    return args


# -- unary answers --------------------------------------------------------------------------------


def test_unary_function_call_arguments_are_blocked() -> None:
    status, body, audit, _ = _call(_ask("bastion-demo"))
    assert status == 400 and orjson.loads(body)["error"]["code"] == "content_filter"
    assert b"zeus" not in body
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_BLOCKED
    assert _guards(audit)["output"] == "blocked"


def test_unary_function_call_arguments_are_redacted() -> None:
    status, body, audit, _ = _call(_ask("redact-model"))
    assert status == 200
    fc = orjson.loads(body)["choices"][0]["message"]["function_call"]
    assert fc == {"name": "lookup", "arguments": REDACTED_ARGS}
    assert _guards(audit)["output"] == "redacted"


# -- streamed answers -----------------------------------------------------------------------------


def test_streamed_function_call_arguments_split_over_chunks_are_blocked() -> None:
    status, body, audit, _ = _call(_ask("bastion-demo", stream=True))
    assert status == 200  # the stream had begun; it ends with an error event and no [DONE]
    events = _events(body)
    assert b"[DONE]" not in events
    assert orjson.loads(events[-1])["error"]["code"] == "content_filter"
    assert "zeus" not in _streamed_arguments(body)
    assert audit.events[-1].tag is EventTag.GATEWAY_REQUEST_BLOCKED


def test_streamed_function_call_arguments_split_over_chunks_are_redacted() -> None:
    status, body, audit, _ = _call(_ask("redact-model", stream=True))
    assert status == 200 and _events(body)[-1] == b"[DONE]"
    assert _streamed_arguments(body) == REDACTED_ARGS
    assert _guards(audit)["output"] == "redacted"


def test_unguarded_stream_counts_function_call_characters() -> None:
    off: dict[str, Any] = {"input": [], "output": []}
    status, body, audit, _ = _call(_ask("bastion-demo", stream=True), ["x" * 40, "y" * 40], guards=off)
    assert status == 200 and _streamed_arguments(body) == "x" * 40 + "y" * 40
    tokens: Any = audit.events[-1].attributes["tokens"]
    assert tokens["completion"] == wire.estimate_tokens(80) and tokens["estimated"] is True
    assert tokens["prompt"] > 0  # estimated from the request's size


# -- request messages -----------------------------------------------------------------------------


def _history(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [
            {"role": "user", "content": "look it up"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "lookup", "arguments": SECRET_ARGS},
            },
            {"role": "function", "name": "lookup", "content": "nothing found"},
        ],
    }


def test_request_function_call_arguments_are_blocked_before_the_upstream() -> None:
    status, body, audit, up = _call(_history("bastion-demo"), ["{}"])
    assert status == 400 and orjson.loads(body)["error"]["code"] == "content_filter"
    assert up.bodies == []
    assert _guards(audit)["input"] == "blocked"


def test_request_function_call_arguments_are_redacted_before_the_upstream() -> None:
    status, _, _, up = _call(_history("redact-model"), ["{}"])
    assert status == 200
    assert up.bodies[-1]["messages"][1]["function_call"] == {"name": "lookup", "arguments": REDACTED_ARGS}


# -- the helpers ----------------------------------------------------------------------------------


def test_refs_name_function_call_arguments() -> None:
    msg = {"role": "assistant", "function_call": {"name": "f", "arguments": "a"}}
    assert wire.input_refs({"messages": [msg]}, "chat") == [(msg["function_call"], "arguments")]
    resp = {"choices": [{"index": 0, "message": msg}]}
    # an answer's every string is read, the function's name too (a one-word role is a label)
    fc = msg["function_call"]
    assert wire.output_refs(resp, "chat") == [(fc, "name"), (fc, "arguments")]
    ch: dict[str, Any] = {"index": 1, "delta": {"function_call": {"arguments": "b"}, "tool_calls": []}}
    assert chunk_refs(ch, "chat", 1) == [(ch["delta"]["function_call"], "arguments", "1:fn")]


@pytest.mark.parametrize(
    "delta", [None, {}, {"function_call": None}, {"function_call": {"name": "f", "arguments": "z"}}]
)
def test_put_text_routes_the_function_call_channel(delta: object) -> None:
    ch: dict[str, Any] = {"index": 0, "delta": copy.deepcopy(delta)}
    put_text(ch, "chat", "0:fn", "held ")
    assert ch["delta"]["function_call"]["arguments"].endswith("held ")  # after what the chunk carries
    assert "content" not in ch["delta"] and "tool_calls" not in ch["delta"]
    put_text(ch, "chat", "0:tool2", "t")
    put_text(ch, "chat", "0", "c")
    assert ch["delta"]["tool_calls"] == [{"index": 2, "function": {"arguments": "t"}}]
    assert ch["delta"]["content"] == "c"


junk = st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2))
text = st.one_of(st.text(max_size=8), junk)
function = st.one_of(st.fixed_dictionaries({"arguments": text}, optional={"name": st.text(max_size=4)}), junk)
tool_call = st.one_of(st.fixed_dictionaries({"index": st.integers(0, 3), "function": function}), junk)
delta = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "content": text,
            "tool_calls": st.one_of(st.lists(tool_call, max_size=2), junk),
            "function_call": function,
        },
    ),
    junk,
)
choice = st.one_of(
    st.fixed_dictionaries({"index": st.integers(0, 3), "delta": delta}),
    st.fixed_dictionaries({"index": st.integers(0, 3), "text": text}, optional={"delta": delta}),
    junk,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(choice, max_size=4), st.sampled_from(["chat", "completions"]))
def test_plain_count_matches_the_guarded_texts_with_function_calls(choices: list[Any], kind: str) -> None:
    before = copy.deepcopy(choices)
    by_refs = sum(
        len(holder[key])
        for ch in choices
        if isinstance(ch, dict)
        for holder, key, _ in chunk_refs(ch, kind, 0)
    )
    assert count_texts(choices, kind, False) == (by_refs, False)
    assert choices == before
