"""A hostile caller against the gateway: request bodies and HTTP framing.

Each test states the SAFE behaviour; all are regression tests now (the bugs they found as strict
``xfail``s are fixed). This module also holds the helpers the
other ``test_gateway_hostile_caller_*`` modules use: a gateway driven as ASGI directly (a spy
upstream records what reaches the provider), an event loop whose clock runs fast (to see whether a
timeout exists at all without waiting for it), and raw sockets against a live server.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import socket
import time
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from bastion.config import Settings, load_settings
from bastion.domain.events import AuditEvent, EventTag
from bastion.domain.identity import Role
from bastion.gateway import GatewayApp, GatewayComponents, create_gateway
from bastion.gateway.demo import DemoUpstream, _DemoStream
from bastion.gateway.upstream import UpstreamReply

from .harness import (
    FakeAuthenticator,
    FakeAuthorizer,
    Live,
    MemoryAudit,
    Ready,
    asgi_scope,
    live_gateway,
    principal,
)

# -- helpers (used by the other hostile-caller modules too) ------------------------------------------

MODELS: dict[str, Any] = {
    "bastion-demo": {"upstream": "demo", "attributes": {"team": "shared"}},
    "red-model": {"upstream": "demo", "attributes": {"team": "red"}},
    "alias": {"upstream": "demo", "upstream_model": "provider-model-x", "attributes": {"team": "shared"}},
    "chat-only": {"upstream": "demo", "kinds": ["chat"], "attributes": {"team": "shared"}},
}
DENY = "project zeus"
#: input and output guards: the deny-list only (its findings block: default_action)
DENY_GUARDS: dict[str, Any] = {
    "input": ["denylist"],
    "output": ["denylist"],
    "options": {"denylist": {"terms": [DENY]}},
}
USER_KEY = "user-key"  # alice, team blue: may invoke shared models, not red-model
RED_KEY = "red-key"  # rita, team red
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
#: an ordinary, allowed chat body
OK_CHAT: dict[str, Any] = {"model": "bastion-demo", "messages": [{"role": "user", "content": "hi"}]}


def settings(*, server: dict[str, Any] | None = None, **gateway: Any) -> Settings:
    gateway.setdefault("models", MODELS)
    gateway.setdefault("guards", DENY_GUARDS)
    return load_settings(None, gateway=gateway, server=server or {})


class SpyUpstream(DemoUpstream):
    """The demo model, keeping each request body the gateway sent it (parsed) and its raw bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.streamed: list[bool] = []

    async def send(self, path: str, payload: bytes) -> UpstreamReply:
        self.raw.append(payload)
        self.bodies.append(orjson.loads(payload))
        self.streamed.append(False)
        return await super().send(path, payload)

    async def open_stream(self, path: str, payload: bytes) -> _DemoStream:
        self.raw.append(payload)
        self.bodies.append(orjson.loads(payload))
        self.streamed.append(True)
        return await super().open_stream(path, payload)


@dataclass
class Gw:
    """A gateway called as ASGI: its app, ledger, spy upstream and (fake) authenticator."""

    app: GatewayApp
    audit: MemoryAudit
    up: SpyUpstream
    auth: FakeAuthenticator

    def events(self) -> list[AuditEvent]:
        return list(self.audit.events)


