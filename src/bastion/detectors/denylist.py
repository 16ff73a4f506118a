"""A configurable deny-list detector: the one simple built-in guard.

Matching is case-insensitive and sees through Unicode compatibility forms (NFKC: full-width letters,
ligatures) and invisible format characters (zero-width spaces, joiners, BOM, soft hyphen) that are
often inserted to slip a word past a filter. Spans always point into the original text. Findings
name the term by its index in the list, never by the term itself (a deny-list may hold secrets).

Options (``gateway.guards.options.denylist``)::

    terms: ["project zeus", "internal only"]   # required, at most 10,000 terms of <= 256 chars
    whole_word: false                          # true: match only at word boundaries
    severity: high
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bastion.detectors.interface import Detector, Direction, ScanContext, detectors
from bastion.domain.findings import Finding, Severity, Span
from bastion.errors import ConfigError

MAX_TERMS = 10_000
MAX_TERM_CHARS = 256


def _fold_char(ch: str) -> str:
    """The folded form of one character ('' for invisible format characters)."""
    if unicodedata.category(ch) == "Cf":
        return ""
    if ch.isascii():
        return ch.lower()
    return unicodedata.normalize("NFKC", ch).casefold()


def fold(text: str) -> tuple[str, list[int]]:
    """``text`` folded for matching, and for each folded character the index of its source character."""
    out: list[str] = []
    index: list[int] = []
    if text.isascii():
        return text.lower(), list(range(len(text)))
    for i, ch in enumerate(text):
        f = _fold_char(ch)
        out.append(f)
        index.extend([i] * len(f))
    return "".join(out), index


class DenyListDetector:
    """Finds any of a configured list of terms in a text."""

    name = "denylist"
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})

    def __init__(self, terms: Sequence[str], *, whole_word: bool = False, severity: str = "high") -> None:
        if isinstance(terms, str) or not isinstance(terms, Sequence):
            raise ConfigError("guards.options.denylist.terms must be a list of strings")
        folded: list[str] = []
        for i, term in enumerate(terms):
            if not isinstance(term, str) or not term.strip():
                raise ConfigError(f"guards.options.denylist.terms[{i}] must be a non-empty string")
            if len(term) > MAX_TERM_CHARS:
                raise ConfigError(
                    f"guards.options.denylist.terms[{i}] is longer than {MAX_TERM_CHARS} characters"
                )
            folded.append(fold(term)[0])
        if len(folded) > MAX_TERMS:
            raise ConfigError(f"guards.options.denylist.terms holds more than {MAX_TERMS} terms")
        try:
            self.severity = Severity(severity)
        except ValueError:
            raise ConfigError(
                f"guards.options.denylist.severity: {severity!r} is not one of {[s.value for s in Severity]}"
            ) from None
        self._index = {t: i for i, t in reversed(list(enumerate(folded)))}
        # Longest first so that overlapping terms report the longer match.
        alternatives = "|".join(re.escape(t) for t in sorted(set(folded), key=len, reverse=True))
        pattern = rf"(?<!\w)(?:{alternatives})(?!\w)" if whole_word else f"(?:{alternatives})"
        self._pattern = re.compile(pattern) if folded else None
        #: The longest folded term: stream guards widen their look-behind window to it.
        self.min_stream_window = max((len(t) for t in folded), default=0)

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        """One finding per occurrence of a deny-listed term."""
        if self._pattern is None or not text:
            return ()
        folded, index = fold(text)
        findings: list[Finding] = []
        for m in self._pattern.finditer(folded):
            start, end = index[m.start()], index[m.end() - 1] + 1
            term_no = self._index[m.group(0)]
            findings.append(
                Finding(
                    detector=self.name,
                    type="denylist.term",
                    score=1.0,
                    severity=self.severity,
                    message=f"deny-listed term #{term_no} found",
                    spans=(Span(start, end),),
                    metadata={"term_index": term_no},
                )
            )
        return findings


def create(terms: Sequence[str] = (), *, whole_word: bool = False, severity: str = "high") -> Detector:
    """Registry factory for ``denylist``."""
    return DenyListDetector(terms, whole_word=whole_word, severity=severity)


detectors.add("denylist", create)
