"""Test doubles for ``IdentityService``'s audit sink and clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bastion.domain.events import AuditEvent, EventTag


class ListSink:
    """An audit sink that keeps every event in order."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> object:
        self.events.append(event)
        return len(self.events)

    def tags(self) -> list[EventTag]:
        return [e.tag for e in self.events]

    def last(self) -> AuditEvent:
        return self.events[-1]


class Clock:
    """A wall clock and a monotonic clock that move only when told to, together."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.mono = 1000.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float = 0.0, *, days: float = 0.0) -> None:
        step = timedelta(seconds=seconds, days=days)
        self.now += step
        self.mono += step.total_seconds()
