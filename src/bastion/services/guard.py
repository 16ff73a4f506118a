"""Input and output guards: run the configured detectors and decide allow | flag | redact | block.

The gateway asks :class:`GuardService` about every text of a call (prompts, tool results, model
output). Each finding gets an action from the first matching :class:`~bastion.config.GuardRule`
(by detector, finding type, direction, route, model, team, severity), else ``default_action``.
A detector that raises yields an error in the verdict, which blocks: fail closed. A guard that did
not run is never reported as passed (``Verdict.errors`` names it).

Streams are scanned incrementally by :class:`~bastion.services.stream_guard.StreamGuard`
(:meth:`GuardService.stream`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import bastion.detectors.denylist  # noqa: F401  (registers the built-in deny-list detector)
from bastion.config import GuardRule, GuardSettings
from bastion.detectors.interface import Detector, Direction, ScanContext, detectors
from bastion.domain.events import JSONValue
from bastion.domain.findings import Action, Finding, Severity, Span, Verdict
from bastion.errors import ConfigError
from bastion.registry import Registry

if TYPE_CHECKING:
    from bastion.services.stream_guard import StreamGuard

REDACTION = "[REDACTED]"
#: The error a scan that ran out of time (``guards.scan_timeout_s``) is recorded with.
SCAN_TIMEOUT = "scan_timeout"
_INPUT_CONTEXT = ScanContext(direction=Direction.INPUT)
_OUTPUT_CONTEXT = ScanContext(direction=Direction.OUTPUT)


@dataclass(frozen=True, slots=True)
class GuardTarget:
    """Where a text is going: the facts rules may match on."""

    route: str
    model: str
    team: str | None = None


@dataclass(frozen=True, slots=True)
class ActedFinding:
    """A finding, the text it was found in (index) and the action it was given."""

    finding: Finding
    action: Action
    text_index: int = 0

    def to_audit(self) -> dict[str, JSONValue]:
        """Types, spans and actions only: never content."""
        return {
            "detector": self.finding.detector,
            "type": self.finding.type,
            "severity": self.finding.severity.value,
            "action": self.action.value,
            "text": self.text_index,
            "spans": [[s.start, s.end] for s in self.finding.spans],
        }


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The verdict over a set of texts, and the texts after redaction (``None`` when unchanged)."""

    verdict: Verdict
    acted: tuple[ActedFinding, ...] = ()
    redacted: tuple[str, ...] | None = None

    @property
    def blocked(self) -> bool:
        return self.verdict.action is Action.BLOCK


PASSED = GuardResult(Verdict(Action.ALLOW))


def redact(text: str, spans: Sequence[Span], *, start_at: int = 0, marker: str = REDACTION) -> str:
    """``text`` with every span (clipped to ``start_at``) replaced by ``marker``; overlaps merged."""
    merged: list[list[int]] = []
    for s in sorted(spans, key=lambda s: s.start):
        a, b = max(s.start, start_at), min(s.end, len(text))
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in reversed(merged):
        text = text[:a] + marker + text[b:]
    return text


class GuardPolicy:
    """Decides the action for one finding from the configured rules."""

    def __init__(self, rules: Sequence[GuardRule], default: Action) -> None:
        self._rules = tuple(rules)
        self._default = default

    def may_withhold(self, detector_names: Sequence[str]) -> bool:
        """True when a finding of one of ``detector_names`` could be given ``redact`` or ``block``:
        then a stream must hold text back until a match is complete."""
        withholding = (Action.REDACT, Action.BLOCK)
        return self._default in withholding or any(
            Action(r.action) in withholding and (r.detector is None or r.detector in detector_names)
            for r in self._rules
        )

    def action_for(self, finding: Finding, direction: Direction, target: GuardTarget) -> Action:
        """The first matching rule's action, else the default."""
        for rule in self._rules:
            if _matches(rule, finding, direction, target):
                return Action(rule.action)
        return self._default


def _matches(rule: GuardRule, f: Finding, direction: Direction, t: GuardTarget) -> bool:
    if rule.detector is not None and rule.detector != f.detector:
        return False
    if rule.finding_type is not None:
        ft = rule.finding_type
        if not (f.type == ft or (ft.endswith(".") and f.type.startswith(ft))):
            return False
    if rule.direction is not None and rule.direction != direction.value:
        return False
    if rule.route is not None and rule.route != t.route:
        return False
    if rule.model is not None and rule.model != t.model:
        return False
    if rule.team is not None and rule.team != t.team:
        return False
    return rule.min_severity is None or f.severity.at_least(Severity(rule.min_severity))


