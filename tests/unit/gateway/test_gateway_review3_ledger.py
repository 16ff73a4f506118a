"""Review: the ONE ledger event of every gateway call (recording.py, call.py, the pipeline's exits).

For every way a call can end (each error class, a block, an upstream failure, a disconnect, a
cancellation, a ledger failure, a bug) the ledger gets exactly one event naming the principal, key,
model, route, decision, reasons, guard states, token counts, upstream status, latencies and the
prompt/response digests where they apply; the response digest is the one of what the caller got
(computed here from the client side); no prompt or response content is ever in it.

Each test asserts the SAFE behaviour (the bugs found as strict xfails are fixed).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from bastion.domain.events import AuditEvent, EventTag, JSONValue
from bastion.domain.identity import Authentication
from bastion.errors import UpstreamError
from bastion.gateway.upstream import UpstreamReply

from .test_gateway_review3_support import (
    Answer,
    Gw,
    ScriptedUpstream,
    acall,
    attrs,
    body_of,
    build,
    chat_reply,
    chunk,
    run,
    settings,
    text_stream,
)

AWS = "AKIAQWERTYUIOPASDFGH"
DENY = "project zeus"
MARK = "prompt-marker-7f3a9c"  # a piece of prompt no event may hold
GUARDS: dict[str, Any] = {
    "input": ["denylist"],
    "output": ["secrets", "denylist"],
    "options": {"denylist": {"terms": [DENY]}},
}
MODELS: dict[str, Any] = {
    "m": {"upstream": "demo", "attributes": {"team": "shared"}},
    "red-model": {"upstream": "demo", "attributes": {"team": "red"}},
}
LONG = "lorem ipsum dolor sit amet " * 12  # 324 characters: more than the hold-back, so the head is sent


@dataclass
class Case:
    """One way a call ends, and what its one event must say."""

    tag: EventTag
    outcome: str
    status: int
    #: the HTTP status the caller saw (0: none, the call was cancelled)
    http: int
    up: Callable[[], ScriptedUpstream] = ScriptedUpstream
    stream: bool = False
    key: str = "alice-key"
    model: str = "m"
    prompt: str = f"hi {MARK}"
    raw: bytes | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    how: str = ""  # "leave" | "cancel": the caller leaves / the task is cancelled once the upstream hangs
    guards: tuple[str, str] | None = None
    upstream_status: int | None = None
    tokens: bool = False
    digest: bool = False  # a response digest is due (some of the answer reached the caller)
    body_read: bool = True  # the request body was read (prompt digest due)
    server: dict[str, Any] = field(default_factory=dict)


def _up(**kw: Any) -> Callable[[], ScriptedUpstream]:
    return lambda: ScriptedUpstream(**kw)


F, B, C, R, L = (
    EventTag.GATEWAY_REQUEST_FAILED,
    EventTag.GATEWAY_REQUEST_BLOCKED,
    EventTag.GATEWAY_REQUEST_COMPLETED,
    EventTag.GATEWAY_REQUEST_REJECTED,
    EventTag.GATEWAY_LIMIT_EXCEEDED,
)
ok_stream = text_stream([LONG, "the end"], usage=(9, 11))
CASES: dict[str, Case] = {
    "ok-unary": Case(
        C, "allowed", 200, 200, guards=("passed", "passed"), upstream_status=200, tokens=True, digest=True
    ),
    "ok-stream": Case(
        C,
        "allowed",
        200,
        200,
        _up(events=ok_stream),
        stream=True,
        guards=("passed", "passed"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "redacted-unary": Case(
        C,
        "allowed",
        200,
        200,
        _up(reply=UpstreamReply(200, chat_reply(f"key {AWS}"))),
        guards=("passed", "redacted"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "redacted-stream": Case(
        C,
        "allowed",
        200,
        200,
        _up(events=text_stream([LONG, f"key {AWS[:9]}", f"{AWS[9:]} end"])),
        stream=True,
        guards=("passed", "redacted"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "unknown-key-401": Case(R, "denied", 401, 401, key="nobody", body_read=False),
    "bad-json-400": Case(R, "denied", 400, 400, raw=b'{"model": "m", "messages": '),
    "unknown-model-404": Case(R, "denied", 404, 404, model="nope"),
    "forbidden-model-403": Case(R, "denied", 403, 403, model="red-model"),
    "rate-limited-429": Case(L, "limited", 429, 429, limits={"per_key": {"requests_per_minute": 1}}),
    "input-block": Case(
        B, "blocked", 400, 400, prompt=f"tell me about {DENY} {MARK}", guards=("blocked", "not_run")
    ),
    "output-block-unary": Case(
        B,
        "blocked",
        400,
        400,
        _up(reply=UpstreamReply(200, chat_reply(f"all about {DENY}"))),
        guards=("passed", "blocked"),
        upstream_status=200,
    ),
    "output-block-stream": Case(
        B,
        "blocked",
        400,
        200,
        _up(events=text_stream([LONG, "all about proj", "ect zeus"])),
        stream=True,
        guards=("passed", "blocked"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "upstream-500-unary": Case(
        F,
        "error",
        502,
        502,
        _up(reply=UpstreamReply(500, b'{"error":{"message":"boom"}}')),
        guards=("passed", "not_run"),
        upstream_status=500,
    ),
    "upstream-unreachable-unary": Case(
        F,
        "error",
        502,
        502,
        _up(raises=UpstreamError("connection refused", status=502)),
        guards=("passed", "not_run"),
    ),
    "upstream-unreachable-stream": Case(
        F,
        "error",
        502,
        502,
        _up(raises=UpstreamError("connection refused", status=502)),
        stream=True,
        guards=("passed", "not_run"),
    ),
    "upstream-503-stream": Case(
        F,
        "error",
        502,
        502,
        _up(stream_status=UpstreamReply(503, b"{}")),
        stream=True,
        guards=("passed", "not_run"),
        upstream_status=503,
    ),
    "stream-fails-mid-way": Case(
        F,
        "error",
        502,
        200,
        _up(events=ok_stream, fail_after=1),
        stream=True,
        guards=("passed", "passed"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "stream-ends-without-done": Case(
        F,
        "error",
        502,
        200,
        _up(events=[chunk(LONG)]),
        stream=True,
        guards=("passed", "passed"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "stream-caller-leaves": Case(
        F,
        "cancelled",
        499,
        200,
        _up(events=ok_stream, hang_after=1),
        stream=True,
        how="leave",
        guards=("passed", "incomplete"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "stream-task-cancelled": Case(
        F,
        "cancelled",
        499,
        200,
        _up(events=ok_stream, hang_after=1),
        stream=True,
        how="cancel",
        guards=("passed", "incomplete"),
        upstream_status=200,
        tokens=True,
        digest=True,
    ),
    "body-too-large-413": Case(
        R, "denied", 413, 413, prompt="x" * 5000, server={"max_body_bytes": 1024}, body_read=False
    ),
    "limiter-down-503": Case(
        R, "denied", 503, 503, limits={"storage": "redis", "redis_url": "redis://127.0.0.1:1/0"}
    ),
    "gateway-bug-500": Case(
        F, "error", 500, 500, _up(raises=RuntimeError("bug")), guards=("passed", "not_run")
    ),
}


def _run_case(c: Case, *, audit_fails: bool = False) -> tuple[Gw, Answer, bytes]:
    gw = build(settings(guards=GUARDS, models=MODELS, limits=c.limits, server=c.server), c.up())
    gw.audit.fail = audit_fails
    raw = _payload(c)

    async def go(gw: Gw) -> Answer:
        if c.limits.get("per_key"):  # spend the window with one allowed call first
            await acall(gw.app, body_of(), key=c.key)
            gw.audit.events.clear()
        kw: dict[str, Any] = {}
        if c.how == "leave":
            kw["leave_when"] = gw.up.hanging
        elif c.how == "cancel":
            kw["cancel_when"] = gw.up.hanging
        return await acall(gw.app, raw, key=c.key, **kw)

    async def main() -> Answer:
        try:
            return await asyncio.wait_for(go(gw), 10)
        finally:
            await gw.app.gateway.drain()

    return gw, asyncio.run(main()), raw


def _payload(c: Case) -> bytes:
    if c.raw is not None:
        return c.raw
    payload = body_of([{"role": "user", "content": c.prompt}], stream=c.stream)
    payload["model"] = c.model
    return orjson.dumps(payload)


def _received_digest(a: Answer, stream: bool) -> str:
    return a.stream_sha256() if stream else hashlib.sha256(a.body).hexdigest()


@pytest.mark.parametrize("name", list(CASES))
def test_every_exit_is_one_complete_event(name: str) -> None:
    """Exactly one event, with the facts its exit established. Fails if an exit wrote no event or two,
    recorded the wrong decision, lost the key id, the guard states, the upstream status, the token
    counts, the latencies, or a digest that is not the one of the bytes the caller received."""
    c = CASES[name]
    gw, a, raw = _run_case(c)
    assert a.status == c.http, a.body[:300]
    # the limiter's own outage event (actor system, documented) is not the call's
    system = [e for e in gw.events() if e.actor == "system"]
    assert [e.tag for e in system] == (
        [EventTag.GATEWAY_LIMITER_UNAVAILABLE] if name == "limiter-down-503" else []
    )
    calls = [e for e in gw.events() if e.actor != "system"]
    assert len(calls) == 1, [(e.tag, e.outcome) for e in calls]
    ev = calls[0]
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["decision"], at["status"]) == (c.tag, c.outcome, c.outcome, c.status)
    assert at["route"] == "chat" and at["stream"] is c.stream
    assert isinstance(at["reasons"], list) and isinstance(at["latency_us"], int) and at["latency_us"] > 0
    if (c.status >= 400 and c.status not in (400, 413, 422)) or c.tag is B:
        # (validation errors keep their message out of the event: it may quote the request)
        assert at["reasons"], "a refused, blocked or failed call says why"
    if c.key == "nobody":
        assert ev.actor == "anonymous" and "key_id" not in at
    else:
        assert ev.actor == "alice" and at["key_id"] == f"kid-{c.key}" and at["team"] == "blue"
    if c.body_read and c.raw is None and c.model in MODELS:
        assert at["model"] == c.model and ev.target == c.model
    if c.body_read:
        assert at["prompt_sha256"] == hashlib.sha256(raw).hexdigest()
    else:
        assert "prompt_sha256" not in at
    if c.guards is not None:
        assert (at["guards"]["input"], at["guards"]["output"]) == c.guards
    assert at.get("upstream_status") == c.upstream_status
    if c.tokens:
        assert at["tokens"]["prompt"] + at["tokens"]["completion"] > 0
    if c.upstream_status is not None and not c.stream:
        assert isinstance(at["upstream_latency_us"], int)
    if c.stream and c.upstream_status == 200:
        assert isinstance(at["upstream_ttfb_us"], int)
    if c.digest:
        assert at["response_sha256"] == _received_digest(a, c.stream)
    else:
        assert "response_sha256" not in at
    assert MARK not in orjson.dumps(dict(ev.attributes)).decode()


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_a_ledger_that_fails_withholds_the_answer_and_writes_nothing_else(stream: bool) -> None:
    """The one write was tried (and failed): the unary caller gets 503 audit_unavailable, the stream
    ends with that error instead of [DONE]. Fails if a failed write were retried as a second event,
    ignored (a 200 / [DONE] without a durable event), or never tried."""
    c = CASES["ok-stream" if stream else "ok-unary"]
    gw, a, _ = _run_case(c, audit_fails=True)
    assert gw.audit.attempts == 1 and gw.events() == []
    if stream:
        assert not a.done()
        err = a.error_event()
        assert err is not None and err["error"]["code"] == "audit_unavailable"
    else:
        assert a.status == 503 and a.json()["error"]["code"] == "audit_unavailable"


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream-opening"])
def test_a_call_cancelled_while_waiting_for_the_provider_still_gets_its_event(stream: bool) -> None:
    up = ScriptedUpstream(unary_hangs=not stream, opening_hangs=stream)
    gw = build(settings(guards=GUARDS, models=MODELS), up)
    a = run(gw, body_of(stream=stream), cancel_when=up.hanging)
    assert a.cancelled
    ev = gw.one_event()
    assert ev.tag is EventTag.GATEWAY_REQUEST_FAILED and ev.outcome == "cancelled"
    assert attrs(ev)["status"] == 499


def test_a_failed_call_is_never_recorded_as_denied() -> None:
    gw = build(settings(guards=GUARDS, models=MODELS))
    gw.auth.store_down = True
    a = run(gw, body_of())
    assert a.status == 503
    ev = gw.one_event()
    assert ev.tag is EventTag.GATEWAY_REQUEST_FAILED
    assert ev.outcome == "error"


def test_the_response_digest_is_of_the_redacted_bytes_the_caller_got() -> None:
    """A redacted unary answer: the digest is the one of the rewritten body, not of the provider's.
    Fails if the digest were taken before redaction (it would prove a response nobody received)."""
    reply = chat_reply(f"key {AWS}")
    gw, a, _ = _run_case(Case(C, "allowed", 200, 200, _up(reply=UpstreamReply(200, reply))))
    digest = attrs(gw.one_event())["response_sha256"]
    assert digest == hashlib.sha256(a.body).hexdigest() != hashlib.sha256(reply).hexdigest()
    assert AWS not in a.body.decode()


def test_the_stream_digest_covers_the_usage_chunk_only_when_it_was_relayed() -> None:
    """With include_usage the usage chunk reaches the caller and is in the digest; without it, it is
    neither sent nor digested. Fails if the digest covered a chunk the caller never got."""
    for want in (True, False):
        payload = body_of(stream=True)
        if want:
            payload["stream_options"] = {"include_usage": True}
        gw = build(settings(guards=GUARDS, models=MODELS), ScriptedUpstream(events=ok_stream))
        a = run(gw, payload)
        assert any(b'"usage"' in p for p in a.payloads()) is want
        assert attrs(gw.one_event())["response_sha256"] == a.stream_sha256()


class _Vault:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    async def record(
        self, auth: Authentication, call_id: str, prompt: str, response: str | None
    ) -> Mapping[str, JSONValue]:
        self.calls.append((prompt, response))
        return {"content_recorded": True, "prompt_ct_sha256": "0" * 64}


@pytest.mark.parametrize("content", [False, True], ids=["content-off", "content-on"])
@pytest.mark.parametrize("name", ["ok-unary", "redacted-stream", "output-block-unary", "input-block"])
def test_no_prompt_or_response_content_is_ever_in_the_event(name: str, content: bool) -> None:
    """A prompt with a marker and a secret, answers with a secret: neither is in the event (with
    content recording on they go to the vault, sealed; the event only gets its digests). Fails if
    findings, reasons or error messages carried matched text, or the recorder's input leaked into the
    event."""
    c = CASES[name]
    vault = _Vault()
    components: dict[str, Any] = {"content": vault} if content else {}
    gw = build(settings(guards=GUARDS, models=MODELS), c.up(), **components)
    prompt = c.prompt.replace(MARK, f"{MARK} my key is {AWS}")
    a = run(gw, body_of([{"role": "user", "content": prompt}], stream=c.stream))
    assert a.status == c.http
    ev = gw.one_event()
    text = orjson.dumps({"a": dict(ev.attributes), "actor": ev.actor, "target": ev.target}).decode()
    for secret in (MARK, AWS, AWS[:12], DENY, "zeus", "lorem"):
        assert secret not in text, secret
    if content:
        assert vault.calls and MARK in vault.calls[0][0]
        assert ev.attributes["content_recorded"] is True and "call_id" in ev.attributes
    else:
        assert "content_recorded" not in ev.attributes and "call_id" not in ev.attributes


def _kinds(events: list[AuditEvent]) -> list[tuple[str, str]]:
    return [(e.tag.value, e.outcome) for e in events]


def test_many_calls_of_every_kind_are_one_event_each() -> None:
    """All the exits above, one after another on one gateway, twice: as many events as calls, in
    order. Fails if any exit wrote a late second event (e.g. a background write after a failure)."""
    expected: list[tuple[str, str]] = []
    answers: list[int] = []

    async def go(gw: Gw) -> None:
        for _ in range(2):
            for c in CASES.values():
                if c.limits or c.how or c.server:
                    continue
                gw.app.gateway.upstreams["demo"] = c.up()
                a = await acall(gw.app, _payload(c), key=c.key)
                answers.append(a.status)
                expected.append((c.tag.value, c.outcome))

    gw = build(settings(guards=GUARDS, models=MODELS))

    async def main() -> None:
        try:
            await asyncio.wait_for(go(gw), 10)
        finally:
            await gw.app.gateway.drain()

    asyncio.run(main())
    assert _kinds(gw.events()) == expected
