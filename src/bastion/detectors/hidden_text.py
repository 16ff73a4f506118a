"""Hidden-content detector: invisible Unicode, bidi overrides, mixed-script homoglyphs, ANSI escapes.

Registry name: ``hidden_text`` (both directions). Finding types:
``hidden_text.unicode_tags`` (ASCII smuggled in the tag block U+E0000–E007F),
``hidden_text.zero_width`` (zero-width characters between visible ASCII text),
``hidden_text.bidi_control`` (Trojan-Source style reordering), ``hidden_text.homoglyph`` (a word
mixing Latin with Cyrillic/Greek look-alikes), ``hidden_text.ansi_escape`` (terminal control
sequences) and ``hidden_text.control_char`` (other C0/C1 controls). One linear pass over the text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache

import re2

from bastion.detectors.interface import Direction, ScanContext
from bastion.detectors.normalize import BIDI_CONTROLS, INVISIBLE
from bastion.domain.findings import Finding, Severity, Span

NAME = "hidden_text"
MAX_FINDINGS_PER_TYPE = 20

ANSI_PATTERN = r"\x1b(?:\[[0-9;?]{0,32}[ -/]{0,4}[@-~]|\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)|[@-Z\\-_])"
TAG_RUN_PATTERN = "[\U000e0000-\U000e007f]+"
MIXED_WORD_PATTERN = r"[\p{Latin}\p{Cyrillic}\p{Greek}]*(?:\p{Latin}[\p{Latin}\p{Cyrillic}\p{Greek}]*[\p{Cyrillic}\p{Greek}]|[\p{Cyrillic}\p{Greek}][\p{Latin}\p{Cyrillic}\p{Greek}]*\p{Latin})[\p{Latin}\p{Cyrillic}\p{Greek}]*"
_ZERO_WIDTH = INVISIBLE - BIDI_CONTROLS


@cache
def _rx() -> dict[str, re2._Regexp]:
    return {
        "ansi": re2.compile(ANSI_PATTERN),
        "tags": re2.compile(TAG_RUN_PATTERN),
        "mixed": re2.compile(MIXED_WORD_PATTERN),
    }


def _finding(ftype: str, score: float, message: str, spans: list[Span], count: int) -> Finding:
    return Finding(
        detector=NAME,
        type=f"hidden_text.{ftype}",
        score=score,
        severity=Severity.from_score(score) if score < 0.9 else Severity.HIGH,
        message=message,
        spans=tuple(spans[:MAX_FINDINGS_PER_TYPE]),
        metadata={"count": count},
    )


def _char_findings(text: str) -> list[Finding]:
    zero: list[Span] = []
    bidi: list[Span] = []
    ctrl: list[Span] = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch in BIDI_CONTROLS:
            bidi.append(Span(i, i + 1))
        elif ch in _ZERO_WIDTH:
            if ch == "\ufeff" and i == 0:
                continue  # a byte-order mark at the start is harmless
            if ch in "\u200c\u200d":  # joiners are legitimate inside emoji and many scripts
                before = text[i - 1] if i else " "
                after = text[i + 1] if i + 1 < n else " "
                if not (before.isascii() and after.isascii() and (before.isalnum() or after.isalnum())):
                    continue
            zero.append(Span(i, i + 1))
        elif ch not in "\t\n\r\x1b" and unicodedata.category(ch) == "Cc":
            ctrl.append(Span(i, i + 1))
    out: list[Finding] = []
    if zero:
        out.append(
            _finding("zero_width", 0.7, "invisible zero-width characters inside the text", zero, len(zero))
        )
    if bidi:
        out.append(
            _finding("bidi_control", 0.8, "bidirectional override/isolate characters", bidi, len(bidi))
        )
    if ctrl:
        out.append(_finding("control_char", 0.4, "non-printing control characters", ctrl, len(ctrl)))
    return out


class HiddenTextDetector:
    """Registered as ``hidden_text``."""

    name = NAME
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        rx = _rx()
        findings: list[Finding] = []
        if "\x1b" in text:
            ansi = [Span(m.start(), m.end()) for m in rx["ansi"].finditer(text)]
            if ansi:
                findings.append(
                    _finding("ansi_escape", 0.7, "ANSI terminal escape sequences", ansi, len(ansi))
                )
        if text.isascii():
            return findings + _char_findings(text) if any(ord(c) < 32 for c in text) else findings
        tags = [Span(m.start(), m.end()) for m in rx["tags"].finditer(text)]
        if tags:
            findings.append(
                _finding(
                    "unicode_tags", 0.95, "text hidden in invisible Unicode tag characters", tags, len(tags)
                )
            )
        mixed = [Span(m.start(), m.end()) for m in rx["mixed"].finditer(text)]
        if mixed:
            findings.append(
                _finding(
                    "homoglyph", 0.7, "words mixing Latin with Cyrillic/Greek look-alikes", mixed, len(mixed)
                )
            )
        findings.extend(_char_findings(text))
        return findings


def patterns() -> tuple[str, ...]:
    """Every pattern (for the linear-time test)."""
    return (ANSI_PATTERN, TAG_RUN_PATTERN, MIXED_WORD_PATTERN)
