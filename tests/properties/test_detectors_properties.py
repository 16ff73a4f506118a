"""Hypothesis: no input crashes a detector, breaks span bounds or exceeds its time bound."""

from __future__ import annotations

import itertools
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.detectors import load_builtins
from bastion.detectors.decoding import find_payloads
from bastion.detectors.interface import Direction, ScanContext, detectors
from bastion.detectors.normalize import fold
from bastion.detectors.windows import windows

OPTIONS: dict[str, dict[str, object]] = {"denylist": {"terms": ["project zeus"]}}
DETECTORS = {n: detectors.create(n, **OPTIONS.get(n, {})) for n in load_builtins()}
CTX = ScanContext(
    direction=Direction.OUTPUT, system_prompt="You are a bot. Keep secrets.", canary="bst-canary-ab"
)

# Text with the characters detectors care about: tags, zero-width, bidi, homoglyphs, digits, URLs, escapes.
ALPHABET = st.sampled_from(
    [
        *"abcxyzIGNOREignore0123456789 .:/@-_=+!?[]()<>{}\"'\n\t\x1b",
        "\u200b",
        "\u202e",
        "а",
        "е",
        "Ω",
        "é",
        "中",
        "\U000e0041",
        "\ufeff",
        "\x07",
        "https://",
        "![a](",
        "sk-",
    ]
)
TEXTS = st.lists(ALPHABET, max_size=400).map("".join) | st.text(max_size=300)


@settings(max_examples=60, deadline=None)
@given(TEXTS)
def test_no_detector_crashes_and_spans_stay_in_bounds(text: str) -> None:
    for name, det in DETECTORS.items():
        start = time.perf_counter()
        for f in det.scan(text, CTX):
            assert 0.0 <= f.score <= 1.0, name
            assert all(0 <= s.start <= s.end <= len(text) for s in f.spans), name
        assert time.perf_counter() - start < 2.0, name


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_fold_maps_back_into_the_original(text: str) -> None:
    folded = fold(text)
    for i in range(len(folded.text)):
        span = folded.span(i, i + 1)
        assert 0 <= span.start <= span.end <= len(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 20_000), st.integers(1, 3000), st.integers(0, 2999))
def test_windows_cover_the_text(length: int, size: int, overlap: int) -> None:
    if overlap >= size:
        overlap = size - 1
    spans = list(windows(length, size, overlap))
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(b - a <= size for a, b in spans)
    assert all(n[0] <= p[1] for p, n in itertools.pairwise(spans))


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ABCDEFabcdef0123456789+/=\\x :", max_size=500))
def test_payload_decoding_never_crashes(text: str) -> None:
    for p in find_payloads(text):
        assert 0 <= p.span.start < p.span.end <= len(text)
