"""The JSON report: a stable, documented shape for scripts (``schema_version`` 1)."""

from __future__ import annotations

import json
from typing import Any

from bastion.domain.findings import Severity
from bastion.domain.reports import ScanReport
from bastion.reports.interface import formats
from bastion.version import __version__


def report_to_dict(report: ScanReport) -> dict[str, Any]:
    """The report as plain JSON-ready data."""
    worst = report.worst_severity()
    return {
        "schema_version": 1,
        "tool": {"name": "bastion", "version": __version__, "scanner": report.scanner},
        "started_at": report.started_at.isoformat(),
        "duration_s": round(report.duration_s, 6),
        "summary": {
            "targets": len(report.results),
            "findings": len(report.findings),
            "errors": sum(1 for r in report.results if r.error),
            "worst_severity": worst.value if worst else None,
        },
        "results": [
            {
                "target": r.target,
                "digest": r.digest,
                "size": r.size,
                "error": r.error,
                "findings": [f.to_dict() for f in r.findings],
            }
            for r in report.results
        ],
        "metadata": dict(report.metadata),
    }


@formats.register("json")
def render_json(report: ScanReport, *, fail_on: Severity = Severity.LOW) -> str:
    """Render ``report`` as indented JSON."""
    return json.dumps(report_to_dict(report), indent=2, ensure_ascii=False) + "\n"
