"""Review 6: the ONE ledger event of the exits added since review 3 (docs/gateway.md, "ledger").

The request fields refused today (a literal ``extra_body``, a ``suffix`` that is not text, an invalid
``best_of``), a batch asking more of the daily query budget than is left (429, ``x-should-retry:
false``), a call that finds every pooled upstream connection busy (503), answers whose text is in a
shape the output guards do not read (502, unary and streamed), the upstream's other failures
(timeout, garbage, relayed refusals), an input guard that redacts or cannot scan, the less-travelled
routes' successes, and every refusal while content recording is failing. For each: exactly one
event; its tag, decision and status are what the caller got; guard states are honest (a guard that
did not see the answer is never ``passed``); token counts and digests where an answer was produced;
no content in the event.

Each test asserts the correct behaviour; the defects it found are fixed and these are their regression tests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from bastion.config import UpstreamSettings
from bastion.domain.events import AuditEvent, EventTag
from bastion.errors import UpstreamError
from bastion.gateway.upstream import HttpUpstream, UpstreamReply

from .harness import BadUpstream
from .test_gateway_review3_ledger import _Vault
from .test_gateway_review3_support import (
    Answer,
    Gw,
    ScriptedUpstream,
    acall,
    attrs,
    body_of,
    build,
    chat_reply,
    completion_chunk,
    run_session,
    usage_chunk,
)
from .test_gateway_review5_surface import (
    DENY,
    EMBEDDING_REPLY,
    USAGE,
    _chat_chunk,
    cfg,
    chat_answer,
    completion_reply,
    completions,
    embeddings,
    reply,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
AWS = "AKIAQWERTYUIOPASDFGH"
MARK = "prompt-marker-5d1e"  # a piece of the request no event may hold
F, B, C, R, L = (
    EventTag.GATEWAY_REQUEST_FAILED,
    EventTag.GATEWAY_REQUEST_BLOCKED,
    EventTag.GATEWAY_REQUEST_COMPLETED,
    EventTag.GATEWAY_REQUEST_REJECTED,
    EventTag.GATEWAY_LIMIT_EXCEEDED,
)


def _text(ev: AuditEvent) -> str:
    return orjson.dumps({"a": dict(ev.attributes), "actor": ev.actor, "target": ev.target}).decode()


def _guards(ev: AuditEvent) -> tuple[str, str]:
    g = attrs(ev)["guards"]
    return g["input"], g["output"]


def _call(gw: Gw, payload: dict[str, Any] | bytes, path: str = CHAT) -> Answer:
    async def go(gw: Gw) -> Answer:
        return await acall(gw.app, payload, path=path)

    return run_session(gw, go)


# == the request fields refused today ===============================================================


@pytest.mark.parametrize(
    ("path", "payload", "param"),
    [
        (CHAT, body_of(extra_body={"n": 9, "note": MARK}), "extra_body"),
        (COMPLETIONS, completions(f"hi {MARK}", extra_body={"best_of": 9}), "extra_body"),
        (COMPLETIONS, completions(f"hi {MARK}", suffix=[MARK]), "suffix"),
        (COMPLETIONS, completions(f"hi {MARK}", suffix={"text": MARK}), "suffix"),
        (COMPLETIONS, completions(f"hi {MARK}", best_of=0), "best_of"),
        (COMPLETIONS, completions(f"hi {MARK}", best_of="2"), "best_of"),
        (COMPLETIONS, completions(f"hi {MARK}", best_of=2.0), "best_of"),
    ],
)
def test_a_refused_request_field_is_one_rejected_event_before_any_guard_or_upstream(
    path: str, payload: dict[str, Any], param: str
) -> None:
    gw = build(cfg())
    raw = orjson.dumps(payload)
    a = _call(gw, raw, path)
    assert a.status == 400 and a.json()["error"]["param"] == param
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["decision"], at["status"]) == (R, "denied", "denied", 400)
    assert ev.actor == "alice" and at["key_id"] == "kid-alice-key"
    assert at["steps"] == ["authn"]
    assert _guards(ev) == ("not_run", "not_run")  # refused before the guards: never "passed"
    assert at["prompt_sha256"] == hashlib.sha256(raw).hexdigest()
    for absent in ("tokens", "response_sha256", "upstream_status", "upstream_latency_us"):
        assert absent not in at
    assert gw.up.bodies == []
    assert MARK not in _text(ev)


# == the daily query budget =========================================================================


def test_a_batch_asking_more_than_the_budget_left_is_one_limited_event_and_no_crossing() -> None:
    """6 queries (3 prompts x n=2) against 5 left: a 429 telling the SDK not to retry, recorded as
    limited with its reason; not a crossing of the budget (nothing was spent)."""
    gw = build(cfg(max_n=2, limits={"per_key": {}, "queries_per_day": 5}))
    a = _call(gw, completions(["a", "b", MARK], n=2), COMPLETIONS)
    assert a.status == 429 and a.headers[b"x-should-retry"] == b"false"
    ev = gw.one_event()  # no gateway:budget:exceeded beside it
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"]) == (L, "limited", 429)
    assert at["reasons"] == [a.json()["error"]["message"]]
    assert at["steps"] == ["authn", "authz"]
    assert _guards(ev) == ("not_run", "not_run")
    assert at["model"] == "m" and "tokens" not in at and gw.up.bodies == []
    assert MARK not in _text(ev)


# == upstream failures ==============================================================================


@pytest.fixture(scope="module")
def bad() -> Iterator[BadUpstream]:
    b = BadUpstream()
    with b:
        yield b


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_a_call_that_finds_every_pooled_connection_busy_is_one_failed_503_event(
    bad: BadUpstream, stream: bool
) -> None:
    """The only connection is held by a long stream: the call never reaches the provider. One failed
    event, status 503 as answered, no upstream status (the provider said nothing), output not run."""
    up_cfg = UpstreamSettings(
        base_url=bad.base("slowstream"),
        max_connections=1,
        total_timeout_s=0.2,
        timeout_s=0.3,
        connect_timeout_s=0.1,
        max_retries=0,
    )
    gw = build(cfg())

    async def go(gw: Gw) -> Answer:
        up = HttpUpstream("demo", up_cfg)
        gw.app.gateway.upstreams["demo"] = up
        held = await up.open_stream("/chat/completions", b"{}")
        try:
            assert await held.next_batch()  # type: ignore[attr-defined]
            return await acall(gw.app, body_of(stream=stream))
        finally:
            await held.aclose()

    a = run_session(gw, go)
    assert a.status == 503 and a.json()["error"]["code"] == "upstream_error"
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"]) == (F, "error", 503)
    assert _guards(ev) == ("passed", "not_run")
    assert "upstream_status" not in at and "response_sha256" not in at and "tokens" not in at
    assert any("busy" in r for r in at["reasons"])
    assert at["stream"] is stream


_UNREADABLE_UNARY = {
    # not a chat or completions answer at all: no choices (a provider's native format), or choices
    # that are not objects, or a chat choice without a message (text in fields of any other shape
    # is scanned wherever it is: test_gateway_review6_shapes)
    "no-choices": (CHAT, reply({"id": "x", "content": f"no: {DENY}", "usage": USAGE})),
    "choice-not-an-object": (CHAT, reply({"id": "x", "choices": [f"no: {DENY}"], "usage": USAGE})),
    "completions-no-choices": (COMPLETIONS, reply({"id": "x", "text": DENY, "usage": USAGE})),
}


def _payload_for(path: str, stream: bool = False) -> dict[str, Any]:
    return body_of(stream=stream) if path == CHAT else completions(stream=stream)


@pytest.mark.parametrize("name", list(_UNREADABLE_UNARY))
def test_a_unary_answer_refused_as_unreadable_is_one_failed_event_with_the_output_guard_not_run(
    name: str,
) -> None:
    path, up_reply = _UNREADABLE_UNARY[name]
    gw = build(cfg(), ScriptedUpstream(reply=up_reply))
    a = _call(gw, _payload_for(path), path)
    assert a.status == 502 and DENY not in a.body.decode()
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"], at["upstream_status"]) == (F, "error", 502, 200)
    assert _guards(ev) == ("passed", "not_run")  # it never saw the answer
    assert "response_sha256" not in at  # the caller got no answer
    assert isinstance(at["upstream_latency_us"], int)
    assert DENY not in _text(ev)


@pytest.mark.parametrize("name", list(_UNREADABLE_UNARY))
def test_a_unary_answer_refused_as_unreadable_still_records_the_tokens_the_provider_billed(
    name: str,
) -> None:
    path, up_reply = _UNREADABLE_UNARY[name]
    gw = build(cfg(), ScriptedUpstream(reply=up_reply))
    assert _call(gw, _payload_for(path), path).status == 502
    at = attrs(gw.one_event())
    assert at.get("tokens") == {"prompt": USAGE["prompt_tokens"], "completion": USAGE["completion_tokens"]}


_START = _chat_chunk({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None})
_UNREADABLE_CHUNK = _chat_chunk(
    {"index": 0, "delta": {"content": [f"the plan is {DENY}"]}, "finish_reason": None}
)
_REFUSED_STREAMS: dict[str, list[bytes]] = {
    "unreadable-first": [_UNREADABLE_CHUNK, usage_chunk(3, 1), b"[DONE]"],
    "unreadable-after-start": [_START, _UNREADABLE_CHUNK, usage_chunk(3, 1), b"[DONE]"],
    "provider-error-first": [b'{"error": {"message": "overloaded"}}', b"[DONE]"],
}


@pytest.mark.parametrize("name", list(_REFUSED_STREAMS))
def test_a_stream_refused_mid_way_is_one_failed_event_with_the_status_the_caller_saw(name: str) -> None:
    """Before its first byte the caller gets a 502 answer; after it, a 200 ending in the error event.
    Either way one failed event of status 502, tokens counted (the provider was asked for them)."""
    gw = build(cfg(), ScriptedUpstream(events=_REFUSED_STREAMS[name]))
    a = _call(gw, body_of(stream=True))
    started = name == "unreadable-after-start"
    assert a.status == (200 if started else 502)
    if started:
        err = a.error_event()
        assert err is not None and err["error"]["code"] == "upstream_error" and not a.done()
    assert DENY not in a.body.decode()
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"], at["upstream_status"]) == (F, "error", 502, 200)
    assert at["guards"]["input"] == "passed" and at["reasons"]
    assert at["tokens"]["prompt"] > 0
    if started:
        assert at["response_sha256"] == a.stream_sha256()
    assert DENY not in _text(ev)


@pytest.mark.parametrize("name", list(_REFUSED_STREAMS))
def test_an_output_guard_that_did_not_see_the_streamed_answer_is_not_recorded_as_passed(name: str) -> None:
    gw = build(cfg(), ScriptedUpstream(events=_REFUSED_STREAMS[name]))
    _call(gw, body_of(stream=True))
    assert attrs(gw.one_event())["guards"]["output"] in ("not_run", "incomplete")


def test_a_stream_refused_before_its_first_byte_records_no_response_digest() -> None:
    gw = build(cfg(), ScriptedUpstream(events=_REFUSED_STREAMS["unreadable-first"]))
    assert _call(gw, body_of(stream=True)).status == 502
    assert "response_sha256" not in attrs(gw.one_event())


_UPSTREAM_FAILS: dict[str, tuple[dict[str, Any], bool, int, int | None]] = {
    # name: (ScriptedUpstream kwargs, stream, the caller's status, the upstream status recorded)
    "timeout-unary": ({"raises": UpstreamError("upstream 'demo' timed out", status=504)}, False, 504, None),
    "timeout-stream": ({"raises": UpstreamError("upstream 'demo' timed out", status=504)}, True, 504, None),
    "garbage-unary": ({"reply": UpstreamReply(200, b"not json!")}, False, 502, 200),
    "json-not-object-unary": ({"reply": UpstreamReply(200, b"[1, 2]")}, False, 502, 200),
    "provider-429-unary": (
        {"reply": UpstreamReply(429, b'{"error":{"message":"slow down"}}', "7")},
        False,
        429,
        429,
    ),
    "provider-429-stream": (
        {"stream_status": UpstreamReply(429, b'{"error":{"message":"slow down"}}', "7")},
        True,
        429,
        429,
    ),
    "provider-400-unary": (
        {"reply": UpstreamReply(400, orjson.dumps({"error": {"message": f"bad {MARK}"}}))},
        False,
        400,
        400,
    ),
    "provider-404-unary": ({"reply": UpstreamReply(404, b"{}")}, False, 502, 404),
}


@pytest.mark.parametrize("name", list(_UPSTREAM_FAILS))
def test_each_upstream_failure_is_one_failed_event_of_the_status_answered(name: str) -> None:
    kw, stream, status, up_status = _UPSTREAM_FAILS[name]
    gw = build(cfg(), ScriptedUpstream(**kw))
    a = _call(gw, body_of(stream=stream))
    assert a.status == status
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"]) == (F, "error", status)
    assert at.get("upstream_status") == up_status
    assert _guards(ev) == ("passed", "not_run")
    assert "response_sha256" not in at and "tokens" not in at
    if status == 429:
        assert a.headers[b"retry-after"] == b"7"
    if status not in (400, 413, 422):
        assert at["reasons"]
    assert MARK not in _text(ev)  # a relayed 400 may quote the request: its message stays out


# == input guards ===================================================================================


def test_an_input_guard_that_redacts_is_recorded_as_redacted_with_its_finding_but_not_the_secret() -> None:
    guards = {"input": ["secrets"], "output": ["denylist"], "options": {"denylist": {"terms": [DENY]}}}
    gw = build(cfg(guards=guards))
    raw = orjson.dumps(body_of([{"role": "user", "content": f"{MARK} my key is {AWS}"}]))
    a = _call(gw, raw)
    assert a.status == 200
    assert AWS not in orjson.dumps(gw.up.bodies[-1]).decode()
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"]) == (C, "allowed", 200)
    assert _guards(ev) == ("redacted", "passed")
    assert [f["direction"] for f in at["findings"]] == ["input"]
    assert at["prompt_sha256"] == hashlib.sha256(raw).hexdigest()  # of what the caller sent
    assert at["response_sha256"] == hashlib.sha256(a.body).hexdigest()
    for secret in (AWS, AWS[:12], MARK):
        assert secret not in _text(ev)


def test_a_prompt_too_long_to_scan_is_one_413_with_the_input_guard_not_run() -> None:
    guards = {"input": ["denylist"], "options": {"denylist": {"terms": [DENY]}}, "max_scan_chars": 1024}
    gw = build(cfg(guards=guards))
    a = _call(gw, body_of([{"role": "user", "content": MARK + "x" * 2000}]))
    assert a.status == 413
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"]) == (R, "denied", 413)
    assert _guards(ev) == ("not_run", "not_run")
    assert "input_guard" not in at["steps"] and gw.up.bodies == []
    assert MARK not in _text(ev)


# == the less-travelled routes' successes ===========================================================


@pytest.mark.parametrize(
    ("path", "payload", "up", "output"),
    [
        (COMPLETIONS, completions(), ScriptedUpstream(reply=completion_reply()), "passed"),
        (EMBEDDINGS, embeddings(), ScriptedUpstream(reply=EMBEDDING_REPLY), "not_configured"),
        (
            COMPLETIONS,
            completions(stream=True),
            ScriptedUpstream(events=[completion_chunk("fine", finish="stop"), usage_chunk(3, 1), b"[DONE]"]),
            "passed",
        ),
        (CHAT, body_of(), ScriptedUpstream(reply=chat_answer({"content": "fine"})), "passed"),
    ],
    ids=["completions", "embeddings", "completions-stream", "chat-renamed"],
)
def test_a_success_on_every_route_records_tokens_and_the_digest_of_what_the_caller_got(
    path: str, payload: dict[str, Any], up: ScriptedUpstream, output: str
) -> None:
    gw = build(cfg(), up)
    raw = orjson.dumps(payload)
    a = _call(gw, raw, path)
    assert a.status == 200
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"], at["upstream_status"]) == (C, "allowed", 200, 200)
    assert at["route"] == {CHAT: "chat", COMPLETIONS: "completions", EMBEDDINGS: "embeddings"}[path]
    assert _guards(ev) == ("passed", output)
    assert at["tokens"]["prompt"] == (2 if path == EMBEDDINGS else USAGE["prompt_tokens"])
    assert "estimated" not in at["tokens"]
    stream = bool(payload.get("stream"))
    got = a.stream_sha256() if stream else hashlib.sha256(a.body).hexdigest()
    assert at["response_sha256"] == got
    assert at["prompt_sha256"] == hashlib.sha256(raw).hexdigest()
    assert b"internal-base-7b" not in a.body  # the provider's model name stays hidden ...
    assert "internal-base-7b" not in _text(ev)  # ... from the ledger too (it names the caller's model)


# == a caller-chosen string in the ledger ===========================================================


def test_an_unknown_model_name_is_not_copied_into_the_ledger() -> None:
    gw = build(cfg())
    a = _call(gw, body_of(model=f"my key is {AWS}"))
    assert a.status == 404
    ev = gw.one_event()
    assert attrs(ev)["status"] == 404
    assert AWS not in _text(ev)


# == content recording failing on a refusal =========================================================


class _FailingVault(_Vault):
    async def record(self, *args: Any) -> Any:
        raise RuntimeError("vault down")


_REFUSALS: dict[str, tuple[dict[str, Any], ScriptedUpstream]] = {
    # name: (payload, upstream)
    "input-block": (body_of([{"role": "user", "content": f"about {DENY}"}]), ScriptedUpstream()),
    "forbidden-model": (body_of(model="red-m"), ScriptedUpstream()),
    "unknown-model": (body_of(model="nope"), ScriptedUpstream()),
    "bad-field": (body_of(extra_body={}), ScriptedUpstream()),
    "upstream-500": (body_of(), ScriptedUpstream(reply=UpstreamReply(500, b"{}"))),
    "output-block": (body_of(), ScriptedUpstream(reply=UpstreamReply(200, chat_reply(f"all {DENY}")))),
    "unreadable": (body_of(), ScriptedUpstream(reply=chat_answer({"content": "ok", "refusal": [DENY]}))),
}


@pytest.mark.parametrize("name", list(_REFUSALS))
def test_a_refusal_whose_content_cannot_be_sealed_records_the_status_the_caller_got(name: str) -> None:
    payload, up = _REFUSALS[name]
    gw = build(cfg(), up, content=_FailingVault())
    a = _call(gw, payload)
    ev = gw.one_event()
    assert attrs(ev)["status"] == a.status
    assert (ev.outcome == "error") is (a.status >= 500)


def test_a_success_whose_content_cannot_be_sealed_is_withheld_and_recorded_as_the_503_it_was() -> None:
    gw = build(cfg(), ScriptedUpstream(reply=chat_answer({"content": "fine"})), content=_FailingVault())
    a = _call(gw, body_of())
    assert a.status == 503 and a.json()["error"]["code"] == "audit_unavailable"
    ev = gw.one_event()
    at = attrs(ev)
    assert (ev.tag, ev.outcome, at["status"]) == (F, "error", 503)
    assert at["content_recorded"] is False and "content recording failed" in at["reasons"]


# == one event per call, across the new exits ======================================================


def test_the_new_exits_one_after_another_are_one_event_each() -> None:
    calls: list[tuple[ScriptedUpstream, dict[str, Any], str]] = [
        (ScriptedUpstream(), body_of(extra_body={}), CHAT),
        (ScriptedUpstream(), completions(suffix=[1]), COMPLETIONS),
        (ScriptedUpstream(), completions(best_of=0), COMPLETIONS),
        (ScriptedUpstream(reply=_UNREADABLE_UNARY["no-choices"][1]), body_of(), CHAT),
        (ScriptedUpstream(events=_REFUSED_STREAMS["unreadable-after-start"]), body_of(stream=True), CHAT),
        (ScriptedUpstream(raises=UpstreamError("busy", status=503)), body_of(), CHAT),
        (ScriptedUpstream(reply=reply({"id": "x", "choices": "nope"})), body_of(), CHAT),
    ]
    gw = build(cfg())

    async def go(gw: Gw) -> list[int]:
        out = []
        for up, payload, path in calls:
            gw.app.gateway.upstreams["demo"] = up
            out.append((await acall(gw.app, payload, path=path)).status)
        return out

    statuses = run_session(gw, go)
    assert statuses == [400, 400, 400, 502, 200, 503, 502]
    evs = gw.events()
    assert [attrs(e)["status"] for e in evs] == [400, 400, 400, 502, 502, 503, 502]