class GuardService:
    """Runs the detectors named in ``gateway.guards`` and applies the action rules."""

    def __init__(self, settings: GuardSettings, registry: Registry[Detector] = detectors) -> None:
        self.settings = settings
        self.policy = GuardPolicy(settings.rules, Action(settings.default_action))
        built: dict[str, Detector] = {}
        for name in {*settings.input, *settings.output}:
            options = settings.options.get(name, {})
            try:
                built[name] = registry.create(name, **options)
            except TypeError as e:
                raise ConfigError(f"gateway.guards.options.{name}: {e}") from e
        unknown = set(settings.options) - set(built)
        if unknown:
            raise ConfigError(
                f"gateway.guards.options names detectors that are not enabled: {sorted(unknown)}",
                hint="List them under gateway.guards.input or gateway.guards.output, or drop their options.",
            )
        self.input_detectors = tuple(built[n] for n in settings.input)
        self.output_detectors = tuple(built[n] for n in settings.output)

    @property
    def has_input(self) -> bool:
        return bool(self.input_detectors)

    @property
    def has_output(self) -> bool:
        return bool(self.output_detectors)

    def detectors_for(self, direction: Direction) -> tuple[Detector, ...]:
        return self.input_detectors if direction is Direction.INPUT else self.output_detectors

    def scan(
        self,
        texts: Sequence[str],
        direction: Direction,
        target: GuardTarget,
        context: ScanContext | None = None,
    ) -> GuardResult:
        """Run every detector of ``direction`` on each text and combine the outcome.

        ``context`` carries the request's system prompt, canary and allowed hosts (output guards).
        """
        dets = self.detectors_for(direction)
        if not dets:
            return PASSED
        acted: list[ActedFinding] = []
        errors: list[str] = []
        redacted = list(texts)
        changed = False
        for i, text in enumerate(texts):
            findings = run_detectors(dets, text, direction, errors, context)
            spans: list[Span] = []
            for f in findings:
                action = self.policy.action_for(f, direction, target)
                acted.append(ActedFinding(f, action, i))
                if action is Action.REDACT:
                    spans.extend(f.spans)
            if spans:
                redacted[i] = redact(text, spans)
                changed = True
        verdict = verdict_of(acted, errors)
        return GuardResult(verdict, tuple(acted), tuple(redacted) if changed else None)

    def timed_out(self) -> GuardResult:
        """The result of a scan that did not finish in time: it blocks, as a failing detector does."""
        return GuardResult(verdict_of([], [SCAN_TIMEOUT]))

    @functools.cached_property
    def stream_holdback(self) -> int:
        """What a stream holds back when a rule may block or redact: ``stream_window_chars``,
        widened to an output detector's ``min_stream_holdback`` (by default its
        ``min_stream_window``), e.g. the deny-list's longest term."""
        declared = (
            getattr(d, "min_stream_holdback", getattr(d, "min_stream_window", 0))
            for d in self.output_detectors
        )
        return max(self.settings.stream_window_chars, *declared)

    @functools.cached_property
    def stream_window(self) -> int:
        """A stream's look-behind: the hold-back, widened to an output detector's
        ``min_stream_window`` (e.g. ``unsafe_output``'s images, whose alt text comes before the URL)."""
        declared = (getattr(d, "min_stream_window", 0) for d in self.output_detectors)
        return max(self.stream_holdback, *declared)

    def stream(self, target: GuardTarget, context: ScanContext | None = None) -> StreamGuard:
        """An incremental output guard for one streamed response."""
        from bastion.services.stream_guard import StreamGuard  # it builds on this module

        return StreamGuard(
            self,
            target,
            window=self.stream_window,
            holdback=self.stream_holdback if self.policy.may_withhold(self.settings.output) else 0,
            context=context,
        )


def run_detectors(
    dets: Sequence[Detector],
    text: str,
    direction: Direction,
    errors: list[str],
    context: ScanContext | None = None,
) -> list[Finding]:
    if context is None:
        context = _INPUT_CONTEXT if direction is Direction.INPUT else _OUTPUT_CONTEXT
    out: list[Finding] = []
    for d in dets:
        try:
            out.extend(d.scan(text, context))
        except Exception:  # noqa: BLE001  a failing detector must block, never crash the call
            if d.name not in errors:
                errors.append(d.name)
    return out


def verdict_of(acted: Sequence[ActedFinding], errors: Sequence[str]) -> Verdict:
    action = Action.strictest(a.action for a in acted)
    reasons = [f"{a.finding.detector}:{a.finding.type}:{a.action.value}" for a in acted]
    if errors:
        action = Action.BLOCK
        reasons.extend(f"{name}:error:block" for name in errors)
    return Verdict(
        action=action,
        findings=tuple(a.finding for a in acted),
        errors=tuple(errors),
        reasons=tuple(dict.fromkeys(reasons)),
    )
