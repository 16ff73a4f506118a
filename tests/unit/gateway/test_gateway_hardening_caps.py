"""Model-theft hardening fails closed: ``n``, ``max_tokens`` and ``max_completion_tokens`` that are
not real integers >= 1 are a 400 (providers that coerce ``5.0`` or ``"5"`` would slip past the caps),
and without a token limit the cap is sent as one, so it always applies."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.gateway import wire
from bastion.gateway.demo import DemoUpstream
from bastion.gateway.errors import ApiError
from bastion.gateway.upstream import UpstreamReply

from .harness import MemoryAudit, direct_gateway, gateway_settings, post_scope

CAPS = wire.Hardening(max_n=2, max_tokens=100)
FIELDS = ("n", "max_tokens", "max_completion_tokens")
NOT_INTEGERS: list[object] = [5.0, 1e5, 100000.0, "5", "100000", True, False, [5], {"v": 5}, 2.5]
BELOW_ONE: list[object] = [0, -1, -(10**9)]


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


def _completions(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "prompt": "hi", **fields}


BODIES = {"chat": _chat, "completions": _completions}


@pytest.mark.parametrize("kind", ["chat", "completions"])
@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("value", NOT_INTEGERS + BELOW_ONE)
def test_harden_refuses_anything_but_an_integer_of_at_least_one(kind: str, name: str, value: object) -> None:
    data = BODIES[kind](**{name: value})
    with pytest.raises(ApiError) as e:
        wire.harden(data, kind, CAPS, allow_logprobs=False)
    err = e.value
    assert err.status == 400 and err.type == "invalid_request_error" and err.param == name
    assert name in err.message and "integer" in err.message
    body = orjson.loads(err.body())["error"]
    assert body["param"] == name and body["type"] == "invalid_request_error"


@pytest.mark.parametrize("kind", ["chat", "completions"])
@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("value", [5.0, "5", True])
def test_parse_and_harden_both_refuse_coercible_values(kind: str, name: str, value: object) -> None:
    body = orjson.dumps(BODIES[kind](**{name: value}))
    with pytest.raises(ApiError) as e:
        wire.harden(wire.parse(body, kind), kind, CAPS, allow_logprobs=False)
    assert e.value.status == 400 and e.value.param == name


def test_harden_leaves_values_within_the_caps_untouched() -> None:
    for fields in ({"n": 2, "max_tokens": 100}, {"n": 1, "max_completion_tokens": 7}, {"max_tokens": 1}):
        data = _chat(**fields)
        before = copy.deepcopy(data)
        assert wire.harden(data, "chat", CAPS, allow_logprobs=False) == []
        assert data == before  # no second token field is added next to the caller's


def test_harden_caps_integers_above_the_caps() -> None:
    data = _chat(n=5, max_tokens=10**6, max_completion_tokens=101)
    notes = wire.harden(data, "chat", CAPS, allow_logprobs=False)
    assert notes == ["n_capped", "max_tokens_capped", "max_completion_tokens_capped"]
    assert (data["n"], data["max_tokens"], data["max_completion_tokens"]) == (2, 100, 100)


@pytest.mark.parametrize(
    ("kind", "field"), [("chat", "max_completion_tokens"), ("completions", "max_tokens")]
)
def test_harden_sends_the_cap_when_no_token_limit_is_given(kind: str, field: str) -> None:
    data = BODIES[kind]()
    assert wire.harden(data, kind, CAPS, allow_logprobs=False) == ["max_tokens_defaulted"]
    assert data[field] == CAPS.max_tokens
    other = "max_tokens" if field == "max_completion_tokens" else "max_completion_tokens"
    assert other not in data


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_harden_treats_null_as_absent(kind: str) -> None:
    data = BODIES[kind](n=None, max_tokens=None, max_completion_tokens=None)
    assert wire.harden(data, kind, CAPS, allow_logprobs=False) == ["max_tokens_defaulted"]
    field = "max_completion_tokens" if kind == "chat" else "max_tokens"
    assert data[field] == CAPS.max_tokens and data["n"] is None


def test_harden_leaves_embeddings_untouched() -> None:
    data = {"model": "m", "input": "hi", "n": 5.0, "max_tokens": "9"}
    before = copy.deepcopy(data)
    assert wire.harden(data, "embeddings", CAPS, allow_logprobs=False) == []
    assert data == before


any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**7),
    st.floats(allow_nan=False),
    st.text(max_size=6),
    st.integers(-5, 10**7).map(str),
    st.integers(1, 10**7).map(float),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["chat", "completions"]),
    st.fixed_dictionaries({}, optional={name: any_value for name in FIELDS}),
)
def test_harden_either_refuses_or_guarantees_the_caps(kind: str, fields: dict[str, Any]) -> None:
    data = BODIES[kind](**fields)
    if not all(v is None or (type(v) is int and v >= 1) for v in fields.values()):
        with pytest.raises(ApiError) as e:
            wire.harden(data, kind, CAPS, allow_logprobs=False)
        assert e.value.status == 400 and e.value.param in FIELDS
        return
    wire.harden(data, kind, CAPS, allow_logprobs=False)
    n = data.get("n")
    assert n is None or (type(n) is int and 1 <= n <= CAPS.max_n)
    limits = [data.get(name) for name in FIELDS[1:] if data.get(name) is not None]
    assert limits, "some token limit is always sent"
    assert all(type(v) is int and 1 <= v <= CAPS.max_tokens for v in limits)


# -- through the gateway -------------------------------------------------------------------------


class SpyUpstream(DemoUpstream):
    """The demo model, keeping the bodies the gateway sent it."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []

    async def send(self, path: str, payload: bytes) -> UpstreamReply:
        self.bodies.append(orjson.loads(payload))
        return await super().send(path, payload)


