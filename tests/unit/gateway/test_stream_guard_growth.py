"""StreamGuard scans what the provider sent and applies redactions only on release.

So a match that keeps growing over chunks (a token of variable length) is masked to its end as one
``[REDACTED]``, each finding is recorded once with the offsets of the provider's text, and the
look-behind counts visible characters only, within bounds.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bastion.config import GuardSettings
from bastion.detectors.interface import Direction
from bastion.domain.findings import Action
from bastion.services.guard import REDACTION, GuardService, GuardTarget
from bastion.services.stream_guard import MAX_STREAM_FINDINGS, _visible_start

from .stream_guard_helpers import feed_all, split, unary_redaction

T = GuardTarget("chat", "m")
GHP = "ghp_" + "a1B2c3D4e5" * 8  # 84 characters: longer than a 16-character window
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def secrets(**kw: object) -> GuardService:
    return GuardService(GuardSettings(input=[], output=["secrets", "pii"], **kw))  # type: ignore[arg-type]


@FAST
@given(
    tokens=st.lists(st.integers(min_value=36, max_value=120), min_size=1, max_size=3),
    gap=st.text(alphabet="xyz .,", min_size=1, max_size=30),
    data=st.data(),
)
def test_any_split_of_variable_length_tokens_leaves_as_the_unary_redaction(
    tokens: list[int], gap: str, data: st.DataObject
) -> None:
    """Tokens of 40..124 characters, cut anywhere: the caller gets exactly the unary scan's text."""
    svc = secrets()
    body = f" {gap} ".join("ghp_" + ("Ab3dE6gH9j" * 13)[:n] for n in tokens)
    text = f"start {body} end"
    cuts = data.draw(st.lists(st.integers(1, len(text) - 1), max_size=10))
    out, _ = feed_all(svc.stream(T), split(text, cuts))
    assert out == unary_redaction(svc, text)
    assert "ghp_" not in out


def test_a_token_longer_than_the_hold_back_is_masked_to_its_end_as_one_marker() -> None:
    """With a 16-character window the token's head leaves as [REDACTED] before its end arrives;
    the rest of it, however many chunks it takes, joins that one marker."""
    svc = secrets(stream_window_chars=16)
    text = f"the token {GHP} is set"
    chunks = split(text, range(0, len(text), 7))
    out, _ = feed_all(svc.stream(T), chunks)
    assert out == f"the token {REDACTION} is set" == unary_redaction(svc, text)


def test_a_growing_match_is_recorded_once_with_its_final_span() -> None:
    svc = secrets()
    text = f"a {GHP} b"
    g = svc.stream(T)
    feed_all(g, split(text, [40, 60, 80]))
    (acted,) = g.result().acted
    start = text.index(GHP)
    assert (acted.finding.spans[0].start, acted.finding.spans[0].end) == (start, start + len(GHP))


def test_findings_past_the_cap_still_act_and_give_their_reason() -> None:
    """A stream with more findings than the cap: the event keeps MAX_STREAM_FINDINGS of them, the
    verdict still redacts and says it was truncated; every key is still masked."""
    svc = secrets()
    g = svc.stream(T)
    key = "AKIAQWERTYUIOPASDFGH"
    out, _ = feed_all(g, [f"k{i} {key} " for i in range(MAX_STREAM_FINDINGS + 40)])
    result = g.result()
    assert len(result.acted) == MAX_STREAM_FINDINGS
    assert result.verdict.action is Action.REDACT
    assert f"guard:findings_truncated:{MAX_STREAM_FINDINGS}" in result.verdict.reasons
    assert key not in out and out.count(REDACTION) == MAX_STREAM_FINDINGS + 40


def test_invisible_padding_longer_than_the_cap_is_bounded() -> None:
    """Look-behind counts visible characters but never keeps more than 16 windows of text."""
    svc = GuardService(GuardSettings(input=[], output=["secrets"], stream_window_chars=16))
    g = svc.stream(T)
    for _ in range(200):
        g.feed("0", "\u200b" * 50)
    ch = g._channels["0"]
    assert g.window == 128  # widened to what the secrets detector needs
    assert len(ch.src) <= (g.window + g.holdback) * 16 + 50


@given(
    text=st.text(alphabet=st.sampled_from("ab \u200b\u2060\ufeff\u00ad"), max_size=80),
    count=st.integers(0, 40),
    floor=st.integers(0, 80),
)
def test_visible_start_holds_count_visible_characters(text: str, count: int, floor: int) -> None:
    end = len(text)
    floor = min(floor, end)
    i = _visible_start(text, end, count, floor)

    def counts(j: int) -> bool:  # a letter, or a space that does not run on into another
        return text[j] in "ab" or (text[j] == " " and text[j + 1 : j + 2] != " ")

    visible = sum(1 for j in range(i, end) if counts(j))
    assert floor <= i <= end
    assert visible == count or (i == floor and visible < count)
    if i > floor and count > 0:
        assert counts(i)  # the shortest such slice starts at a character that counts


def test_a_match_that_more_text_undoes_is_neither_redacted_nor_recorded() -> None:
    """A Hugging Face token has at most 40 letters: split after 40, the first chunk holds a match,
    the second makes it a longer word that is no token. As in the unary scan, nothing is redacted or
    recorded (the held-back text is judged afresh)."""
    svc = secrets()
    word = "hf_" + "abcdefghij" * 4 + "klm"
    text = f"see {word} end"
    assert svc.scan([text], Direction.OUTPUT, T).acted == ()
    g = svc.stream(T)
    cut = text.index(word) + 43
    out, _ = feed_all(g, [text[:cut], text[cut:]])
    assert out == text
    assert g.result().acted == ()
