"""Rendering scan reports in the formats people and CI tools expect (JSON, SARIF 2.1.0, JUnit XML)."""

from __future__ import annotations

from bastion.reports.interface import formats, render

__all__ = ["formats", "render"]
