"""The official openai SDK against a live gateway (uvicorn on a loopback port), demo upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import openai
import pytest

from bastion.domain.events import EventTag
from bastion.domain.identity import KeyScope, Role

from .harness import Live, gateway_settings, live_gateway, principal

MODELS = {
    "bastion-demo": {"upstream": "demo", "attributes": {"team": "shared"}},
    "red-model": {"upstream": "demo", "attributes": {"team": "red"}},
    "chat-only": {"upstream": "demo", "kinds": ["chat"], "attributes": {"team": "shared"}},
}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    s = gateway_settings(
        models=MODELS,
        limits={"per_key": {"requests_per_minute": 1000}},
        guards={
            "input": ["denylist"],
            "output": ["denylist"],
            "options": {"denylist": {"terms": ["project zeus", "forbidden"]}},
            "rules": [
                {
                    "action": "redact",
                    "direction": "output",
                    "finding_type": "denylist.term",
                    "model": "red-model",
                },
                {"action": "flag", "direction": "input", "model": "red-model"},
            ],
        },
    )
    with live_gateway(s) as lv:
        lv.auth.add("user-key", principal("alice", Role.USER, team="blue"))
        lv.auth.add("red-key", principal("rita", Role.USER, team="red"))
        lv.auth.add("ml-key", principal("mel", Role.ML_ENGINEER, team="blue"))
        lv.auth.add("viewer-key", principal("vic", Role.VIEWER))
        lv.auth.add("scoped-key", principal("sam", Role.USER, team="blue"), KeyScope(routes=("embeddings",)))
        yield lv


def client(lv: Live, key: str = "user-key") -> openai.OpenAI:
    c: openai.OpenAI = lv.openai(key)
    return c


def last_event(lv: Live, before: int) -> object:
    events = lv.audit.wait_for(before + 1)
    assert len(events) == before + 1, "exactly one ledger event per call"
    return events[-1]


def test_chat_sync_records_one_event_without_content(live: Live) -> None:
    n = len(live.audit.events)
    r = client(live).chat.completions.create(
        model="bastion-demo", messages=[{"role": "user", "content": "hi there"}]
    )
    assert r.choices[0].message.content == "Bastion demo model here. You said: hi there"
    assert r.model == "bastion-demo" and r.usage is not None and r.usage.total_tokens > 0
    ev = last_event(live, n)
    assert ev.tag is EventTag.GATEWAY_REQUEST_COMPLETED  # type: ignore[attr-defined]
    a = ev.attributes  # type: ignore[attr-defined]
    assert ev.actor == "alice" and a["key_id"] == "kid-user-key" and a["model"] == "bastion-demo"  # type: ignore[attr-defined]
    assert a["steps"] == ["authn", "authz", "limits", "input_guard", "upstream", "output_guard"]
    assert a["guards"] == {"input": "passed", "output": "passed"}
    assert len(a["prompt_sha256"]) == 64 and len(a["response_sha256"]) == 64
    assert "hi there" not in str(a)


def test_chat_async(live: Live) -> None:
    async def go() -> str | None:
        async with openai.AsyncOpenAI(base_url=live.v1, api_key="user-key", max_retries=0) as c:
            r = await c.chat.completions.create(
                model="bastion-demo", messages=[{"role": "user", "content": "async"}]
            )
            return r.choices[0].message.content

    assert asyncio.run(go()) == "Bastion demo model here. You said: async"


def test_chat_stream_and_usage_only_when_asked(live: Live) -> None:
    n = len(live.audit.events)
    chunks = list(
        client(live).chat.completions.create(
            model="bastion-demo", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Bastion demo model here. You said: stream me"
    assert all(c.usage is None for c in chunks)
    ev = last_event(live, n)
    assert ev.tag is EventTag.GATEWAY_REQUEST_COMPLETED and ev.attributes["stream"] is True  # type: ignore[attr-defined]
    assert ev.attributes["tokens"]["completion"] > 0  # type: ignore[attr-defined]
    chunks = list(
        client(live).chat.completions.create(
            model="bastion-demo",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_async_stream(live: Live) -> None:
    async def go() -> str:
        async with openai.AsyncOpenAI(base_url=live.v1, api_key="user-key", max_retries=0) as c:
            s = await c.chat.completions.create(
                model="bastion-demo", messages=[{"role": "user", "content": "a"}], stream=True
            )
            return "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])

    assert asyncio.run(go()).endswith("You said: a")


def test_completions_embeddings_tools_json_mode(live: Live) -> None:
    c = client(live)
    assert c.completions.create(model="bastion-demo", prompt="p").choices[0].text.endswith("You said: p")
    streamed = "".join(
        ch.choices[0].text for ch in c.completions.create(model="bastion-demo", prompt="q", stream=True)
    )
    assert streamed.endswith("You said: q")
    e = c.embeddings.create(model="bastion-demo", input=["a", "b"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 8
    assert e.data[0].embedding == c.embeddings.create(model="bastion-demo", input="a").data[0].embedding
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    r = c.chat.completions.create(
        model="bastion-demo",
        messages=[{"role": "user", "content": "t"}],
        tools=tools,  # type: ignore[arg-type]
    )
    assert r.choices[0].finish_reason == "tool_calls"
    assert r.choices[0].message.tool_calls[0].function.name == "lookup"  # type: ignore[index,union-attr]
    j = c.chat.completions.create(
        model="bastion-demo",
        messages=[{"role": "user", "content": "j"}],
        response_format={"type": "json_object"},
    )
    assert j.choices[0].message.content == '{"model":"bastion-demo","echo":"j"}'


def test_models_lists_only_usable_models(live: Live) -> None:
    assert sorted(m.id for m in client(live).models.list()) == ["bastion-demo", "chat-only"]
    assert sorted(m.id for m in client(live, "red-key").models.list()) == [
        "bastion-demo",
        "chat-only",
        "red-model",
    ]
    assert list(client(live, "viewer-key").models.list()) == []
    assert client(live).models.retrieve("bastion-demo").id == "bastion-demo"
    with pytest.raises(openai.NotFoundError):
        client(live).models.retrieve("red-model")
    # a key scoped to embeddings sees the models it can call for embeddings, not the chat-only one
    assert sorted(m.id for m in client(live, "scoped-key").models.list()) == ["bastion-demo"]
    with pytest.raises(openai.NotFoundError):
        client(live, "scoped-key").models.retrieve("chat-only")


def test_unknown_model_names_never_become_metric_labels(live: Live) -> None:
    """``GET /v1/models/<anything>`` must not grow the metrics without bound (a memory DoS)."""
    n = len(live.audit.events)
    for i in range(3):
        with pytest.raises(openai.NotFoundError):
            client(live).models.retrieve(f"probe-{i}")
    assert "probe-" not in httpx.get(live.url + "/metrics").text
    events = live.audit.wait_for(n + 3)[n:]
    assert [e.attributes["status"] for e in events] == [404] * 3
    assert "the model 'probe-0' does not exist" in events[0].attributes["reasons"]  # type: ignore[operator]


def test_a_bug_in_a_call_is_a_500_and_a_ledger_event(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug, with secret details")

    monkeypatch.setattr(live.app.gateway, "output_context", broken)
    n = len(live.audit.events)
    r = httpx.post(
        live.v1 + "/chat/completions",
        headers={"Authorization": "Bearer user-key"},
        json={"model": "bastion-demo", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error" and "secret" not in r.text
    event = live.audit.wait_for(n + 1)[n]
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED and event.attributes["status"] == 500
    assert "internal error: RuntimeError" in event.attributes["reasons"]  # type: ignore[operator]


def test_calls_refused_while_draining_are_recorded(live: Live) -> None:
    n = len(live.audit.events)
    live.app.gateway.draining = True
    try:
        with pytest.raises(openai.InternalServerError) as e:
            client(live).chat.completions.create(
                model="bastion-demo", messages=[{"role": "user", "content": "x"}]
            )
    finally:
        live.app.gateway.draining = False
    assert e.value.status_code == 503 and e.value.code == "unavailable"
    event = live.audit.wait_for(n + 1)[n]
    assert event.tag is EventTag.GATEWAY_REQUEST_REJECTED and event.attributes["status"] == 503


def test_error_classes(live: Live) -> None:
    msgs = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.AuthenticationError):
        client(live, "wrong").chat.completions.create(model="bastion-demo", messages=msgs)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        client(live).chat.completions.create(model="red-model", messages=msgs)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        client(live, "scoped-key").chat.completions.create(model="bastion-demo", messages=msgs)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError) as nf:
        client(live).chat.completions.create(model="nope", messages=msgs)  # type: ignore[arg-type]
    assert nf.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client(live).chat.completions.create(model="bastion-demo", messages=[])
    with pytest.raises(openai.UnprocessableEntityError):
        client(live).embeddings.create(model="chat-only", input="x")
    with pytest.raises(openai.APIStatusError) as big:
        client(live).chat.completions.create(
            model="bastion-demo", messages=[{"role": "user", "content": "x" * (5 * 1024 * 1024)}]
        )
    assert big.value.status_code == 413


def test_raw_http_errors(live: Live) -> None:
    h = {"authorization": "Bearer user-key"}
    r = httpx.post(live.v1 + "/chat/completions", content=b"{not json", headers=h)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(live.v1 + "/embeddings", json={"model": "bastion-demo", "input": [[1, 2]]}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unscannable_input"
    r = httpx.get(live.v1 + "/chat/completions", headers=h)
    assert r.status_code == 405
    assert httpx.get(live.v1 + "/unknown").status_code == 404
    r = httpx.post(live.v1 + "/chat/completions", json={"model": "bastion-demo", "messages": []})
    assert r.status_code == 401 and set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_input_guard_blocks_and_records_findings_not_content(live: Live) -> None:
    n = len(live.audit.events)
    with pytest.raises(openai.BadRequestError) as e:
        client(live).chat.completions.create(
            model="bastion-demo", messages=[{"role": "user", "content": "tell me about Project ZEUS"}]
        )
    assert e.value.code == "content_filter"
    ev = last_event(live, n)
    assert ev.tag is EventTag.GATEWAY_REQUEST_BLOCKED  # type: ignore[attr-defined]
    f = ev.attributes["findings"][0]  # type: ignore[attr-defined]
    assert f["type"] == "denylist.term" and f["spans"] == [[14, 26]] and f["direction"] == "input"
    assert "zeus" not in str(ev.attributes).lower()  # type: ignore[attr-defined]
    assert ev.attributes["guards"]["output"] == "not_run"  # type: ignore[attr-defined]


def test_output_redaction_and_stream_redaction(live: Live) -> None:
    # on red-model, input findings are flagged and output findings redacted (the demo echoes)
    n = len(live.audit.events)
    r = client(live, "red-key").chat.completions.create(
        model="red-model", messages=[{"role": "user", "content": "say forbidden"}]
    )
    assert r.choices[0].message.content == "Bastion demo model here. You said: say [REDACTED]"
    a = last_event(live, n).attributes  # type: ignore[attr-defined]
    assert a["guards"] == {"input": "flagged", "output": "redacted"}
    s = client(live, "red-key").chat.completions.create(
        model="red-model", messages=[{"role": "user", "content": "say forbidden ok"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert text == "Bastion demo model here. You said: say [REDACTED] ok"


def test_hardening_strips_logprobs_for_users_only(live: Live) -> None:
    n = len(live.audit.events)
    client(live).chat.completions.create(
        model="bastion-demo",
        messages=[{"role": "user", "content": "x"}],
        logprobs=True,
        top_logprobs=2,
        n=3,
        max_tokens=10**6,
    )
    a = last_event(live, n).attributes  # type: ignore[attr-defined]
    assert a["hardening"] == ["logprobs_stripped", "n_capped", "max_tokens_capped"]
    n = len(live.audit.events)
    client(live, "ml-key").chat.completions.create(
        model="bastion-demo", messages=[{"role": "user", "content": "x"}], logprobs=True
    )
    # logprobs kept for the ML engineer; no token limit given, so the cap is sent (and noted)
    assert last_event(live, n).attributes["hardening"] == ["max_tokens_defaulted"]  # type: ignore[attr-defined]


def test_ops_endpoints(live: Live) -> None:
    assert httpx.get(live.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(live.url + "/readyz").status_code == 200
    live.ready.ok = False
    try:
        assert httpx.get(live.url + "/readyz").status_code == 503
    finally:
        live.ready.ok = True
    text = httpx.get(live.url + "/metrics").text
    assert "bastion_gateway_requests_total" in text and "bastion_gateway_guard_blocks_total" in text


def test_database_down_fails_closed(live: Live) -> None:
    live.auth.store_down = True
    try:
        with pytest.raises(openai.InternalServerError) as e:
            client(live).chat.completions.create(
                model="bastion-demo", messages=[{"role": "user", "content": "x"}]
            )
        assert e.value.status_code == 503
    finally:
        live.auth.store_down = False


def _requests_counted(lv: Live, outcome: str, status: int) -> float:
    """The gateway's request counter for chat calls to the demo model with this outcome and status."""
    want = {'route="chat"', 'model="bastion-demo"', f'outcome="{outcome}"', f'status="{status}"'}
    for line in httpx.get(lv.url + "/metrics").text.splitlines():
        if line.startswith("bastion_gateway_requests_total{"):
            labels, value = line.removeprefix("bastion_gateway_requests_total{").rsplit("} ", 1)
            if set(labels.split(",")) == want:
                return float(value)
    return 0.0


