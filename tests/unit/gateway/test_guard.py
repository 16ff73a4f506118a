from __future__ import annotations

from collections.abc import Sequence

import pytest

from bastion.config import GuardRule, GuardSettings
from bastion.detectors.interface import Detector, Direction, ScanContext
from bastion.domain.findings import Action, Finding, Span
from bastion.errors import ConfigError
from bastion.registry import Registry
from bastion.services.guard import REDACTION, GuardService, GuardTarget, redact

T = GuardTarget(route="chat", model="m", team="red")


def svc(**kw: object) -> GuardService:
    base: dict[str, object] = {
        "input": ["denylist"],
        "output": ["denylist"],
        "options": {"denylist": {"terms": ["zeus"]}},
    }
    base.update(kw)
    return GuardService(GuardSettings(**base))  # type: ignore[arg-type]


def test_no_detectors_passes_without_scanning() -> None:
    r = GuardService(GuardSettings(input=[], output=[])).scan(["zeus"], Direction.INPUT, T)
    assert r.verdict.passed and not r.acted


def test_default_action_blocks() -> None:
    r = svc().scan(["hello", "about Zeus"], Direction.INPUT, T)
    assert r.blocked
    assert r.acted[0].text_index == 1
    assert r.verdict.reasons == ("denylist:denylist.term:block",)
    assert "zeus" not in str(r.acted[0].to_audit()).lower()


def test_rules_first_match_by_team_and_direction() -> None:
    s = svc(
        rules=[
            GuardRule(action="flag", team="blue"),
            GuardRule(action="redact", direction="output", detector="denylist"),
            GuardRule(action="allow", finding_type="denylist."),
        ]
    )
    out = s.scan(["ask zeus twice: zeus"], Direction.OUTPUT, T)
    assert out.verdict.action is Action.REDACT
    assert out.redacted == (f"ask {REDACTION} twice: {REDACTION}",)
    inp = s.scan(["zeus"], Direction.INPUT, T)
    assert inp.verdict.action is Action.ALLOW and inp.redacted is None
    blue = s.scan(["zeus"], Direction.OUTPUT, GuardTarget("chat", "m", "blue"))
    assert blue.verdict.action is Action.FLAG and blue.verdict.passed


class Boom:
    name = "boom"
    directions = frozenset(Direction)

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        raise RuntimeError("bug")


def test_crashing_detector_blocks_fail_closed() -> None:
    reg: Registry[Detector] = Registry("t")
    reg.add("boom", lambda: Boom())
    s = GuardService(GuardSettings(input=["boom"], output=["boom"], default_action="allow"), registry=reg)
    r = s.scan(["anything"], Direction.INPUT, T)
    assert r.blocked and r.verdict.errors == ("boom",) and not r.verdict.passed
    sg = s.stream(T)
    assert sg.feed("0", "x").blocked
    assert sg.result().verdict.errors == ("boom",) and not sg.result().verdict.passed


def test_unknown_detector_and_stray_options_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        GuardService(GuardSettings(input=["nope"]))
    with pytest.raises(ConfigError):
        GuardService(GuardSettings(options={"denylist": {"terms": ["a"]}}))
    with pytest.raises(ConfigError):
        GuardService(GuardSettings(input=["denylist"], options={"denylist": {"bogus": 1}}))


def test_stream_finds_term_split_across_chunks_before_release() -> None:
    g = svc(stream_window_chars=16).stream(T)
    # A rule may block, so the last 16 characters wait (and text leaves in batches of 32 more): no
    # part of a term leaves before it is whole.
    assert g.feed("0", "we talk about Ze").text == ""
    step = g.feed("0", "us now" + " and then" * 5)
    assert step.blocked and step.text == ""
    assert g.feed("0", "more").blocked
    res = g.result()
    assert res.blocked
    (a,) = res.acted
    assert a.finding.spans[0] == Span(14, 18)  # absolute offsets in the whole stream


def test_stream_redacts_with_holdback_and_releases_on_finish() -> None:
    g = svc(rules=[GuardRule(action="redact")], stream_window_chars=16).stream(T)
    released = ""
    for chunk in ["a zeu", "s b ", "c" * 30, " ze", "us"]:
        step = g.feed("0", chunk)
        assert not step.blocked
        released += step.text
    for step in g.finish().values():
        released += step.text
    assert released == f"a {REDACTION} b {'c' * 30} {REDACTION}"
    assert len(g.result().acted) == 2
    assert g.result().verdict.action is Action.REDACT


def test_stream_channels_are_independent() -> None:
    g = svc(rules=[GuardRule(action="flag")]).stream(T)
    g.feed("0", "ze")
    g.feed("1", "us")
    assert g.result().acted == ()


def test_redact_merges_overlaps() -> None:
    assert redact("abcdef", [Span(1, 3), Span(2, 4)]) == f"a{REDACTION}ef"
    assert redact("abcdef", [Span(0, 2)], start_at=1) == f"a{REDACTION}cdef"
