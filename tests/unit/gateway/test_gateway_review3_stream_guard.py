"""Review: the streaming output guards (StreamGuard, the relay that applies it, their window).

Each test asserts the SAFE behaviour (the bugs found as strict xfails are fixed); docstrings say how
a test would fail.
Tests at the StreamGuard level feed chunks by hand; the others drive the whole gateway as ASGI with
a scripted in-process provider (tests/unit/gateway/test_gateway_review3_support.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bastion.config import GuardSettings
from bastion.detectors import denylist
from bastion.detectors.interface import Detector, Direction, ScanContext
from bastion.detectors.secrets import SecretsDetector
from bastion.domain.events import EventTag
from bastion.domain.findings import Finding, Severity, Span
from bastion.errors import ConfigError
from bastion.registry import Registry
from bastion.services.guard import REDACTION, ActedFinding, GuardService, GuardTarget
from bastion.services.stream_guard import LEFT_CONTEXT, RELEASE_BATCH

from .stream_guard_helpers import feed_all, split, unary_redaction
from .test_gateway_review3_support import (
    ScriptedUpstream,
    attrs,
    body_of,
    build,
    chunk,
    completion_chunk,
    run,
    settings,
    text_stream,
)

TARGET = GuardTarget("chat", "m")
COMPLETIONS = "/v1/completions"
AWS = "AKIAQWERTYUIOPASDFGH"  # an AWS access key id: the secrets detector finds it (redact by default)
DENY = "project zeus"
#: output guards: secrets (redacted: so a hold-back window) and the deny-list (its findings block)
REDACT_AND_DENY: dict[str, Any] = {
    "input": [],
    "output": ["secrets", "denylist"],
    "options": {"denylist": {"terms": [DENY]}},
}
#: the deny-list only, every finding blocked: no rule can redact, so nothing is held back
DENY_ONLY: dict[str, Any] = {"input": [], "output": ["denylist"], "options": {"denylist": {"terms": [DENY]}}}
FAST = hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST_RELAY = hsettings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: text no output detector finds anything in
PLAIN = st.text(alphabet="abcdefghij klmnopq", min_size=1, max_size=400)


def service(**guards: Any) -> GuardService:
    return GuardService(GuardSettings(**guards))


def cuts_for(text_len: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(min_value=1, max_value=max(1, text_len - 1)), min_size=1, max_size=12)


# == the guard itself: a term split at every point =================================================


@pytest.mark.parametrize("at", range(1, len(AWS)))
def test_a_secret_split_in_two_at_every_point_is_redacted_whole(at: int) -> None:
    """Every two-chunk split of a key: the caller gets exactly the unary redaction, no character of
    the key. Fails if the hold-back went away (the key's head would leave before it is complete) or
    if redaction were clipped to the chunk that completed the match."""
    svc = service(output=["secrets"])
    text = f"the key {AWS} is here"
    cut = text.index(AWS) + at
    out, blocked = feed_all(svc.stream(TARGET), [text[:cut], text[cut:]])
    assert not blocked
    assert out == unary_redaction(svc, text) == f"the key {REDACTION} is here"


@FAST
@given(pre=PLAIN, post=PLAIN, data=st.data())
def test_a_secret_split_into_many_chunks_is_redacted_like_the_unary_scan(
    pre: str, post: str, data: st.DataObject
) -> None:
    """Property: for any text around a key and any cutting into 2..13 chunks, what leaves equals the
    unary scan's redaction and holds no 'AKIA'. Fails as the test above, for some split."""
    svc = service(output=["secrets"])
    text = f"{pre} {AWS} {post}"
    pieces = split(text, data.draw(cuts_for(len(text))))
    out, blocked = feed_all(svc.stream(TARGET), pieces)
    assert not blocked
    assert out == unary_redaction(svc, text)
    assert "AKIA" not in out


@FAST
@given(pre=PLAIN, post=PLAIN, data=st.data())
def test_a_deny_term_split_anywhere_blocks_before_any_of_it_leaves(
    pre: str, post: str, data: st.DataObject
) -> None:
    """Property (a redact rule exists, so text is held back): for any split, the stream is blocked and
    what left before is a prefix of the text BEFORE the term: not one character of the term. Fails if
    the hold-back went away or the look-behind stopped spanning chunks (the term would pass)."""
    svc = service(**REDACT_AND_DENY)
    text = f"{pre} {DENY} {post}"
    pieces = split(text, data.draw(cuts_for(len(text))))
    out, blocked = feed_all(svc.stream(TARGET), pieces)
    assert blocked
    assert text[: text.index(DENY)].startswith(out)


@pytest.mark.parametrize("guards", ["deny-only", "secrets-blocked"])
def test_with_block_only_rules_no_part_of_a_blocked_term_leaves(guards: str) -> None:
    """The head of a term whose last characters come in a later chunk must not leave either when
    every rule blocks. Today 'project ze' (or 19 of the key's 20 characters) reach the caller."""
    if guards == "deny-only":
        svc, term = service(**DENY_ONLY, rules=[]), DENY
    else:
        svc, term = service(output=["secrets"], rules=[{"action": "block", "detector": "secrets"}]), AWS
    text = f"see {term} now"
    cut = text.index(term) + len(term) - 1
    out, blocked = feed_all(svc.stream(TARGET), [text[:cut], text[cut:]])
    assert blocked
    assert text[: text.index(term)].startswith(out), f"released {out!r}"


@pytest.mark.parametrize(
    ("token", "cut"),
    [
        ("ghp_" + "a1B2c3D4e5" * 3 + "xyzXYZ" + "QRSTUVWXYZ", 40),
        ("sk-proj-" + "Ab3dE6gH9jK2mN5pQ8sT" * 6, 48),
    ],
    ids=["github-token", "openai-project-key"],
)
def test_a_long_token_split_after_its_minimum_length_is_redacted_whole(token: str, cut: int) -> None:
    """The unary scan redacts the whole token; a stream must not release its tail."""
    svc = service(output=["secrets"])
    text = f"token {token} end"
    start = text.index(token)
    out, blocked = feed_all(svc.stream(TARGET), [text[: start + cut], text[start + cut :]])
    assert unary_redaction(svc, text) == f"token {REDACTION} end"
    assert not blocked
    assert token[-8:] not in out, f"released {out!r}"
    assert out == f"token {REDACTION} end"


def test_each_finding_of_a_stream_is_recorded_once() -> None:
    """A key (redacted) and an IP address (flagged) in the same chunk, then one more chunk: each
    finding once, as the unary scan reports them."""
    svc = service(output=["secrets", "pii"])
    text = f"key {AWS} and host 192.168.10.20 ok"
    g = svc.stream(TARGET)
    feed_all(g, [text[:48], text[48:]])

    def found(acted: Sequence[ActedFinding]) -> list[tuple[str, list[tuple[int, int]]]]:
        return sorted((a.finding.type, [(sp.start, sp.end) for sp in a.finding.spans]) for a in acted)

    assert found(g.result().acted) == found(svc.scan([text], Direction.OUTPUT, TARGET).acted)


def test_a_deny_term_longer_than_the_window_is_still_caught_when_split() -> None:
    """Either the window is widened to the longest term or such a configuration is refused; a term
    the unary scan blocks must not pass a stream whole."""
    term = "confidential merger codename bluebird"  # 37 characters
    try:
        svc = service(output=["denylist"], stream_window_chars=16, options={"denylist": {"terms": [term]}})
    except ConfigError:  # refusing the configuration is as safe
        return
    text = f"about the {term} deal"
    assert svc.scan([text], Direction.OUTPUT, TARGET).blocked
    cut = text.index(term) + 18
    _, blocked = feed_all(svc.stream(TARGET), [text[:cut], text[cut:]])
    assert blocked


def test_a_deny_term_padded_with_invisible_characters_is_caught_in_a_stream() -> None:
    svc = service(**REDACT_AND_DENY)
    padded = "project" + "\u200b" * 600 + " zeus"
    text = f"about {padded} now"
    assert svc.scan([text], Direction.OUTPUT, TARGET).blocked
    cut = text.index(" zeus")
    _, blocked = feed_all(svc.stream(TARGET), [text[:cut], text[cut:]])
    assert blocked


# == bounded state ===================================================================================


def test_the_look_behind_and_hold_back_stay_bounded_over_a_long_stream() -> None:
    """10 000 chunks: the text the guard keeps per channel never exceeds window + hold-back + one
    chunk, and it releases everything but the hold-back as it goes. Fails if `seen` kept the whole
    stream (memory and per-chunk work growing with its length) or pending were never cut."""
    svc = service(**REDACT_AND_DENY)
    g = svc.stream(TARGET)
    window = svc.settings.stream_window_chars
    released = 0
    for i in range(10_000):
        piece = f"w{i % 97:02d} "
        released += len(g.feed("0", piece).text)
        ch = g._channels["0"]
        assert len(ch.seen) <= window + LEFT_CONTEXT
        assert len(ch.pending) <= g.holdback + RELEASE_BATCH + len(piece)
    assert released == 10_000 * 4 - len(g._channels["0"].pending)
    assert not g.result().acted


def test_findings_kept_for_a_stream_are_bounded() -> None:
    svc = service(output=["pii"])
    g = svc.stream(TARGET)
    for i in range(800):
        g.feed("0", f"host 10.0.{i % 250}.{i % 200 + 1} ")
    assert len(g.result().acted) <= 500


# == the relay: what the caller receives =============================================================


@FAST_RELAY
@given(text=PLAIN, data=st.data(), usage=st.booleans(), finish=st.booleans())
def test_an_allowed_stream_delivers_every_character_in_order(
    text: str, data: st.DataObject, usage: bool, finish: bool
) -> None:
    """Property: nothing found, any cutting, with or without a finishing chunk (an empty delta, as
    OpenAI sends it; without one, held text is released at [DONE]), with or without a usage chunk:
    the caller gets every character, in order, then [DONE]; the event's response_sha256 is the digest
    of the payloads it got. Fails if held text were dropped at the finish or at [DONE], or the digest
    covered other bytes."""
    pieces = split(text, data.draw(cuts_for(len(text))))
    up = ScriptedUpstream(events=text_stream(pieces, usage=(3, 4) if usage else None, finish=finish))
    gw = build(settings(guards=REDACT_AND_DENY), up)
    a = run(gw, body_of(stream=True))
    assert a.status == 200 and a.done()
    assert a.text() == text
    ev = gw.one_event()
    assert ev.tag is EventTag.GATEWAY_REQUEST_COMPLETED
    assert attrs(ev)["guards"]["output"] == "passed"
    assert attrs(ev)["response_sha256"] == a.stream_sha256()


@pytest.mark.parametrize("route", ["chat", "completions"])
def test_held_text_released_at_a_choice_finish_keeps_its_order(route: str) -> None:
    text = "".join(f"w{i:03d} " for i in range(100))  # 500 characters, nothing to find
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    if route == "chat":
        events = text_stream(pieces[:-1], finish_with=pieces[-1])
    else:
        events = [
            *(completion_chunk(p) for p in pieces[:-1]),
            completion_chunk(pieces[-1], finish="stop"),
            b"[DONE]",
        ]
    gw = build(settings(guards=REDACT_AND_DENY), ScriptedUpstream(events=events))
    if route == "chat":
        a = run(gw, body_of(stream=True))
    else:
        a = run(gw, {"model": "m", "prompt": "hi", "stream": True}, path=COMPLETIONS)
    assert a.status == 200 and a.done()
    assert (a.text() if route == "chat" else a.completion_text()) == text


@FAST_RELAY
@given(pre=PLAIN, post=PLAIN, data=st.data())
def test_a_split_secret_reaches_the_caller_redacted_like_a_unary_answer(
    pre: str, post: str, data: st.DataObject
) -> None:
    """Property through the relay: the caller's text equals the unary redaction, the event says
    redacted and names the finding without its text. Fails if the relay released the guard's input
    instead of its output, or the hold-back were lost at the finish."""
    svc = service(**REDACT_AND_DENY)
    text = f"{pre} {AWS} {post}"
    pieces = split(text, data.draw(cuts_for(len(text))))
    gw = build(settings(guards=REDACT_AND_DENY), ScriptedUpstream(events=text_stream(pieces)))
    a = run(gw, body_of(stream=True))
    assert a.status == 200 and a.done()
    assert a.text() == unary_redaction(svc, text)
    ev = gw.one_event()
    assert attrs(ev)["guards"]["output"] == "redacted"
    assert [f["type"] for f in attrs(ev)["findings"]] == ["secret.aws_access_key_id"]
    assert AWS not in str(attrs(ev)) and AWS[:8] not in a.body.decode()


def _interleave(a: list[bytes], b: list[bytes], order: Sequence[bool]) -> list[bytes]:
    out: list[bytes] = []
    ia = ib = 0
    for take_a in order:
        if take_a and ia < len(a):
            out.append(a[ia])
            ia += 1
        elif ib < len(b):
            out.append(b[ib])
            ib += 1
    return out + a[ia:] + b[ib:]


@FAST_RELAY
@given(data=st.data())
def test_interleaved_choices_are_guarded_each_on_its_own(data: st.DataObject) -> None:
    """Property (n=2): the chunks of two choices interleaved in any order, a key split inside choice 1:
    choice 0 arrives whole and untouched, choice 1 redacted like its unary scan. Fails if the choices
    shared one channel (one's text would be scanned, held or redacted with the other's) or a choice's
    finish released the other's held text into it."""
    svc = service(**REDACT_AND_DENY)
    text0 = "choice zero says hello " * 3
    text1 = f"choice one has {AWS} inside"
    c0 = [chunk(p, index=0) for p in split(text0, data.draw(cuts_for(len(text0))))]
    c1 = [chunk(p, index=1) for p in split(text1, data.draw(cuts_for(len(text1))))]
    c0.append(chunk(None, index=0, finish="stop"))
    c1.append(chunk(None, index=1, finish="stop"))
    order = data.draw(st.lists(st.booleans(), min_size=len(c0) + len(c1), max_size=len(c0) + len(c1)))
    events = [*_interleave(c0, c1, order), b"[DONE]"]
    gw = build(settings(guards=REDACT_AND_DENY, max_n=2), ScriptedUpstream(events=events))
    a = run(gw, body_of(stream=True, n=2))
    assert a.status == 200 and a.done()
    assert a.text(0) == text0
    assert a.text(1) == unary_redaction(svc, text1)


def test_a_choice_finish_releases_its_held_text_with_its_finishing_chunk() -> None:
    """Choice 0 finishes (empty delta) while choice 1 goes on: all of choice 0's text has reached the
    caller by its finishing chunk, not only at [DONE]. Fails if _prepend_held stopped releasing at a
    finish (choice 0's tail would come after choice 1's later chunks, in a chunk with no finish)."""
    text0 = "short answer"
    events = [
        chunk(text0, index=0),
        chunk(None, index=0, finish="stop"),
        chunk("the other ", index=1),
        chunk("choice", index=1),
        chunk(None, index=1, finish="stop"),
        b"[DONE]",
    ]
    gw = build(settings(guards=REDACT_AND_DENY, max_n=2), ScriptedUpstream(events=events))
    a = run(gw, body_of(stream=True, n=2))
    got = ""
    for obj in a.chunks():
        for ch in obj["choices"]:
            if ch["index"] == 0:
                got += ch["delta"].get("content") or ""
                if ch.get("finish_reason"):
                    assert got == text0
    assert got == text0 and a.text(1) == "the other choice"


def _tool_chunk(args: str, *, tool: int = 0) -> bytes:
    tc = {"index": tool, "function": {"arguments": args}}
    return chunk(None, delta={"tool_calls": [tc]})


def test_a_secret_split_across_tool_call_arguments_is_redacted() -> None:
    """Two tool calls' argument streams, a key split over three chunks of tool 1: tool 0's arguments
    untouched, tool 1's redacted whole. Fails if tool-call arguments were relayed unscanned or the
    tools shared a channel."""
    args0 = '{"city": "Paris"}'
    args1 = '{"note": "' + AWS + '"}'
    cut1, cut2 = args1.index(AWS) + 5, args1.index(AWS) + 13
    events = [
        _tool_chunk(args0[:8], tool=0),
        _tool_chunk(args1[:cut1], tool=1),
        _tool_chunk(args0[8:], tool=0),
        _tool_chunk(args1[cut1:cut2], tool=1),
        _tool_chunk(args1[cut2:], tool=1),
        chunk(None, finish="tool_calls"),
        b"[DONE]",
    ]
    gw = build(settings(guards=REDACT_AND_DENY), ScriptedUpstream(events=events))
    a = run(gw, body_of(stream=True))
    assert a.status == 200 and a.done()
    assert a.tool_args(tool=0) == args0
    assert a.tool_args(tool=1) == '{"note": "' + REDACTION + '"}'
    assert "AKIA" not in a.body.decode()


def test_a_deny_term_split_across_tool_call_arguments_blocks_the_stream() -> None:
    """Fails if tool-call argument chunks were not scanned together with the look-behind."""
    args = '{"q": "about project zeus"}'
    cut = args.index("zeus") + 2
    events = [chunk("thinking... "), _tool_chunk(args[:cut]), _tool_chunk(args[cut:]), b"[DONE]"]
    gw = build(settings(guards=REDACT_AND_DENY), ScriptedUpstream(events=events))
    a = run(gw, body_of(stream=True))
    assert not a.done()
    assert "zeus" not in a.body.decode() and "project" not in a.tool_args()
    assert gw.one_event().outcome == "blocked"


@pytest.mark.parametrize("at", [3, 10, 19])
def test_a_secret_split_in_a_completions_stream_is_redacted(at: int) -> None:
    """/v1/completions streams (choices[].text) are guarded like chat deltas. Fails if the text field
    of completion chunks were relayed unscanned or the held text dropped at [DONE]."""
    svc = service(**REDACT_AND_DENY)
    text = f"the key {AWS} is here"
    cut = text.index(AWS) + at
    events = [
        completion_chunk(text[:cut]),
        completion_chunk(text[cut:]),
        completion_chunk("", finish="stop"),
        b"[DONE]",
    ]
    gw = build(settings(guards=REDACT_AND_DENY), ScriptedUpstream(events=events))
    a = run(gw, {"model": "m", "prompt": "hi", "stream": True}, path=COMPLETIONS)
    assert a.status == 200 and a.done()
    assert a.completion_text() == unary_redaction(svc, text)
    assert "AKIA" not in a.body.decode()


def test_a_block_mid_stream_ends_with_an_error_event_and_no_done() -> None:
    """300 characters released first (beyond the hold-back), then a deny term split over two chunks:
    HTTP 200 (the head was sent), the last event an OpenAI error (content_filter), no [DONE], and the
    ONE ledger event says blocked, 400, output guard blocked, the finding without the term. Fails if a
    block sent [DONE], fell back to a plain JSON body mid-stream, or recorded the call as allowed."""
    lead = [("lorem ipsum " * 5)] * 5
    events = [
        *(chunk(p) for p in lead),
        chunk("and now proj"),
        chunk("ect zeus!"),
        chunk(None, finish="stop"),
        b"[DONE]",
    ]
    gw = build(settings(guards=REDACT_AND_DENY), ScriptedUpstream(events=events))
    a = run(gw, body_of(stream=True))
    assert a.status == 200
    assert not a.done()
    err = a.error_event()
    assert err is not None and err["error"]["code"] == "content_filter"
    assert "zeus" not in a.body.decode() and "proj" not in a.text()
    ev = gw.one_event()
    at = attrs(ev)
    assert ev.tag is EventTag.GATEWAY_REQUEST_BLOCKED and ev.outcome == "blocked"
    assert at["status"] == 400 and at["guards"]["output"] == "blocked"
    assert [f["type"] for f in at["findings"]] == ["denylist.term"]
    assert "zeus" not in str(at)
    assert at["response_sha256"] == a.stream_sha256()
    assert gw.up.closed == 1


# == a detector that fails mid-stream =================================================================


class _Boom:
    """Finds nothing; raises once it has been called ``after`` times (or on text with 'kaboom')."""

    name = "boom"
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})

    def __init__(self, after: int = 10**9) -> None:
        self.after = after
        self.calls = 0
        self.threads: list[tuple[int, bool]] = []

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        self.calls += 1
        self.threads.append((len(text), threading.current_thread() is threading.main_thread()))
        if self.calls > self.after or "kaboom" in text:
            raise RuntimeError("detector bug")
        return ()


