"""The streamed relay sends what it checked, however the provider's reads split the answer: the same
events in the same order, each framed ``data: …\\n\\n``, and the same digest and recorded content."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import UpstreamError
from bastion.gateway.call import Call
from bastion.gateway.streaming import _Relay
from support.sse import scripted_stream


class _Obs:
    def labels(self, *a: Any) -> _Obs:
        return self

    def observe(self, v: float) -> None:
        pass


class _Metrics:
    upstream_latency = _Obs()


class _Gateway:
    metrics = _Metrics()

    def __init__(self, waits: bool = True) -> None:
        self.waits = waits

    def answer_waits_for_ledger(self, call: Call) -> bool:
        return self.waits  # durable audit or sealed content: the end of the answer waits for the ledger


class _Events:
    """An upstream that yields its events one at a time (no batches)."""

    def __init__(self, payloads: list[bytes]) -> None:
        self.payloads = payloads

    async def events(self) -> Any:
        for p in self.payloads:
            yield p


async def _relay(up: Any, *, allow_lp: bool, want_usage: bool, waits: bool = True) -> tuple[bytes, Call]:
    sent: list[bytes] = []

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.body":
            sent.append(msg["body"])

    call = Call(route="chat", client_ip="127.0.0.1")
    call.model, call.upstream, call.prompt_body = "alias", "u", b"{}"
    relay = _Relay(_Gateway(waits), send, call, "chat", None, want_usage, allow_lp, time.perf_counter())  # type: ignore[arg-type]
    assert await relay._relay(up)
    sent.append(relay.tail)  # the events that came with [DONE], if held: _complete sends them
    call.response_sha256 = relay.sha.hexdigest()
    assert relay.sent is not None
    call.response_body = b"\n".join(relay.sent)
    return b"".join(sent), call


def _chunk(text: str, model: str, lp: bool) -> bytes:
    choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    if lp:
        choice["logprobs"] = {"content": [{"token": text, "logprob": -0.5}]}
    return orjson.dumps({"id": "x", "object": "chat.completion.chunk", "model": model, "choices": [choice]})


chunks = st.lists(
    st.builds(_chunk, st.text(max_size=6), st.sampled_from(["alias", "provider-model"]), st.booleans()),
    max_size=8,
)
usage = orjson.dumps({"id": "x", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}})


@settings(max_examples=300, deadline=None)
@given(chunks, st.lists(st.integers(0, 2000), max_size=6), st.booleans(), st.booleans(), st.booleans())
def test_the_reads_do_not_change_what_is_sent(
    payloads: list[bytes], cuts: list[int], allow_lp: bool, want_usage: bool, waits: bool
) -> None:
    events = [*payloads, usage, b"[DONE]"]
    body = b"".join(b"data: " + p + b"\n\n" for p in events)
    points = sorted({c % (len(body) + 1) for c in cuts})
    reads = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True) if body[a:b]]

    async def both() -> tuple[tuple[bytes, Call], tuple[bytes, Call]]:
        read = scripted_stream(reads)
        return (
            await _relay(read, allow_lp=allow_lp, want_usage=want_usage, waits=waits),
            await _relay(_Events(events), allow_lp=allow_lp, want_usage=want_usage, waits=waits),
        )

    (sent, call), (one_by_one, call1) = asyncio.run(both())
    assert sent == one_by_one
    assert call.response_sha256 == call1.response_sha256 and call.response_body == call1.response_body
    forwarded = [e[len(b"data: ") :] for e in sent.split(b"\n\n") if e]
    assert sent == b"".join(b"data: " + p + b"\n\n" for p in forwarded)
    assert call.response_sha256 == hashlib.sha256(b"".join(forwarded)).hexdigest()
    assert call.response_body == b"\n".join(forwarded)
    for p in forwarded:
        obj = orjson.loads(p)
        if obj["choices"]:
            assert obj["model"] == "alias"
            assert allow_lp or obj["choices"][0].get("logprobs") is None
    assert (usage in forwarded) == want_usage


@pytest.mark.parametrize("choices", [5, 1.5, True, "text", {"0": {"delta": {"content": "x"}}}])
def test_choices_that_are_not_a_list_end_the_stream(choices: Any) -> None:
    bad = orjson.dumps({"id": "x", "model": "alias", "choices": choices})
    with pytest.raises(UpstreamError) as e:
        asyncio.run(
            _relay(_Events([_chunk("a", "alias", False), bad, b"[DONE]"]), allow_lp=False, want_usage=False)
        )
    assert e.value.message == "the upstream sent an invalid stream event"
