"""Findings and verdicts: what every detector and scanner reports.

A detection is a :class:`Verdict`, never an exception. A detector that failed is listed in
``Verdict.errors`` and, by default, blocks (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

Scalar = str | int | float | bool | None


class Severity(StrEnum):
    """How bad a finding is; ordered from ``info`` to ``critical``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info … 4 for critical, for comparisons and ``--fail-on``."""
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        """True when this severity is ``other`` or worse."""
        return self.rank >= other.rank

    @classmethod
    def from_score(cls, score: float) -> Severity:
        """A default mapping from a 0–1 score to a severity."""
        if score >= 0.9:
            return cls.HIGH
        if score >= 0.7:
            return cls.MEDIUM
        if score >= 0.4:
            return cls.LOW
        return cls.INFO


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class Action(StrEnum):
    """What a guard does with a request or response; ordered by strictness."""

    ALLOW = "allow"
    FLAG = "flag"
    REDACT = "redact"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]

    @staticmethod
    def strictest(actions: Iterable[Action]) -> Action:
        """The strictest of ``actions`` (``allow`` when empty)."""
        return max(actions, key=lambda a: a.rank, default=Action.ALLOW)


_ACTION_RANK = {a: i for i, a in enumerate(Action)}


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range ``[start, end)`` in the scanned text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"invalid span [{self.start}, {self.end})")


def _frozen(meta: Mapping[str, Scalar] | None) -> Mapping[str, Scalar]:
    return MappingProxyType(dict(meta or {}))


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector or scanner found.

    ``type`` is a dotted, stable identifier (``prompt_injection``, ``pii.email``,
    ``pickle.unsafe_global``). ``message`` explains it briefly and must never contain the matched
    secret or personal data itself.
    """

    detector: str
    type: str
    score: float
    severity: Severity
    message: str
    spans: tuple[Span, ...] = ()
    location: str | None = None
    hint: str | None = None
    controls: tuple[str, ...] = ()
    metadata: Mapping[str, Scalar] = field(default_factory=lambda: _frozen(None))

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be within [0, 1], got {self.score}")
        object.__setattr__(self, "metadata", _frozen(self.metadata))

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (spans as ``[start, end]`` pairs)."""
        out: dict[str, object] = {
            "detector": self.detector,
            "type": self.type,
            "score": round(self.score, 4),
            "severity": self.severity.value,
            "message": self.message,
            "spans": [[s.start, s.end] for s in self.spans],
        }
        if self.location is not None:
            out["location"] = self.location
        if self.hint is not None:
            out["hint"] = self.hint
        if self.controls:
            out["controls"] = list(self.controls)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    """The combined outcome of running a set of detectors on one text.

    ``errors`` names detectors that failed to run; a verdict with errors is never "passed".
    """

    action: Action
    findings: tuple[Finding, ...] = ()
    errors: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        """The highest finding score (0 when nothing was found)."""
        return max((f.score for f in self.findings), default=0.0)

    @property
    def passed(self) -> bool:
        """True only when every detector ran and the action is ``allow`` or ``flag``."""
        return not self.errors and self.action in (Action.ALLOW, Action.FLAG)

    def worst_severity(self) -> Severity | None:
        """The worst severity among the findings, or ``None``."""
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)
