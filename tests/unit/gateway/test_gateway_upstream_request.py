"""What actually reaches the provider, read off a recording upstream: the provider's configured key
(never the caller's Bastion key, cookies or other credentials), and the hardened request (``n`` and
the token limits capped, log-probabilities removed unless the role allows them); and what reaches the
caller: an upstream answer's log-probabilities nulled unless allowed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from bastion.domain.identity import Role
from bastion.version import __version__

from .harness import BadUpstream, Live, gateway_settings, live_gateway, principal

PROVIDER_KEY = "sk-provider-XYZ123"
CALLER_KEY = "bst_caller_key_ABC789"
LOGPROBS = {"content": [{"token": "fine", "logprob": -0.01, "bytes": [102], "top_logprobs": []}]}
CHAT_LP = orjson.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "fine"},
                "logprobs": LOGPROBS,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)
COMPLETION_LP = orjson.dumps(
    {
        "id": "x",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "text": "fine",
                "logprobs": {
                    "tokens": ["fine"],
                    "token_logprobs": [-0.01],
                    "top_logprobs": [{"fine": -0.01}],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)
SSE_LP = (
    b"".join(
        b"data: "
        + orjson.dumps(
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [
                    {"index": 0, "delta": {"content": t}, "logprobs": LOGPROBS, "finish_reason": None}
                ],
            }
        )
        + b"\n\n"
        for t in ("fi", "ne")
    )
    + b"data: [DONE]\n\n"
)


class LogprobsUpstream(BadUpstream):
    """BadUpstream plus answers that carry log-probabilities: ``lpchat``, ``lpcompletion``, ``lpsse``."""

    async def _respond(self, mode: str, w: asyncio.StreamWriter) -> bool:
        bodies = {
            "lpchat": ("application/json", CHAT_LP),
            "lpcompletion": ("application/json", COMPLETION_LP),
            "lpsse": ("text/event-stream", SSE_LP),
        }
        if mode not in bodies:
            return await super()._respond(mode, w)
        ctype, body = bodies[mode]
        w.write(f"HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n\r\n".encode())
        w.write(body)
        await w.drain()
        return True


@pytest.fixture(scope="module")
def bad() -> Iterator[LogprobsUpstream]:
    b = LogprobsUpstream()
    with b:
        yield b


def parse_head(head: str) -> tuple[str, list[tuple[str, str]]]:
    """The request line and the (lower-cased name, value) header pairs of one recorded request."""
    lines = head.split("\r\n")
    pairs = []
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            pairs.append((k.strip().lower(), v.strip()))
    return lines[0], pairs


CALLER_EXTRAS = {
    "Cookie": "session=caller-cookie-SECRET",
    "X-Api-Key": "caller-x-api-key-SECRET",
    "api-key": "caller-azure-key-SECRET",
    "Proxy-Authorization": "Basic caller-proxy-SECRET",
    "OpenAI-Organization": "org-caller-SECRET",
    "OpenAI-Project": "proj_caller-SECRET",
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Host": "caller-host-SECRET.example",
    "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "User-Agent": "caller-agent-SECRET/1.0",
    "Accept-Encoding": "gzip, br",
    "X-Custom": "caller-custom-SECRET",
}
#: the only headers the gateway's own upstream client sends (upstream.py, http1.py)
GATEWAY_HEADERS = {"host", "accept", "content-type", "accept-encoding", "user-agent", "content-length"}


def call_upstream(bad: BadUpstream, upstream: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """One chat call with the caller's key and credential-like headers through a gateway whose only
    upstream is ``upstream``; the head of the request the provider received."""
    s = gateway_settings(
        upstreams={"u": upstream},
        models={"m": {"upstream": "u"}},
        egress_allowlist=["127.0.0.1"],
        guards={"input": [], "output": []},
    )
    with live_gateway(s) as lv:
        lv.auth.add(CALLER_KEY, principal("p", Role.ADMIN))
        before = len(bad.heads)
        r = httpx.post(
            lv.v1 + "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {CALLER_KEY}", **CALLER_EXTRAS},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        heads = bad.heads[before:]
    assert len(heads) == 1
    return parse_head(heads[0])


def assert_nothing_of_the_callers(head: list[tuple[str, str]]) -> None:
    text = "\n".join(f"{k}: {v}" for k, v in head)
    assert CALLER_KEY not in text
    assert "SECRET" not in text, text
    assert "203.0.113.9" not in text
    assert "traceparent" not in dict(head)
    assert "cookie" not in dict(head) and "proxy-authorization" not in dict(head)
    assert dict(head)["user-agent"] == f"bastion/{__version__}"
    assert dict(head)["accept-encoding"] == "identity"


def test_provider_key_in_authorization_and_nothing_of_the_callers(bad: BadUpstream) -> None:
    line, head = call_upstream(bad, {"base_url": bad.base("ok"), "api_key": PROVIDER_KEY})
    assert line == "POST /ok/v1/chat/completions HTTP/1.1"
    assert [v for k, v in head if k == "authorization"] == [f"Bearer {PROVIDER_KEY}"]
    assert {k for k, _ in head} == GATEWAY_HEADERS | {"authorization"}
    assert len(head) == len({k for k, _ in head}), "a header was sent twice"
    assert_nothing_of_the_callers(head)


def test_provider_key_from_the_environment(bad: BadUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT2_PROVIDER_KEY", PROVIDER_KEY + "-env")
    _, head = call_upstream(bad, {"base_url": bad.base("ok"), "api_key_env": "AUDIT2_PROVIDER_KEY"})
    assert [v for k, v in head if k == "authorization"] == [f"Bearer {PROVIDER_KEY}-env"]
    assert_nothing_of_the_callers(head)


def test_azure_api_key_header_and_no_authorization(bad: BadUpstream) -> None:
    _, head = call_upstream(
        bad, {"base_url": bad.base("ok"), "api_key": PROVIDER_KEY, "auth_header": "api-key"}
    )
    assert [v for k, v in head if k == "api-key"] == [PROVIDER_KEY]
    assert "authorization" not in dict(head)
    assert {k for k, _ in head} == GATEWAY_HEADERS | {"api-key"}
    assert_nothing_of_the_callers(head)


def test_no_provider_key_means_no_credential_at_all(bad: BadUpstream) -> None:
    """An upstream without a configured key must not fall back to the caller's."""
    _, head = call_upstream(bad, {"base_url": bad.base("ok")})
    assert {k for k, _ in head} == GATEWAY_HEADERS
    assert_nothing_of_the_callers(head)


