"""Helpers for the ``test_gateway_review3_*`` modules (no tests of its own).

* :class:`ScriptedUpstream`: an in-process provider whose stream is a fixed list of events (it may
  hang or fail after some of them), whose unary answer is fixed; it counts the streams it opened and
  closed and keeps each request body.
* :func:`call`: one call through the gateway as ASGI (optionally leaving, or being cancelled, after
  some events), returning what the caller received: status, headers, body, the stream's payloads.
* :func:`build`: a gateway (chat model ``m``) on that upstream, a :class:`MemoryAudit` ledger and
  keys of several principals and teams.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from bastion.config import Settings, load_settings
from bastion.domain.events import AuditEvent
from bastion.domain.identity import KeyScope, Role
from bastion.errors import UpstreamError
from bastion.gateway import GatewayApp, GatewayComponents, create_gateway
from bastion.gateway.upstream import UpstreamReply, UpstreamStatusError

from .harness import FakeAuthenticator, FakeAuthorizer, MemoryAudit, Ready, post_scope, principal

T = TypeVar("T")
CHAT = "/v1/chat/completions"
#: the keys :func:`build` makes: key -> (principal, team)
KEYS: dict[str, tuple[str, str | None]] = {
    "alice-key": ("alice", "blue"),
    "alice-key2": ("alice", "blue"),
    "bob-key": ("bob", "blue"),
    "carol-key": ("carol", "red"),
}
MODELS: dict[str, Any] = {"m": {"upstream": "demo", "attributes": {"team": "shared"}}}


def chunk(
    content: str | None = None,
    *,
    index: int = 0,
    finish: str | None = None,
    delta: dict[str, Any] | None = None,
    usage: dict[str, int] | None = None,
) -> bytes:
    """One chat.completion.chunk payload."""
    d: dict[str, Any] = dict(delta or {})
    if content is not None:
        d["content"] = content
    obj: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": d, "finish_reason": finish}],
    }
    if usage is not None:
        obj["usage"] = usage
    return orjson.dumps(obj)


def completion_chunk(text: str, *, finish: str | None = None) -> bytes:
    """One text_completion stream payload (``/v1/completions``)."""
    choice = {"index": 0, "text": text, "finish_reason": finish}
    return orjson.dumps(
        {"id": "c", "object": "text_completion", "created": 1, "model": "m", "choices": [choice]}
    )


def usage_chunk(prompt: int, completion: int) -> bytes:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return orjson.dumps(
        {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [], "usage": usage}
    )


def text_stream(
    pieces: Sequence[str],
    *,
    finish_with: str | None = None,
    usage: tuple[int, int] | None = None,
    finish: bool = True,
) -> list[bytes]:
    """Content chunks for ``pieces``; then (with ``finish``) a finishing chunk carrying ``finish_with``
    as content, or an empty delta; an optional usage chunk; ``[DONE]``."""
    events = [chunk(p) for p in pieces]
    if finish:
        events.append(chunk(finish_with, finish="stop"))
    if usage is not None:
        events.append(usage_chunk(*usage))
    events.append(b"[DONE]")
    return events


def chat_reply(content: str, usage: tuple[int, int] | None = (5, 7)) -> bytes:
    resp: dict[str, Any] = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }
    if usage is not None:
        resp["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return orjson.dumps(resp)


class _Stream:
    def __init__(self, up: ScriptedUpstream) -> None:
        self.up = up

    async def events(self) -> AsyncIterator[bytes]:
        up = self.up
        for i, ev in enumerate(up.events):
            if up.hang_after is not None and i >= up.hang_after:
                up.hanging.set()
                await asyncio.Event().wait()
            if up.fail_after is not None and i >= up.fail_after:
                raise UpstreamError("the upstream connection broke", status=502)
            await asyncio.sleep(0)
            yield ev

    async def aclose(self) -> None:
        self.up.closed += 1


@dataclass
class ScriptedUpstream:
    """A provider answering every stream with ``events`` and every unary call with ``reply``."""

    events: list[bytes] = field(default_factory=list)
    reply: UpstreamReply = field(default_factory=lambda: UpstreamReply(200, chat_reply("fine")))
    #: after this many events the stream waits for ever (a caller may then leave)
    hang_after: int | None = None
    #: after this many events the stream fails (an UpstreamError)
    fail_after: int | None = None
    #: opening a stream answers this status (an UpstreamStatusError)
    stream_status: UpstreamReply | None = None
    #: raised by ``send`` / ``open_stream`` (the provider cannot be reached)
    raises: Exception | None = None
    #: ``send`` waits for ever (a caller may then be cancelled)
    unary_hangs: bool = False
    #: ``open_stream`` waits for ever (the provider never answers the stream request)
    opening_hangs: bool = False
    name: str = "demo"
    bodies: list[dict[str, Any]] = field(default_factory=list)
    opened: int = 0
    closed: int = 0
    hanging: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, path: str, payload: bytes) -> UpstreamReply:
        self.bodies.append(orjson.loads(payload))
        if self.raises is not None:
            raise self.raises
        if self.unary_hangs:
            self.hanging.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)
        return self.reply

    async def open_stream(self, path: str, payload: bytes) -> _Stream:
        self.bodies.append(orjson.loads(payload))
        if self.raises is not None:
            raise self.raises
        if self.opening_hangs:
            self.hanging.set()
            await asyncio.Event().wait()
        if self.stream_status is not None:
            raise UpstreamStatusError(self.stream_status)
        self.opened += 1
        return _Stream(self)

    async def aclose(self) -> None:
        pass


@dataclass
class Gw:
    app: GatewayApp
    audit: MemoryAudit
    up: ScriptedUpstream
    auth: FakeAuthenticator

    def events(self) -> list[AuditEvent]:
        return list(self.audit.events)

    def one_event(self) -> AuditEvent:
        evs = self.events()
        assert len(evs) == 1, [(e.tag, e.outcome, e.attributes.get("status")) for e in evs]
        return evs[0]


def settings(*, server: dict[str, Any] | None = None, **gateway: Any) -> Settings:
    gateway.setdefault("models", MODELS)
    return load_settings(None, gateway=gateway, server=server or {})


def build(
    s: Settings | None = None,
    up: ScriptedUpstream | None = None,
    *,
    scopes: dict[str, KeyScope] | None = None,
    tag: str = "",
    **components: Any,
) -> Gw:
    """A gateway on ``s`` (default: :func:`settings`) whose ``demo`` upstream is ``up``. ``tag`` is
    appended to every principal, team and key id (unique names in a shared Redis)."""
    auth, audit, up = FakeAuthenticator(), MemoryAudit(), up or ScriptedUpstream()
    for key, (pid, team) in KEYS.items():
        p = principal(pid + tag, Role.USER, team=None if team is None else team + tag)
        auth.add(key, p, (scopes or {}).get(key, KeyScope()))
        auth.keys[key] = dataclasses.replace(auth.keys[key], key_id=f"kid-{key}{tag}")
    comps = GatewayComponents(
        authenticator=auth,
        authorizer=FakeAuthorizer(),
        audit=audit,
        readiness=Ready(),
        upstreams={"demo": up},
        **components,
    )
    return Gw(create_gateway(s or settings(), comps), audit, up, auth)


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    cancelled: bool = False

    def json(self) -> Any:
        return orjson.loads(self.body)

    def payloads(self) -> list[bytes]:
        """The ``data:`` payloads of a streamed answer, in order."""
        return [e[6:] for e in self.body.split(b"\n\n") if e.startswith(b"data: ")]

    def error_event(self) -> dict[str, Any] | None:
        """The stream's OpenAI error event (its last payload), if it ends with one."""
        ps = self.payloads()
        if not ps or ps[-1] == b"[DONE]":
            return None
        last = orjson.loads(ps[-1])
        return last if isinstance(last, dict) and "error" in last else None

    def done(self) -> bool:
        return b"[DONE]" in self.payloads()

    def chunks(self) -> list[dict[str, Any]]:
        """The chunk objects received (neither ``[DONE]`` nor an error event)."""
        out = []
        for p in self.payloads():
            if p == b"[DONE]":
                continue
            obj = orjson.loads(p)
            if "error" not in obj:
                out.append(obj)
        return out

    def text(self, index: int = 0, fld: str = "content") -> str:
        """Everything the caller received in ``delta[fld]`` of choice ``index``."""
        return "".join(
            str(ch["delta"].get(fld) or "")
            for obj in self.chunks()
            for ch in obj.get("choices") or []
            if ch.get("index", 0) == index and isinstance(ch.get("delta"), dict)
        )

    def completion_text(self, index: int = 0) -> str:
        """Everything the caller received in ``text`` of completion choice ``index``."""
        return "".join(
            str(ch.get("text") or "")
            for obj in self.chunks()
            for ch in obj.get("choices") or []
            if ch.get("index", 0) == index
        )

    def tool_args(self, index: int = 0, tool: int = 0) -> str:
        return "".join(
            str(tc.get("function", {}).get("arguments") or "")
            for obj in self.chunks()
            for ch in obj.get("choices") or []
            if ch.get("index", 0) == index
            for tc in ch["delta"].get("tool_calls") or []
            if tc.get("index", 0) == tool
        )

    def stream_sha256(self) -> str:
        """SHA-256 of the content the caller received: the stream's payloads one after the other,
        without ``[DONE]`` and the gateway's own error event."""
        ps = [p for p in self.payloads() if p != b"[DONE]"]
        if self.error_event() is not None:
            ps = ps[:-1]
        return hashlib.sha256(b"".join(ps)).hexdigest()


