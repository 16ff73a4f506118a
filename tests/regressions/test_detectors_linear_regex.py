"""Every detector pattern is RE2 (linear time): feed each one pathological input and bound the time.

Inputs that make backtracking engines explode ((a+)+ shapes, long runs of one class followed by a
non-match, nested separators) must finish quickly here.
"""

from __future__ import annotations

import time

import pytest
import re2

from bastion.detectors import canary, decoding, hidden_text, injection_rules, pii, secrets, unsafe_output

PATTERNS = [
    *injection_rules.patterns(),
    *pii.patterns(),
    pii.PHONE_CANDIDATE,
    *secrets.patterns(),
    *hidden_text.patterns(),
    *unsafe_output.patterns(),
    *canary.patterns(),
    decoding.BASE64_PATTERN,
    decoding.HEX_PATTERN,
    decoding.TAG_PATTERN,
]
N = 50_000
PATHOLOGICAL = [
    "a" * N + "!",
    "ignore " * (N // 7) + "!",
    "1" * N + "x",
    "1 " * (N // 2),
    "a@" * (N // 2),
    "A" * N + "=",
    "http://" + "a:" * (N // 2),
    "![" * (N // 2),
    "\x1b[" * (N // 2),
    "аa" * (N // 2),
    "<" * N,
    "-" * N,
]


@pytest.mark.parametrize("pattern", PATTERNS, ids=[f"p{i}" for i in range(len(PATTERNS))])
def test_pattern_is_linear_on_pathological_input(pattern: str) -> None:
    options = re2.Options()
    options.max_mem = 64 << 20
    options.log_errors = False
    rx = re2.compile(pattern, options)  # raises if the pattern needs backtracking features
    start = time.perf_counter()
    for text in PATHOLOGICAL:
        for _ in rx.finditer(text):
            pass
    assert time.perf_counter() - start < 5.0