# -- hardening reaches the upstream ------------------------------------------------------------------

MAX_N, CAP = 2, 100


@pytest.fixture(scope="module")
def live(bad: LogprobsUpstream) -> Iterator[Live]:
    ups = {m: {"base_url": bad.base(m)} for m in ("lpchat", "lpcompletion", "lpsse")}
    s = gateway_settings(
        upstreams=ups,
        models={m: {"upstream": m, "attributes": {"team": "shared"}} for m in ups},
        egress_allowlist=["127.0.0.1"],
        guards={"input": [], "output": []},
        max_n=MAX_N,
        max_tokens_cap=CAP,
    )
    with live_gateway(s) as lv:
        # the harness's FakeAuthorizer: ML engineers may have log-probabilities, users not
        lv.auth.add("user-key", principal("u", Role.USER, team="shared"))
        lv.auth.add("ml-key", principal("e", Role.ML_ENGINEER, team="shared"))
        yield lv


def post(lv: Live, bad: BadUpstream, key: str, path: str, body: dict[str, Any]) -> tuple[httpx.Response, Any]:
    """POST through the gateway; its answer and the JSON body the provider received."""
    before = len(bad.requests)
    r = httpx.post(lv.v1 + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=10)
    sent = bad.requests[before:]
    assert len(sent) == 1, sent
    return r, orjson.loads(sent[0][1])


