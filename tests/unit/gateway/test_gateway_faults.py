"""Fault injection: a local misbehaving upstream. Every failure is a prompt OpenAI-style error,
one ledger event per call, no hang."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from bastion.config import UpstreamSettings
from bastion.domain.events import EventTag
from bastion.domain.identity import Role
from bastion.errors import UpstreamError
from bastion.gateway.upstream import CircuitBreaker, HttpUpstream, UpstreamStatusError
from support.net import free_port

from .harness import BadUpstream, Live, gateway_settings, live_gateway, principal

MODES = [
    "ok",
    "fail500",
    "garbage",
    "hang",
    "truncate",
    "drip",
    "slowstream",
    "status400",
    "status401",
    "status429",
]


@pytest.fixture(scope="module")
def bad() -> Iterator[BadUpstream]:
    with BadUpstream() as b:
        yield b


@pytest.fixture(scope="module")
def live(bad: BadUpstream) -> Iterator[Live]:
    common = {"timeout_s": 0.5, "total_timeout_s": 2.0, "connect_timeout_s": 0.5, "breaker_failures": 1000}
    ups = {m: {"base_url": bad.base(m), "api_key": "sk-secret-provider-key", **common} for m in MODES}
    ups["refuse"] = {"base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 2, **common}
    models = {m: {"upstream": m, "attributes": {"team": "shared"}} for m in ups}
    s = gateway_settings(upstreams=ups, models=models, egress_allowlist=["127.0.0.1"])
    with live_gateway(s) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        yield lv


def chat(lv: Live, model: str, *, stream: bool = False) -> Any:
    c = lv.openai("k")
    msgs: Any = [{"role": "user", "content": "hello"}]
    if stream:
        chunks: Any = c.chat.completions.create(model=model, messages=msgs, stream=True)
        return "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    return c.chat.completions.create(model=model, messages=msgs)


def test_provider_key_reaches_upstream_only(live: Live, bad: BadUpstream) -> None:
    r = chat(live, "ok")
    assert r.choices[0].message.content == "fine"
    assert bad.requests[-1][0] == "/ok/v1/chat/completions"


@pytest.mark.parametrize(
    ("model", "exc", "status"),
    [
        ("refuse", openai.InternalServerError, 502),
        ("fail500", openai.InternalServerError, 502),
        ("garbage", openai.InternalServerError, 502),
        ("hang", openai.InternalServerError, 504),
        ("status400", openai.BadRequestError, 400),
        ("status401", openai.InternalServerError, 502),
        ("status429", openai.RateLimitError, 429),
    ],
)
def test_unary_failures(live: Live, model: str, exc: type[openai.APIStatusError], status: int) -> None:
    n = len(live.audit.events)
    t0 = time.monotonic()
    with pytest.raises(exc) as e:
        chat(live, model)
    assert time.monotonic() - t0 < 5
    assert e.value.status_code == status
    assert "sk-secret" not in e.value.response.text
    if status == 429:
        assert e.value.response.headers["retry-after"] == "7"
    events = live.audit.wait_for(n + 1)
    assert len(events) == n + 1
    assert events[-1].tag is EventTag.GATEWAY_REQUEST_FAILED
    assert "sk-secret" not in str(events[-1].attributes)


@pytest.mark.parametrize("model", ["truncate", "drip", "hang", "fail500"])
def test_stream_failures_end_promptly_with_error(live: Live, model: str) -> None:
    n = len(live.audit.events)
    t0 = time.monotonic()
    with pytest.raises(openai.APIError):
        chat(live, model, stream=True)
    assert time.monotonic() - t0 < 5
    events = live.audit.wait_for(n + 1)
    assert len(events) == n + 1 and events[-1].tag is EventTag.GATEWAY_REQUEST_FAILED
    assert events[-1].attributes["stream"] is True


def test_client_disconnect_cancels_upstream_and_completes_event(live: Live, bad: BadUpstream) -> None:
    n = len(live.audit.events)
    before = bad.closed_early
    body = {"model": "slowstream", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with httpx.stream(
        "POST", live.v1 + "/chat/completions", json=body, headers={"authorization": "Bearer k"}
    ) as r:
        for _ in r.iter_raw():
            break  # first chunk, then hang up
    events = live.audit.wait_for(n + 1)
    assert len(events) == n + 1
    ev = events[-1]
    assert ev.tag is EventTag.GATEWAY_REQUEST_FAILED and ev.outcome == "cancelled"
    assert "client disconnected" in ev.attributes["reasons"]  # type: ignore[operator]
    deadline = time.monotonic() + 3
    while bad.closed_early == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bad.closed_early == before + 1, "the upstream request was not cancelled"


def test_circuit_breaker_opens_and_half_opens() -> None:
    b = CircuitBreaker(threshold=2, reset_s=0.05)
    b.check("u")
    b.failure()
    b.check("u")
    b.failure()
    with pytest.raises(UpstreamError) as e:
        b.check("u")
    assert e.value.status == 503
    time.sleep(0.06)
    b.check("u")  # the one trial
    with pytest.raises(UpstreamError):
        b.check("u")
    b.success()
    b.check("u")
    assert b.state == "closed"


def test_a_trial_token_ends_only_its_own_trial() -> None:
    b = CircuitBreaker(threshold=1, reset_s=0.01)
    b.failure()
    time.sleep(0.02)
    first = b.check("u")  # the trial
    assert first
    b.failure()  # the trial failed: open again
    time.sleep(0.02)
    second = b.check("u")
    b.end_trial(first)  # the old trial's late hand-back does not free the new one
    with pytest.raises(UpstreamError):
        b.check("u")
    b.end_trial(second)  # ended without a verdict: the next call is the trial, still half-open
    assert b.check("u") and b.state == "half-open"


def _half_open(up: HttpUpstream) -> None:
    up.breaker.failures, up.breaker.opened_at = up.breaker.threshold, time.monotonic() - 3600


@pytest.mark.parametrize("ending", ["status400", "cut-short", "cancelled-stream", "cancelled-unary"])
def test_a_trial_that_ends_without_a_verdict_frees_the_circuit(bad: BadUpstream, ending: str) -> None:
    """A half-open trial that neither succeeds nor fails (a 4xx, a stream the relay leaves early, a
    call cancelled by a caller who left) must not keep the circuit open until restart."""
    mode = {"status400": "status400", "cut-short": "slowstream"}.get(ending, "hang")
    cfg = UpstreamSettings(base_url=bad.base(mode), breaker_failures=1, breaker_reset_s=60)

    async def scenario() -> None:
        up = HttpUpstream("u", cfg)
        _half_open(up)
        try:
            if ending == "status400":
                with pytest.raises(UpstreamStatusError):
                    await up.open_stream("/chat/completions", b"{}")
                assert up.breaker.state == "closed"  # the provider answered
                return
            if ending == "cut-short":
                stream = await up.open_stream("/chat/completions", b"{}")
                assert await stream.next_batch()  # type: ignore[attr-defined]
                await stream.aclose()  # e.g. an output guard blocked the answer
            else:
                call = up.send if ending == "cancelled-unary" else up.open_stream
                task = asyncio.ensure_future(call("/chat/completions", b"{}"))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            assert up.breaker.state == "half-open"
            assert up.breaker.check("u"), "the next call is the new trial"
        finally:
            await up.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_upstream_cookies_are_not_kept_between_calls(bad: BadUpstream) -> None:
    """A cookie one call's answer set is not sent upstream with the next (another caller's) call.
    ``localhost``, not an IP address: cookie jars commonly ignore cookies from IP hosts."""
    ups = {"u": {"base_url": f"http://localhost:{bad.port}/cookie/v1"}}
    s = gateway_settings(upstreams=ups, models={"m": {"upstream": "u"}}, egress_allowlist=["localhost"])
    with live_gateway(s) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        before = len(bad.heads)
        for _ in range(3):
            assert chat(lv, "m").choices[0].message.content == "fine"
        heads = bad.heads[before:]
    assert len(heads) == 3
    assert not [h for h in heads if "\r\ncookie:" in h.lower()]


def test_configured_query_reaches_upstream(bad: BadUpstream) -> None:
    """``query`` (Azure's api-version) is on every upstream request, the caller's never is."""
    ups = {"u": {"base_url": bad.base("ok"), "query": {"api-version": "2024-06-01"}}}
    s = gateway_settings(upstreams=ups, models={"m": {"upstream": "u"}}, egress_allowlist=["127.0.0.1"])
    with live_gateway(s) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        before = len(bad.requests)
        for _ in range(2):
            chat(lv, "m")
        paths = [p for p, _ in bad.requests[before:]]
    assert paths == ["/ok/v1/chat/completions?api-version=2024-06-01"] * 2


def test_breaker_answers_503_through_the_gateway(bad: BadUpstream) -> None:
    ups = {"u": {"base_url": bad.base("fail500"), "breaker_failures": 2, "breaker_reset_s": 60}}
    s = gateway_settings(upstreams=ups, models={"m": {"upstream": "u"}}, egress_allowlist=["127.0.0.1"])
    with live_gateway(s) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        statuses = []
        for _ in range(3):
            with pytest.raises(openai.InternalServerError) as e:
                chat(lv, "m")
            statuses.append(e.value.status_code)
        assert statuses == [502, 502, 503]