async def _post(app: Any, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
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

    await app(post_scope(path), receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


async def _drained(app: Any, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """One call, then the gateway drained (its ledger events all written)."""
    answer = await _post(app, path, body)
    await app.gateway.drain()
    return answer


def _gateway() -> tuple[Any, MemoryAudit, SpyUpstream]:
    up = SpyUpstream()
    s = gateway_settings(max_n=2, max_tokens_cap=100, guards={"input": [], "output": []})
    app, audit = direct_gateway(s, upstreams={"demo": up})
    return app, audit, up


@pytest.mark.parametrize(("name", "value"), [("n", 5.0), ("max_tokens", "100000"), ("n", True)])
def test_gateway_answers_400_for_coercible_caps_and_never_calls_upstream(name: str, value: object) -> None:
    app, audit, up = _gateway()
    status, body = asyncio.run(
        _drained(app, "/v1/chat/completions", _chat(model="bastion-demo", **{name: value}))
    )
    err = orjson.loads(body)["error"]
    assert status == 400 and err["param"] == name and "integer" in err["message"]
    assert up.bodies == []
    assert [e.attributes["status"] for e in audit.events] == [400]


def test_gateway_sends_the_cap_when_none_is_given_and_records_it() -> None:
    async def main() -> None:
        app, audit, up = _gateway()
        status, _ = await _post(app, "/v1/chat/completions", _chat(model="bastion-demo"))
        assert status == 200
        assert up.bodies[-1]["max_completion_tokens"] == 100 and "max_tokens" not in up.bodies[-1]
        assert audit.events[-1].attributes["hardening"] == ["max_tokens_defaulted"]
        status, _ = await _post(app, "/v1/completions", _completions(model="bastion-demo"))
        assert status == 200 and up.bodies[-1]["max_tokens"] == 100
        assert audit.events[-1].attributes["hardening"] == ["max_tokens_defaulted"]
        await app.gateway.drain()

    asyncio.run(main())


def test_gateway_passes_limits_within_the_caps_unchanged() -> None:
    app, audit, up = _gateway()
    status, _ = asyncio.run(
        _drained(app, "/v1/chat/completions", _chat(model="bastion-demo", n=2, max_tokens=50))
    )
    assert status == 200
    assert up.bodies[-1]["max_tokens"] == 50 and up.bodies[-1]["n"] == 2
    assert "max_completion_tokens" not in up.bodies[-1]
    assert "hardening" not in audit.events[-1].attributes
