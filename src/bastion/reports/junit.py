"""JUnit XML: one test case per scanned target, failed when a finding reaches ``fail_on``.

CI systems (GitLab, Jenkins, Azure DevOps) show these as test results. A target that could not be
analysed is an ``<error>``, never a pass.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bastion.domain.findings import Severity
from bastion.domain.reports import ScanReport
from bastion.reports.interface import formats


@formats.register("junit")
def render_junit(report: ScanReport, *, fail_on: Severity = Severity.LOW) -> str:
    """Render ``report`` as a JUnit XML document."""
    failures = errors = 0
    suite = ET.Element("testsuite", name=f"bastion.{report.scanner}", timestamp=report.started_at.isoformat())
    per_case = report.duration_s / max(len(report.results), 1)
    for r in report.results:
        case = ET.SubElement(suite, "testcase", classname=f"bastion.{report.scanner}", name=r.target)
        case.set("time", f"{per_case:.6f}")
        if r.error:
            errors += 1
            ET.SubElement(case, "error", message="not analysed", type="scan_error").text = r.error
            continue
        bad = [f for f in r.findings if f.severity.at_least(fail_on)]
        if bad:
            failures += 1
            worst = max(bad, key=lambda f: f.severity.rank)
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{len(bad)} finding(s), worst {worst.severity.value}",
                type=worst.type,
            )
            failure.text = "\n".join(
                f"[{f.severity.value}] {f.type}: {f.message}" + (f" ({f.location})" if f.location else "")
                for f in bad
            )
        others = [f for f in r.findings if not f.severity.at_least(fail_on)]
        if others:
            ET.SubElement(case, "system-out").text = "\n".join(
                f"[{f.severity.value}] {f.type}: {f.message}" for f in others
            )
    suite.set("tests", str(len(report.results)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{report.duration_s:.6f}")
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
