"""The detector plugin contract.

A detector looks at one text and returns findings. It is deterministic, never touches the
network, is safe to call from several threads at once, and bounds its own time on any input
(long texts are scanned in windows). It must not put the matched secret or personal data into a
finding's message or metadata: spans point at it instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bastion.domain.findings import Finding
from bastion.registry import Registry


class Direction(StrEnum):
    """Which side of a model call a text comes from."""

    INPUT = "input"  # a prompt, a retrieved document, a tool result sent to the model
    OUTPUT = "output"  # what the model produced


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a detector may know about the text besides the text itself."""

    direction: Direction = Direction.INPUT
    system_prompt: str | None = None
    canary: str | None = None
    allowed_hosts: Sequence[str] = ()
    options: Mapping[str, object] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    """A registered text detector.

    A detector whose matches can be long may also declare ``min_stream_window`` (an int): stream
    guards widen their look-behind window to it, so a match split over chunks is still seen whole.
    They also hold back that much text (so no part of a match leaves before it is complete) unless
    the detector declares a smaller ``min_stream_holdback``.
    """

    name: str
    directions: frozenset[Direction]

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        """Findings for ``text``; empty when nothing was found. May raise only on a bug."""
        ...


#: The registry every detector registers in; gateway guards and the CLI choose by name.
detectors: Registry[Detector] = Registry("detectors")