def gateway(s: Settings | None = None, *, authenticator: Any = None, **components: Any) -> Gw:
    """A gateway on ``s`` (default: :func:`settings`); keys ``user-key`` and ``red-key``."""
    auth, audit, up = FakeAuthenticator(), MemoryAudit(), SpyUpstream()
    auth.add(USER_KEY, principal("alice", Role.USER, team="blue"))
    auth.add(RED_KEY, principal("rita", Role.USER, team="red"))
    comps = GatewayComponents(
        authenticator=authenticator or auth,
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
    #: how many times the gateway asked for the request body (receive calls before it answered)
    reads: int = 0

    def json(self) -> Any:
        return orjson.loads(self.body)

    def error(self) -> dict[str, Any]:
        err: dict[str, Any] = self.json()["error"]
        return err


def scope(
    path: str,
    *,
    key: str | None = USER_KEY,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = (),
    client: str = "127.0.0.1",
) -> dict[str, Any]:
    hdrs: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json")]
    if key is not None:
        hdrs.insert(0, (b"authorization", b"Bearer " + key.encode()))
    return asgi_scope(path, method=method, headers=[*hdrs, *headers], client=client)


def body_of(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else orjson.dumps(payload)


async def acall(
    app: GatewayApp,
    path: str,
    payload: Any = None,
    *,
    chunks: Sequence[bytes] | None = None,
    stall: bool = False,
    endless: bytes | None = None,
    disconnect: bool = False,
    **scope_kw: Any,
) -> Answer:
    """One call through the ASGI app. The body is ``payload`` (JSON-encoded unless bytes) in one
    message, or ``chunks``; ``stall``: the body never ends (the caller goes idle after the chunks);
    ``endless``: the body is this chunk repeated for ever; ``disconnect``: the caller leaves after
    the chunks. After the body the caller stays connected (receive blocks)."""
    parts = list(chunks) if chunks is not None else [body_of(payload)] if payload is not None else [b""]
    sent: list[MutableMapping[str, Any]] = []
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if endless is not None:
            return {"type": "http.request", "body": endless, "more_body": True}
        if parts:
            chunk = parts.pop(0)
            more = bool(parts) or stall or disconnect
            return {"type": "http.request", "body": chunk, "more_body": more}
        if disconnect:
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # idle: a slow body, or a caller waiting for its answer
        raise AssertionError("unreachable")

    async def send(msg: MutableMapping[str, Any]) -> None:
        sent.append(msg)

    await app(scope(path, **scope_kw), receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    if not starts:
        return Answer(0, {}, b"", reads)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(starts[0]["status"], dict(starts[0]["headers"]), body, reads)


def run(gw: Gw, path: str, payload: Any = None, **kw: Any) -> Answer:
    """:func:`acall` on a fresh event loop, the gateway drained afterwards (every event written)."""

    async def main() -> Answer:
        try:
            return await asyncio.wait_for(acall(gw.app, path, payload, **kw), 20)
        finally:
            await gw.app.gateway.drain()

    return asyncio.run(main())


def run_all(gw: Gw, calls: Sequence[tuple[str, Any, dict[str, Any]]]) -> list[Answer]:
    """Several calls, one after the other, on one event loop; then the gateway drained."""

    async def main() -> list[Answer]:
        try:
            return [await asyncio.wait_for(acall(gw.app, p, b, **kw), 20) for p, b, kw in calls]
        finally:
            await gw.app.gateway.drain()

    return asyncio.run(main())


def attrs(ev: AuditEvent) -> dict[str, Any]:
    """An event's attributes, loosely typed (for nested look-ups)."""
    return dict(ev.attributes)


def one_event(gw: Gw) -> AuditEvent:
    """The call's ledger event, asserting there is exactly one."""
    events = gw.events()
    assert len(events) == 1, [(e.tag, e.attributes.get("status")) for e in events]
    return events[0]


def assert_openai_error(a: Answer, status: int, type_: str, code: str, param: str | None = None) -> None:
    assert a.status == status, a.body
    assert a.headers.get(b"content-type") == b"application/json"
    err = a.error()
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["type"], err["code"], err["param"]) == (type_, code, param), err
    assert isinstance(err["message"], str) and err["message"]


# -- a fast clock --------------------------------------------------------------------------------------

#: virtual seconds per real second on the fast loop
SPEED = 1000.0


class _FastSelector(selectors.DefaultSelector):
    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        result: list[tuple[selectors.SelectorKey, int]] = super().select(
            None if timeout is None else timeout / SPEED
        )
        return result


class FastLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs SPEED times faster than the wall clock: every asyncio
    timer (``asyncio.timeout``, ``wait_for``, ``sleep``, ``call_later``) fires that much sooner."""

    def __init__(self) -> None:
        super().__init__(_FastSelector())
        self._origin = time.monotonic()

    def time(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * SPEED


def run_fast(coro_fn: Any) -> Any:
    with asyncio.Runner(loop_factory=FastLoop) as runner:
        return runner.run(coro_fn())


# -- a live server and raw sockets ---------------------------------------------------------------------


@contextlib.contextmanager
def live(s: Settings) -> Iterator[Live]:
    with live_gateway(s) as lv:
        lv.auth.add(USER_KEY, principal("alice", Role.USER, team="blue"))
        yield lv


def raw_connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.settimeout(5)
    return sock


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[int, bytes]:
    """The status and body of one HTTP/1.1 response with a Content-Length."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before a response: {buf!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            break
        rest += data
    return status, rest[:length]


def request_head(path: str, key: str, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {key}\r\n"
        f"content-type: application/json\r\n{extra}\r\n"
    ).encode()


@dataclass
class Tally:
    """Ledger events of a live gateway from a point on."""

    lv: Live
    start: int = field(init=False)

    def __post_init__(self) -> None:
        self.start = len(self.lv.audit.events)

    def wait(self, n: int, timeout: float = 5.0) -> list[AuditEvent]:
        self.lv.audit.wait_for(self.start + n, timeout)
        return self.lv.audit.events[self.start :]


# -- request bodies: size limits -----------------------------------------------------------------------

SMALL_BODY_LIMIT = 2048


def test_a_body_over_the_limit_is_refused_while_it_is_read() -> None:
    """An endless body gets 413 after the limit, not never: the gateway stops reading there."""
    gw = gateway(settings(server={"max_body_bytes": SMALL_BODY_LIMIT}))
    a = run(gw, CHAT, endless=b"x" * 512)
    assert_openai_error(a, 413, "invalid_request_error", "request_too_large")
    assert a.reads <= SMALL_BODY_LIMIT // 512 + 1
    ev = one_event(gw)
    assert ev.tag is EventTag.GATEWAY_REQUEST_REJECTED and ev.attributes["status"] == 413
    assert gw.up.bodies == []


def test_a_chunked_body_over_the_limit_gets_413_before_it_ends_on_the_wire() -> None:
    """Live server, chunked transfer: the 413 arrives while the caller is still sending (the
    terminating chunk never comes), so the limit holds while reading, not after."""
    with live(settings(server={"max_body_bytes": SMALL_BODY_LIMIT})) as lv:
        tally = Tally(lv)
        sock = raw_connect(lv.url)
        try:
            sock.sendall(request_head(CHAT, USER_KEY, "transfer-encoding: chunked\r\n"))
            chunk = b"x" * 1000
            for _ in range(4):  # 4000 bytes > 2048, and no final 0-chunk
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            status, body = read_response(sock)
        finally:
            sock.close()
        assert status == 413 and orjson.loads(body)["error"]["code"] == "request_too_large"
        events = tally.wait(1)
        assert [e.attributes["status"] for e in events] == [413]


def test_a_declared_length_beyond_the_limit_is_refused_once_the_limit_is_crossed() -> None:
    with live(settings(server={"max_body_bytes": SMALL_BODY_LIMIT})) as lv:
        tally = Tally(lv)
        sock = raw_connect(lv.url)
        try:
            sock.sendall(request_head(CHAT, USER_KEY, "content-length: 1000000000\r\n"))
            sock.sendall(b"x" * (SMALL_BODY_LIMIT + 100))  # then idle, far short of the declared size
            status, _ = read_response(sock)
        finally:
            sock.close()
        assert status == 413
        assert [e.attributes["status"] for e in tally.wait(1)] == [413]


def test_a_shorter_content_length_cuts_the_body_and_is_a_400_with_one_event() -> None:
    """Bytes past Content-Length are not part of this request: the gateway sees the truncated JSON
    (a 400 and one event) and nothing reaches the upstream. (uvicorn answers the leftover bytes, a
    malformed next request, with its own 400 and closes: which 400 the caller reads first varies.)"""
    body = orjson.dumps(OK_CHAT)
    with live(settings()) as lv:
        tally = Tally(lv)
        sock = raw_connect(lv.url)
        try:
            sock.sendall(request_head(CHAT, USER_KEY, f"content-length: {len(body) - 10}\r\n") + body)
            status, _ = read_response(sock)
        finally:
            sock.close()
        assert status == 400
        events = tally.wait(1)
        time.sleep(0.2)  # nothing else comes
        assert [(e.tag, e.attributes["status"]) for e in lv.audit.events[tally.start :]] == [
            (EventTag.GATEWAY_REQUEST_REJECTED, 400)
        ]
        assert "upstream" not in attrs(events[0])["steps"]


def test_a_longer_content_length_then_a_hang_up_is_one_cancelled_event() -> None:
    """The caller promises more than it sends and leaves: one event (499, cancelled), no upstream call."""
    gw = gateway()
    a = run(gw, CHAT, chunks=[b'{"model":"bastion-demo",'], disconnect=True)
    assert a.status == 0  # nobody to answer
    ev = one_event(gw)
    assert ev.attributes["status"] == 499 and ev.outcome == "cancelled"
    assert gw.up.bodies == []


# -- slow bodies ---------------------------------------------------------------------------------------


def test_an_idle_body_is_ended_by_a_read_deadline() -> None:
    """Slowloris: half a body, then silence. Safe: within 10 (virtual) minutes the gateway gives up
    with an error answer (408/400) and the call's one ledger event. The loop's clock runs 1000x
    fast, so an asyncio-based deadline of up to 10 minutes fires here in 0.6 s."""
    gw = gateway()

    async def main() -> tuple[Answer | None, int]:
        task = asyncio.ensure_future(acall(gw.app, CHAT, chunks=[b'{"model":"bastion-demo",'], stall=True))
        done, _ = await asyncio.wait({task}, timeout=600)  # virtual seconds
        in_flight = gw.app.gateway.in_flight
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None, in_flight
        return task.result(), in_flight

    answer, in_flight = run_fast(main)
    assert answer is not None, f"after 10 idle minutes the call is still in flight ({in_flight})"
    assert 400 <= answer.status < 500
    assert len(gw.events()) == 1


def test_uploads_in_progress_count_against_the_concurrency_limit() -> None:
    """per_key.concurrent: 1. While one call of the key is still uploading its body, a second call of
    the same key is refused (429): the limit bounds what one key holds in flight."""
    gw = gateway(settings(limits={"per_key": {"concurrent": 1, "requests_per_minute": 1000}}))

    async def main() -> Answer:
        slow = asyncio.ensure_future(acall(gw.app, CHAT, chunks=[b'{"model":"bastion-demo",'], stall=True))
        await asyncio.sleep(0.05)
        try:
            return await asyncio.wait_for(acall(gw.app, CHAT, OK_CHAT), 10)
        finally:
            slow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await slow

    second = asyncio.run(main())
    assert second.status == 429


# -- request bodies: content ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"bastion-demo","messages":[{"role":"user","content":"\xff\xfe"}]}',  # not UTF-8
        b'{"model":"bastion-demo","messages":[{"role":"user","content":"\xed\xa0\x80"}]}',  # a raw surrogate
        b'{"model":"bastion-demo","messages":[{"role":"user","content":"\\ud800"}]}',  # an escaped lone one
        b"\xef\xbb\xbf" + orjson.dumps(OK_CHAT),  # a byte-order mark
        b'{"model":"bastion-demo","messages":[{"role":"user","content":"hi"}]} trailing',
        b"[" * 100_000,  # nested past any parser's depth limit
        b"",
        b"null",
        b'"just a string"',
    ],
    ids=[
        "latin1",
        "raw-surrogate",
        "escaped-surrogate",
        "bom",
        "trailing",
        "deep",
        "empty",
        "null",
        "string",
    ],
)
def test_bodies_that_are_not_a_json_object_in_utf8_are_a_400(raw: bytes) -> None:
    gw = gateway()
    a = run(gw, CHAT, raw)
    assert_openai_error(a, 400, "invalid_request_error", "invalid_request")
    assert one_event(gw).attributes["status"] == 400
    assert gw.up.bodies == []


