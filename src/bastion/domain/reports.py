"""The outcome of an offline scan, independent of how it is rendered (table, JSON, SARIF, JUnit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bastion.domain.findings import Finding, Severity


@dataclass(frozen=True, slots=True)
class TargetResult:
    """What one scanned target (a file, an archive member, a prompt) produced."""

    target: str
    findings: tuple[Finding, ...] = ()
    error: str | None = None  # set when the target could not be fully analysed (never "clean")
    digest: str | None = None  # sha256 hex of the target, where it is a file
    size: int | None = None


@dataclass(frozen=True, slots=True)
class ScanReport:
    """A whole scan: the tool, when it ran, and one result per target."""

    scanner: str
    started_at: datetime
    duration_s: float
    results: tuple[TargetResult, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for r in self.results for f in r.findings)

    def worst_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def fails(self, threshold: Severity) -> bool:
        """True when any finding reaches ``threshold`` or any target could not be analysed."""
        return any(r.error for r in self.results) or any(
            f.severity.at_least(threshold) for f in self.findings
        )
