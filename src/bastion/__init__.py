"""Bastion: a self-hosted security platform for AI systems.

The public, in-process API is re-exported here lazily so that ``import bastion`` stays cheap:

    from bastion import scan_prompt, scan_output, scan_document
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.version import __version__

__all__ = ["__version__", "scan_document", "scan_output", "scan_prompt"]

if TYPE_CHECKING:
    from bastion.detectors.pipeline import scan_document, scan_output, scan_prompt

_LAZY = {"scan_prompt", "scan_output", "scan_document"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from bastion.detectors import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'bastion' has no attribute {name!r}")