def _guards_with(det: Detector, *names: str) -> GuardService:
    reg: Registry[Detector] = Registry("detectors")
    reg.add("boom", lambda: det)
    reg.add("secrets", SecretsDetector)
    reg.add("denylist", denylist.create)
    gs = GuardSettings(input=[], output=list(names) or ["secrets", "boom"], options={})
    return GuardService(gs, registry=reg)


@pytest.mark.parametrize("how", ["on-the-third-chunk", "on-a-split-marker", "at-the-finish"])
def test_a_detector_that_raises_mid_stream_is_an_error_never_passed(how: str) -> None:
    """The stream ends with an error event and no [DONE]; the event: blocked, output guard 'error',
    reason 'boom:error:block'. Fails if a detector's exception were swallowed as 'no findings' (the
    guard that did not run would read 'passed') or escaped the relay (no error event)."""
    # (chunks longer than the hold-back and a batch, so that each feed is scanned)
    if how == "on-the-third-chunk":
        det, pieces = _Boom(after=2), ["one " * 75, "two " * 75, "three " * 50, "four"]
    elif how == "on-a-split-marker":
        det, pieces = _Boom(), ["all fine, ka", "boom here"]
    else:  # two feeds pass; the third scan is the finish releasing what was held
        det, pieces = _Boom(after=2), ["all fine " * 40, "until the end " * 25]
    events = text_stream(pieces)
    s = settings(guards={"input": [], "output": ["secrets", "boom"]})
    gw = build(s, ScriptedUpstream(events=events), guards=_guards_with(det))
    a = run(gw, body_of(stream=True))
    assert not a.done()
    body_err = a.error_event() if a.status == 200 else a.json()
    assert body_err is not None and body_err["error"]["code"] == "content_filter"
    ev = gw.one_event()
    at = attrs(ev)
    assert ev.outcome == "blocked" and at["guards"]["output"] == "error"
    assert "boom:error:block" in at["reasons"]


