from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.detectors.denylist import DenyListDetector, fold
from bastion.detectors.interface import ScanContext, detectors
from bastion.errors import ConfigError

CTX = ScanContext()


def test_registered_by_name() -> None:
    d = detectors.create("denylist", terms=["zeus"])
    assert d.name == "denylist"
    assert [f.type for f in d.scan("Project ZEUS", CTX)] == ["denylist.term"]


def test_spans_point_into_original_text_through_obfuscation() -> None:
    d = DenyListDetector(["project zeus"])
    text = "see ＰＲＯＪＥＣＴ ze\u200bus now"  # full-width letters and a zero-width space
    (f,) = d.scan(text, CTX)
    s = f.spans[0]
    assert text[s.start : s.end] == "ＰＲＯＪＥＣＴ ze\u200bus"
    assert "zeus" not in f.message.lower()
    assert f.metadata["term_index"] == 0


def test_whole_word_option() -> None:
    assert DenyListDetector(["cat"], whole_word=True).scan("concatenate", CTX) == []
    assert len(DenyListDetector(["cat"], whole_word=True).scan("a cat.", CTX)) == 1
    assert len(DenyListDetector(["cat"]).scan("concatenate", CTX)) == 1


@pytest.mark.parametrize("terms", [["ok", ""], "notalist", ["x" * 300], [3]])
def test_bad_options_are_config_errors(terms: object) -> None:
    with pytest.raises(ConfigError):
        DenyListDetector(terms)  # type: ignore[arg-type]


def test_bad_severity() -> None:
    with pytest.raises(ConfigError, match="severity"):
        DenyListDetector(["a"], severity="extreme")


@settings(max_examples=200)
@given(st.text(max_size=60), st.text(min_size=1, max_size=40))
def test_inserted_term_is_always_found(noise: str, term: str) -> None:
    folded = fold(term)[0]
    if not folded.strip():
        return
    d = DenyListDetector([term])
    text = noise[: len(noise) // 2] + term + noise[len(noise) // 2 :]
    findings = d.scan(text, CTX)
    assert findings, "a deny-listed term inside a text must be found"
    for f in findings:
        s = f.spans[0]
        assert 0 <= s.start < s.end <= len(text)
