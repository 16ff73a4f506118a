"""The report-format plugin family: a renderer ``(report, *, fail_on) -> str`` turns a :class:`ScanReport` into text."""

from __future__ import annotations

from bastion.domain.findings import Severity
from bastion.domain.reports import ScanReport
from bastion.registry import Registry

#: Renderers by format name; ``bastion scan … --format NAME`` picks one. A renderer is the
#: "factory" of the rendered text, hence ``Registry[str]``.
formats: Registry[str] = Registry("report_formats")


def render(report: ScanReport, fmt: str, *, fail_on: Severity = Severity.LOW) -> str:
    """Render ``report`` as ``fmt`` (``json``, ``sarif`` or ``junit``).

    ``fail_on`` decides which findings count as failures where the format has that notion (JUnit).
    """
    # Importing the built-ins registers them; done here, not at import time of the package.
    from bastion.reports import json_format, junit, sarif  # noqa: F401

    return formats.get(fmt)(report, fail_on=fail_on)