def body_of(
    messages: Sequence[dict[str, Any]] | None = None, *, stream: bool = False, **extra: Any
) -> dict[str, Any]:
    msgs = list(messages) if messages is not None else [{"role": "user", "content": "hi"}]
    out: dict[str, Any] = {"model": "m", "messages": msgs, **extra}
    if stream:
        out["stream"] = True
    return out


def scope(key: str, path: str = CHAT) -> dict[str, Any]:
    """The harness's POST scope, with this module's argument order (key first)."""
    return post_scope(path, key)


async def acall(
    app: GatewayApp,
    payload: dict[str, Any] | bytes,
    *,
    key: str = "alice-key",
    leave_when: asyncio.Event | None = None,
    cancel_when: asyncio.Event | None = None,
    path: str = CHAT,
) -> Answer:
    """One call through the ASGI app. With ``leave_when`` the caller disconnects once it is set; with
    ``cancel_when`` the call's task is cancelled then (a server giving up on it). ``payload`` is
    JSON-encoded unless it is bytes already."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    read = False

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": body, "more_body": False}
        if leave_when is not None:
            await leave_when.wait()
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return await drive(app, scope(key, path), receive, cancel_when)


async def drive(
    app: GatewayApp,
    asgi_scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    cancel_when: asyncio.Event | None = None,
) -> Answer:
    """Run one ASGI call with ``receive``; with ``cancel_when`` its task is cancelled once that is set.
    The answer is what was sent."""
    sent: list[MutableMapping[str, Any]] = []

    async def send(msg: MutableMapping[str, Any]) -> None:
        sent.append(msg)

    task = asyncio.ensure_future(app(asgi_scope, receive, send))
    cancelled = False
    if cancel_when is not None:
        waiter = asyncio.ensure_future(cancel_when.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
        waiter.cancel()
    try:
        await task
    except asyncio.CancelledError:
        cancelled = True
    starts = [m for m in sent if m["type"] == "http.response.start"]
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if not starts:
        return Answer(0, {}, out, cancelled)
    return Answer(int(starts[0]["status"]), dict(starts[0].get("headers", [])), out, cancelled)


def run(gw: Gw, payload: dict[str, Any] | bytes, **kw: Any) -> Answer:
    """:func:`acall` on a fresh loop (bounded), the gateway drained afterwards."""

    async def main() -> Answer:
        try:
            return await asyncio.wait_for(acall(gw.app, payload, **kw), 10)
        finally:
            await gw.app.gateway.drain()

    return asyncio.run(main())


def attrs(ev: AuditEvent) -> dict[str, Any]:
    return dict(ev.attributes)


def run_session(gw: Gw, fn: Callable[[Gw], Awaitable[T]], timeout: float = 15.0) -> T:
    """``fn(gw)`` on a fresh loop (bounded), the gateway drained afterwards (every event written)."""

    async def main() -> T:
        try:
            return await asyncio.wait_for(fn(gw), timeout)
        finally:
            await gw.app.gateway.drain()

    return asyncio.run(main())