def nested(depth: int) -> bytes:
    """A chat body with a passed-through field nested ``depth`` arrays deep."""
    return orjson.dumps(OK_CHAT)[:-1] + b',"metadata_blob":' + b"[" * depth + b"]" * depth + b"}"


def test_nesting_the_gateway_can_forward_reaches_the_upstream() -> None:
    gw = gateway()
    a = run(gw, CHAT, nested(200))
    assert a.status == 200
    assert one_event(gw).attributes["status"] == 200


@pytest.mark.parametrize("stream", [False, True])
def test_nesting_the_gateway_cannot_forward_is_a_400_not_a_crash(stream: bool) -> None:
    gw = gateway()
    raw = nested(300)
    if stream:
        raw = raw[:-1] + b',"stream":true}'
    a = run(gw, CHAT, raw)
    assert_openai_error(a, 400, "invalid_request_error", "invalid_request")
    assert one_event(gw).tag is EventTag.GATEWAY_REQUEST_REJECTED


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"model":"red-model","model":"bastion-demo"', "bastion-demo"),
        (b'{"model":"bastion-demo","model":"red-model"', "red-model"),
    ],
)
def test_duplicate_model_keys_authorize_and_route_the_same_model(raw: bytes, expected: str) -> None:
    """Duplicate keys: the name authorization decides on is the one the upstream receives (the
    gateway re-serialises the parsed object: one ``model`` key, never the raw bytes)."""
    gw = gateway()
    a = run(gw, CHAT, raw + b',"messages":[{"role":"user","content":"hi"}]}')
    ev = one_event(gw)
    assert ev.attributes.get("model") == expected
    if expected == "red-model":  # alice (team blue) may not use red-model
        assert a.status == 403 and gw.up.raw == []
    else:
        assert a.status == 200
        assert gw.up.raw[-1].count(b'"model"') == 1 and gw.up.bodies[-1]["model"] == expected
        assert b"red-model" not in gw.up.raw[-1]