def test_a_large_stream_chunk_is_scanned_off_the_event_loop() -> None:
    det = _Boom()
    big = "lorem ipsum dolor " * 2_000  # 36 000 characters in one event
    events = text_stream([big])
    s = settings(guards={"input": [], "output": ["secrets", "boom"]})
    gw = build(s, ScriptedUpstream(events=events), guards=_guards_with(det))
    a = run(gw, body_of(stream=True))
    assert a.status == 200 and a.done()
    assert all(not on_loop for n, on_loop in det.threads if n > 16_384)


def test_the_findings_of_a_stream_are_recorded_with_their_action_and_severity() -> None:
    """A flagged finding does not stop the stream and reaches the ledger as 'flagged'. Fails if a
    flag were treated as a block or dropped from the event."""

    class Flagger:
        name = "flagger"
        directions = frozenset({Direction.OUTPUT})

        def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
            i = text.find("watch")
            if i < 0:
                return ()
            return (Finding("flagger", "odd.word", 0.5, Severity.LOW, "odd word", spans=(Span(i, i + 5),)),)

    reg: Registry[Detector] = Registry("detectors")
    reg.add("flagger", Flagger)
    gs = GuardSettings(input=[], output=["flagger"], default_action="flag", rules=[])
    events = text_stream(["please wa", "tch this"])
    gw = build(
        settings(guards={"input": [], "output": ["flagger"], "default_action": "flag", "rules": []}),
        ScriptedUpstream(events=events),
        guards=GuardService(gs, registry=reg),
    )
    a = run(gw, body_of(stream=True))
    assert a.done() and a.text() == "please watch this"
    at = attrs(gw.one_event())
    assert at["guards"]["output"] == "flagged"
    assert at["findings"] == [
        {
            "detector": "flagger",
            "type": "odd.word",
            "severity": "low",
            "action": "flag",
            "text": 0,
            "spans": [[7, 12]],
            "direction": "output",
        }
    ]
