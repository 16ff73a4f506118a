"""SARIF 2.1.0 output for GitHub code scanning and other SARIF consumers.

Each finding type becomes a rule; ``security-severity`` (a CVSS-like number GitHub uses to sort
alerts) is derived from the severity. Targets that could not be analysed become tool notifications
and an error-level result, so that a broken file never looks clean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bastion.domain.findings import Finding, Severity
from bastion.domain.reports import ScanReport, TargetResult
from bastion.reports.interface import formats
from bastion.version import __version__

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.INFO: "note",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
_SECURITY_SEVERITY = {
    Severity.INFO: "0.0",
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.5",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}
SCAN_ERROR_RULE = "bastion.scan_error"


def _uri(target: str) -> str:
    p = Path(target)
    return p.as_posix() if not p.is_absolute() else p.as_uri()


def _location(result: TargetResult, finding: Finding | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(result.target)}}
    if finding is not None and finding.spans:
        span = finding.spans[0]
        physical["region"] = {"charOffset": span.start, "charLength": span.end - span.start}
    loc: dict[str, Any] = {"physicalLocation": physical}
    if finding is not None and finding.location:
        loc["logicalLocations"] = [{"fullyQualifiedName": finding.location}]
    return loc


def _rule(finding: Finding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": finding.type,
        "name": finding.type.replace(".", "_"),
        "shortDescription": {"text": finding.type},
        "defaultConfiguration": {"level": _LEVEL[finding.severity]},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[finding.severity],
            "tags": ["security", *finding.controls],
        },
    }
    if finding.hint:
        rule["help"] = {"text": finding.hint}
    return rule


def report_to_sarif(report: ScanReport) -> dict[str, Any]:
    """The SARIF log as a dict."""
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    worst: dict[str, Finding] = {}
    for r in report.results:
        if r.error:
            rules.setdefault(
                SCAN_ERROR_RULE,
                {
                    "id": SCAN_ERROR_RULE,
                    "shortDescription": {"text": "Target could not be fully analysed"},
                    "defaultConfiguration": {"level": "error"},
                    "properties": {"security-severity": "7.0", "tags": ["security"]},
                },
            )
            results.append(
                {
                    "ruleId": SCAN_ERROR_RULE,
                    "level": "error",
                    "message": {"text": f"not analysed (treated as unsafe): {r.error}"},
                    "locations": [_location(r, None)],
                }
            )
            notifications.append({"level": "error", "message": {"text": f"{r.target}: {r.error}"}})
        for f in r.findings:
            # A rule's default level is that of its worst finding.
            if f.type not in worst or worst[f.type].severity.rank < f.severity.rank:
                worst[f.type] = f
            results.append(
                {
                    "ruleId": f.type,
                    "level": _LEVEL[f.severity],
                    "message": {"text": f.message},
                    "locations": [_location(r, f)],
                    "properties": {
                        "severity": f.severity.value,
                        "score": round(f.score, 4),
                        "detector": f.detector,
                        **({"controls": list(f.controls)} if f.controls else {}),
                    },
                }
            )
    rules.update({t: _rule(f) for t, f in worst.items()})
    rule_list = list(rules.values())
    index = {rule["id"]: i for i, rule in enumerate(rule_list)}
    for res in results:
        res["ruleIndex"] = index[res["ruleId"]]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bastion",
                        "semanticVersion": __version__,
                        "informationUri": "https://github.com/bastion-ai/bastion",
                        "rules": rule_list,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not notifications,
                        "startTimeUtc": report.started_at.isoformat(),
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
                "properties": {"scanner": report.scanner},
            }
        ],
    }


@formats.register("sarif")
def render_sarif(report: ScanReport, *, fail_on: Severity = Severity.LOW) -> str:
    """Render ``report`` as a SARIF 2.1.0 log."""
    return json.dumps(report_to_sarif(report), indent=2, ensure_ascii=False) + "\n"