def test_duplicate_messages_keys_are_scanned_as_they_are_sent() -> None:
    """Duplicate ``messages``: the guards see the array the upstream receives."""
    raw = (
        b'{"model":"bastion-demo","messages":[{"role":"user","content":"hi"}],'
        b'"messages":[{"role":"user","content":"tell me about project zeus"}]}'
    )
    gw = gateway()
    a = run(gw, CHAT, raw)
    assert a.status == 400 and a.error()["code"] == "content_filter"
    assert gw.up.raw == []


def test_a_huge_array_of_messages_is_handled_in_bounded_time() -> None:
    """~4 MiB of tiny messages (the default body limit): parsed, validated, scanned and answered
    within seconds, one event."""
    n = 130_000
    body = {"model": "bastion-demo", "messages": [{"role": "user", "content": "a"}] * n}
    raw = orjson.dumps(body)
    assert len(raw) < 4 * 1024 * 1024
    gw = gateway()
    t0 = time.monotonic()
    a = run(gw, CHAT, raw)
    assert a.status == 200
    assert time.monotonic() - t0 < 15
    assert one_event(gw).attributes["status"] == 200


@pytest.mark.parametrize(
    "content",
    [
        [{"type": "text", "text": 5}],
        [{"type": "text", "text": ["project zeus"]}],
        [{"type": "text", "text": {"value": "project zeus"}}],
        ["project zeus"],
        [None],
        5,
        {"text": "project zeus"},
        True,
    ],
    ids=["text-int", "text-list", "text-object", "bare-string-part", "null-part", "int", "object", "bool"],
)
def test_content_that_is_not_text_where_text_is_expected_is_a_400(content: object) -> None:
    gw = gateway()
    a = run(gw, CHAT, {"model": "bastion-demo", "messages": [{"role": "user", "content": content}]})
    assert a.status == 400 and a.error()["param"] == "messages[0].content"
    assert gw.up.bodies == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", "5"),
        ("max_tokens", "100000"),
        ("max_completion_tokens", "1e9"),
        ("top_logprobs", "5"),
        ("logprobs", "true"),
        ("stream", "false"),
    ],
)
def test_numbers_and_booleans_as_strings_are_a_400_naming_the_parameter(field: str, value: str) -> None:
    gw = gateway()
    a = run(gw, CHAT, {**OK_CHAT, field: value})
    assert_openai_error(a, 400, "invalid_request_error", "invalid_request", field)
    assert gw.up.bodies == []


