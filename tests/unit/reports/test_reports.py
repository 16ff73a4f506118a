from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from bastion.domain.findings import Finding, Severity, Span
from bastion.domain.reports import ScanReport, TargetResult
from bastion.errors import ConfigError
from bastion.reports import render


def _report() -> ScanReport:
    high = Finding(
        "pickle",
        "pickle.unsafe_global",
        1.0,
        Severity.CRITICAL,
        "calls os.system",
        location="offset 12",
        hint="Do not load this file.",
        controls=("OWASP-LLM03",),
    )
    low = Finding("pii", "pii.email", 0.5, Severity.LOW, "e-mail address", spans=(Span(3, 20),))
    return ScanReport(
        scanner="model",
        started_at=datetime(2026, 11, 26, tzinfo=UTC),
        duration_s=0.5,
        results=(
            TargetResult("a.pkl", (high,), digest="ab" * 32, size=10),
            TargetResult("b.txt", (low,)),
            TargetResult("clean.bin"),
            TargetResult("broken.pt", error="truncated zip"),
        ),
    )


def test_json_report_has_summary_and_every_target() -> None:
    data = json.loads(render(_report(), "json"))
    assert data["summary"] == {"targets": 4, "findings": 2, "errors": 1, "worst_severity": "critical"}
    assert [r["target"] for r in data["results"]] == ["a.pkl", "b.txt", "clean.bin", "broken.pt"]
    assert data["results"][0]["findings"][0]["controls"] == ["OWASP-LLM03"]


def test_sarif_has_rules_levels_and_an_error_for_unanalysed_targets() -> None:
    sarif = json.loads(render(_report(), "sarif"))
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert set(rule_ids) == {"pickle.unsafe_global", "pii.email", "bastion.scan_error"}
    by_rule = {r["ruleId"]: r for r in run["results"]}
    assert by_rule["pickle.unsafe_global"]["level"] == "error"
    assert by_rule["pii.email"]["locations"][0]["physicalLocation"]["region"] == {
        "charOffset": 3,
        "charLength": 17,
    }
    assert by_rule["bastion.scan_error"]["level"] == "error"
    assert run["invocations"][0]["executionSuccessful"] is False
    for res in run["results"]:
        assert rule_ids[res["ruleIndex"]] == res["ruleId"]


def test_junit_fails_targets_at_threshold_and_errors_unanalysed() -> None:
    root = ET.fromstring(render(_report(), "junit", fail_on=Severity.HIGH))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "4"
    assert suite.get("failures") == "1"  # only the critical one reaches HIGH
    assert suite.get("errors") == "1"
    root_low = ET.fromstring(render(_report(), "junit", fail_on=Severity.LOW))
    suite_low = root_low.find("testsuite")
    assert suite_low is not None and suite_low.get("failures") == "2"


def test_unknown_format_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError) as exc:
        render(_report(), "pdf")
    assert "json" in exc.value.diagnostics() and "sarif" in exc.value.diagnostics()