CHAT_BODY: dict[str, Any] = {
    "model": "lpchat",
    "messages": [{"role": "user", "content": "hi"}],
    "n": 5,
    "max_tokens": 10**6,
    "max_completion_tokens": CAP + 1,
    "logprobs": True,
    "top_logprobs": 5,
    "temperature": 0.3,  # an unrelated option passes through untouched
}


def test_hardening_caps_n_and_tokens_and_strips_logprobs_upstream(live: Live, bad: BadUpstream) -> None:
    n = len(live.audit.events)
    r, sent = post(live, bad, "user-key", "/chat/completions", CHAT_BODY)
    assert r.status_code == 200, r.text
    assert sent["n"] == MAX_N
    assert sent["max_tokens"] == CAP and sent["max_completion_tokens"] == CAP
    assert "logprobs" not in sent and "top_logprobs" not in sent
    assert sent["temperature"] == 0.3 and sent["messages"] == CHAT_BODY["messages"]
    assert r.json()["choices"][0]["logprobs"] is None, "the provider's log-probabilities reached a user"
    assert r.json()["choices"][0]["message"]["content"] == "fine"
    events = live.audit.wait_for(n + 1)
    assert len(events) == n + 1
    ev = events[-1]
    assert {"logprobs_stripped", "n_capped", "max_tokens_capped", "max_completion_tokens_capped"} <= set(
        ev.attributes["hardening"]  # type: ignore[arg-type]
    )


def test_values_within_the_caps_are_untouched(live: Live, bad: BadUpstream) -> None:
    body = {**CHAT_BODY, "n": MAX_N, "max_tokens": CAP, "max_completion_tokens": CAP - 1}
    _, sent = post(live, bad, "user-key", "/chat/completions", body)
    assert (sent["n"], sent["max_tokens"], sent["max_completion_tokens"]) == (MAX_N, CAP, CAP - 1)


def test_logprobs_pass_both_ways_when_the_role_allows_them(live: Live, bad: BadUpstream) -> None:
    r, sent = post(live, bad, "ml-key", "/chat/completions", CHAT_BODY)
    assert r.status_code == 200, r.text
    assert sent["logprobs"] is True and sent["top_logprobs"] == 5
    assert sent["n"] == MAX_N and sent["max_tokens"] == CAP  # the caps apply to every role
    assert r.json()["choices"][0]["logprobs"] == LOGPROBS


def test_completions_logprobs_stripped_both_ways(live: Live, bad: BadUpstream) -> None:
    body = {"model": "lpcompletion", "prompt": "hi", "n": 7, "max_tokens": CAP * 10, "logprobs": 5}
    r, sent = post(live, bad, "user-key", "/completions", body)
    assert r.status_code == 200, r.text
    assert "logprobs" not in sent and sent["n"] == MAX_N and sent["max_tokens"] == CAP
    assert r.json()["choices"][0]["logprobs"] is None
    assert r.json()["choices"][0]["text"] == "fine"
    r, sent = post(live, bad, "ml-key", "/completions", body)
    assert sent["logprobs"] == 5 and r.json()["choices"][0]["logprobs"]["tokens"] == ["fine"]


def sse_chunks(text: str) -> list[Any]:
    return [
        orjson.loads(line[6:])
        for line in text.split("\n")
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


def test_streamed_logprobs_are_nulled_unless_allowed(live: Live, bad: BadUpstream) -> None:
    body = {**CHAT_BODY, "model": "lpsse", "stream": True}
    r, sent = post(live, bad, "user-key", "/chat/completions", body)
    assert r.status_code == 200, r.text
    assert sent["stream"] is True and "logprobs" not in sent and sent["n"] == MAX_N
    chunks = [c for c in sse_chunks(r.text) if c.get("choices")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "fine"
    assert all(c["choices"][0].get("logprobs") is None for c in chunks), chunks
    r, _ = post(live, bad, "ml-key", "/chat/completions", body)
    chunks = [c for c in sse_chunks(r.text) if c.get("choices")]
    assert chunks and all(c["choices"][0]["logprobs"] == LOGPROBS for c in chunks)
