"""While output guards hold text back, the relay does not send events that would carry nothing.

The first event still goes out at once (the answer, and its HTTP response, begin); later events
whose text is all held back and that say nothing else are not sent; every character still arrives,
in order, and the ledger's digest is of what was sent.
"""

from __future__ import annotations

from .test_gateway_review3_support import ScriptedUpstream, attrs, body_of, build, run, settings, text_stream

GUARDS = {"input": [], "output": ["secrets", "denylist"], "options": {"denylist": {"terms": ["zeus"]}}}


def test_events_whose_text_is_all_held_back_are_not_sent() -> None:
    pieces = [f"word{i} " for i in range(200)]  # ~1,400 characters in 200 events
    gw = build(settings(guards=GUARDS), ScriptedUpstream(events=text_stream(pieces)))
    a = run(gw, body_of(stream=True))
    assert a.status == 200 and a.done()
    assert a.text() == "".join(pieces)
    sent = a.chunks()
    assert 1 < len(sent) < 100  # the first, then about one per 32-character batch, then the finish
    assert sent[-1]["choices"][0]["finish_reason"] == "stop"
    assert attrs(gw.one_event())["response_sha256"] == a.stream_sha256()


def test_events_that_say_more_than_their_text_are_sent() -> None:
    """A role, a finish reason or a usage chunk still goes out though its text is held back."""
    events = text_stream(["a" * 10, "b" * 10], usage=(3, 4))
    gw = build(settings(guards=GUARDS), ScriptedUpstream(events=events))
    payload = body_of(stream=True)
    payload["stream_options"] = {"include_usage": True}
    a = run(gw, payload)
    assert a.done() and a.text() == "a" * 10 + "b" * 10
    assert any(b'"usage"' in p for p in a.payloads())
    assert any(ch.get("finish_reason") == "stop" for obj in a.chunks() for ch in obj.get("choices") or [])


def test_without_output_guards_every_event_is_relayed() -> None:
    pieces = [f"w{i} " for i in range(50)]
    gw = build(settings(guards={"input": [], "output": []}), ScriptedUpstream(events=text_stream(pieces)))
    a = run(gw, body_of(stream=True))
    assert len(a.chunks()) == 51 and a.text() == "".join(pieces)