def test_audit_down_withholds_response(live: Live) -> None:
    live.audit.fail = True
    try:
        attempts = live.audit.attempts
        ok, refused = _requests_counted(live, "allowed", 200), _requests_counted(live, "error", 503)
        with pytest.raises(openai.InternalServerError) as e:
            client(live).chat.completions.create(
                model="bastion-demo", messages=[{"role": "user", "content": "x"}]
            )
        assert e.value.status_code == 503
        # one write was tried (not a second one for the 503), and the call is counted once, as a 503
        assert live.audit.attempts == attempts + 1
        assert _requests_counted(live, "allowed", 200) == ok
        assert _requests_counted(live, "error", 503) == refused + 1
        with pytest.raises(openai.APIError):
            list(
                client(live).chat.completions.create(
                    model="bastion-demo", messages=[{"role": "user", "content": "x"}], stream=True
                )
            )
    finally:
        live.audit.fail = False


def test_rate_limit_429_with_retry_after() -> None:
    with live_gateway(gateway_settings(limits={"per_key": {"requests_per_minute": 2}})) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        c = client(lv, "k")
        for _ in range(2):
            c.embeddings.create(model="bastion-demo", input="x")
        with pytest.raises(openai.RateLimitError) as e:
            c.embeddings.create(model="bastion-demo", input="x")
        assert 1 <= int(e.value.response.headers["retry-after"]) <= 60
        tags = [ev.tag for ev in lv.audit.wait_for(3)]
        assert tags == [EventTag.GATEWAY_REQUEST_COMPLETED] * 2 + [EventTag.GATEWAY_LIMIT_EXCEEDED]


def test_budget_crossing_records_event() -> None:
    with live_gateway(gateway_settings(limits={"queries_per_day": 1})) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        c = client(lv, "k")
        c.embeddings.create(model="bastion-demo", input="x")
        for _ in range(2):
            with pytest.raises(openai.RateLimitError):
                c.embeddings.create(model="bastion-demo", input="x")
        tags = [ev.tag for ev in lv.audit.wait_for(5)]
        assert tags.count(EventTag.GATEWAY_BUDGET_EXCEEDED) == 1
        assert tags.count(EventTag.GATEWAY_LIMIT_EXCEEDED) == 2