def test_roles_are_exact() -> None:
    """``System`` or ``USER`` is no role: a 400, not a message some upstream reads as a system turn."""
    for role in ("System", "USER", "system ", "tool\x00", ""):
        gw = gateway()
        a = run(gw, CHAT, {"model": "bastion-demo", "messages": [{"role": role, "content": "hi"}]})
        assert a.status == 400 and a.error()["param"] == "messages[0]"


# -- hardening: log-probabilities -------------------------------------------------------------------------


class LogprobsUpstream(SpyUpstream):
    """The demo model, answering completions with log-probabilities whenever ``logprobs`` is sent
    (OpenAI: ``logprobs: 0`` still returns the sampled tokens' log-probabilities)."""

    async def send(self, path: str, payload: bytes) -> UpstreamReply:
        reply = await super().send(path, payload)
        if path != "/completions" or self.bodies[-1].get("logprobs") is None:
            return reply
        resp = orjson.loads(reply.body)
        for ch in resp["choices"]:
            ch["logprobs"] = {"tokens": ["fine"], "token_logprobs": [-0.01], "top_logprobs": None}
        return UpstreamReply(200, orjson.dumps(resp))


def _logprobs_gateway() -> Gw:
    gw = gateway()
    up = LogprobsUpstream()
    gw.app.gateway.upstreams["demo"] = up
    gw.up = up
    return gw


def test_a_caller_without_logprobs_rights_never_receives_logprobs() -> None:
    gw = _logprobs_gateway()
    a = run(gw, COMPLETIONS, {"model": "bastion-demo", "prompt": "hi", "logprobs": 0})
    assert a.status == 200
    assert all(ch["logprobs"] is None for ch in a.json()["choices"])


def test_logprobs_zero_is_removed_before_the_upstream() -> None:
    gw = _logprobs_gateway()
    a = run(gw, COMPLETIONS, {"model": "bastion-demo", "prompt": "hi", "logprobs": 0})
    assert a.status == 200
    assert "logprobs" not in gw.up.bodies[-1]
    assert "logprobs_stripped" in attrs(one_event(gw)).get("hardening", [])
