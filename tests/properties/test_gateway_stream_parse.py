"""The streamed relay's parsing: server-sent events read from a provider in arbitrary pieces give the
same payloads, in the same batches, as the plain line-by-line parser."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import UpstreamError
from support.sse import ScriptedUpstream, scripted_stream


def _reference(reads: list[bytes]) -> tuple[list[list[bytes]], str]:
    """The batches the line-by-line parser gives for ``reads`` (one batch per read that completes an
    event), and how the answer ends ("end" or "mid-event")."""
    buf = b""
    data: list[bytes] = []
    batches: list[list[bytes]] = []
    for piece in [*reads, b""]:
        if not piece:
            return batches, ("mid-event" if buf.strip() or data else "end")
        buf += piece
        if b"\n" not in buf:
            continue
        *lines, buf = buf.split(b"\n")
        out = []
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if data:
                    out.append(b"\n".join(data))
                    data = []
                continue
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
        if out:
            batches.append(out)
    raise AssertionError("unreachable")


async def _parsed(reads: list[bytes]) -> tuple[list[list[bytes]], str]:
    stream = scripted_stream(reads)
    batches = []
    try:
        while (batch := await stream.next_batch()) is not None:
            assert batch, "a batch is never empty"
            batches.append(batch)
    except UpstreamError as e:
        return batches, ("mid-event" if e.message == "upstream stream ended mid-event" else e.message)
    return batches, "end"


payload = st.one_of(
    st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    st.sampled_from([b'{"a":1}', b"[DONE]", b"", b" x", b"data: y"]),
)
line = st.one_of(
    payload.map(lambda p: b"data: " + p),
    payload.map(lambda p: b"data:" + p),
    st.sampled_from([b": comment", b"event: x", b"id: 7", b"retry: 10", b"data", b""]),
)
eol = st.sampled_from([b"\n", b"\n", b"\n", b"\r\n", b"\r"])
# mostly the common shape (one data line, then a blank line), sometimes anything
event = st.one_of(
    st.tuples(payload, eol).map(lambda t: b"data: " + t[0] + b"\n\n"),
    st.lists(st.tuples(line, eol), min_size=1, max_size=4).map(lambda ls: b"".join(a + b for a, b in ls)),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(event, max_size=10), st.lists(st.integers(0, 400), max_size=6))
def test_events_parse_as_line_by_line_whatever_the_reads(events: list[bytes], cuts: list[int]) -> None:
    body = b"".join(events)
    points = sorted({c % (len(body) + 1) for c in cuts})
    reads = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True) if body[a:b]]
    assert asyncio.run(_parsed(reads)) == _reference(reads)


def test_a_complete_answer_closes_a_half_open_breaker() -> None:
    up = ScriptedUpstream()
    up.breaker.failures, up.breaker.opened_at, up.breaker._trial = 3, 0.0, 1  # the trial call
    reads = [b'data: {"a":1}\n\n', b"data: [DONE]\n\n"]

    async def relay_until_done() -> None:
        stream = scripted_stream(reads, up)
        while (batch := await stream.next_batch()) is not None:
            if b"[DONE]" in batch:
                return  # the relay reads no further than [DONE]
        pytest.fail("no [DONE]")

    asyncio.run(relay_until_done())
    assert up.breaker.state == "closed" and up.breaker.failures == 0


def test_an_event_of_endless_data_lines_is_refused_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The size cap holds for an event spread over many ``data:`` lines, not just one long line."""
    monkeypatch.setattr("bastion.gateway.upstream.MAX_EVENT_BYTES", 1000)
    reads = [b"data: " + b"x" * 90 + b"\n" for _ in range(50)]  # 4.5 KB, no blank line
    batches, end = asyncio.run(_parsed(reads))
    assert batches == [] and end == "upstream sent an oversized stream event"
