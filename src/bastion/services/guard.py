"""Input and output guards: run the configured detectors and decide allow | flag | redact | block.

The gateway asks :class:`GuardService` about every text of a call (prompts, tool results, model
output). Each finding gets an action from the first matching :class:`~bastion.config.GuardRule`
(by detector, finding type, direction, route, model, team, severity), else ``default_action``.
A detector that raises yields an error in the verdict, which blocks: fail closed. A guard that did
not run is never reported as passed (``Verdict.errors`` names it).

Streams are scanned incrementally by :class:`StreamGuard` with a bounded look-behind window, so a
term split over two chunks is still found, and the work per chunk stays proportional to
``window + chunk``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import bastion.detectors.denylist  # noqa: F401  (registers the built-in deny-list detector)
from bastion.config import GuardRule, GuardSettings
from bastion.detectors.interface import Detector, Direction, ScanContext, detectors
from bastion.domain.events import JSONValue
from bastion.domain.findings import Action, Finding, Severity, Span, Verdict
from bastion.errors import ConfigError
from bastion.registry import Registry

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
            findings = _run(dets, text, direction, errors, context)
            spans: list[Span] = []
            for f in findings:
                action = self.policy.action_for(f, direction, target)
                acted.append(ActedFinding(f, action, i))
                if action is Action.REDACT:
                    spans.extend(f.spans)
            if spans:
                redacted[i] = redact(text, spans)
                changed = True
        verdict = _verdict(acted, errors)
        return GuardResult(verdict, tuple(acted), tuple(redacted) if changed else None)

    def timed_out(self) -> GuardResult:
        """The result of a scan that did not finish in time: it blocks, as a failing detector does."""
        return GuardResult(_verdict([], [SCAN_TIMEOUT]))

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
        return StreamGuard(
            self,
            target,
            window=self.stream_window,
            holdback=self.stream_holdback if self.policy.may_withhold(self.settings.output) else 0,
            context=context,
        )


def _run(
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


def _verdict(acted: Sequence[ActedFinding], errors: Sequence[str]) -> Verdict:
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


#: At most this many findings of one stream are kept (and reach its ledger event); further findings
#: still act (block, redact) and still give their reasons, so a hostile stream cannot grow the
#: guard's memory or the event without bound.
MAX_STREAM_FINDINGS = 256
#: A match still growing at the release point (a token of unbounded length) keeps the look-behind
#: from its start, but never more than this many windows back: so does padding.
_MAX_WINDOWS_KEPT = 16
#: With a hold-back, text is scanned and released in batches of at least this many characters (a
#: model streams a few characters per event): one scan per batch, not one per event.
RELEASE_BATCH = 32
#: Characters kept before the look-behind only as context (a pattern's \b or look-behind reads
#: them): a match starting there would be judged without its own left context, so it is not.
LEFT_CONTEXT = 32


@functools.cache
def _filler() -> re.Pattern[str]:
    """One character that does not count towards a window: an invisible format character (Unicode
    category Cf, which detectors fold away) or white space followed by more (a run counts once).
    Built on first use."""
    cf = "".join(re.escape(chr(c)) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf")
    return re.compile(f"[{cf}]|\\s(?=\\s)")


def _visible_start(text: str, end: int, count: int, floor: int) -> int:
    """The start of the shortest slice ``text[i:end]`` holding ``count`` characters that count
    (padding does not: see :func:`_filler`), but not before ``floor``."""
    i = max(floor, end - count)
    if count <= 0:
        return i
    filler, stop = _filler(), end
    while i < stop:  # widen by as many characters as the last stretch held padding
        fill = len(filler.findall(text, i, stop))
        if text[stop - 1 : stop + 1].isspace() and stop - 1 >= i and stop < len(text):
            fill += 1  # white space running on past the stretch (the look-ahead stops at its end)
        if not fill:
            break
        stop, i = i, max(floor, i - fill)
    return i


def _merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``spans`` sorted, overlapping or touching ones merged."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


#: A stream finding's identity: channel, detector, type and absolute start.
_Key = tuple[str, str, str, int]
#: A finding that starts in held-back text: where the scan that found it began (its look-behind),
#: and its absolute spans when it is redacted.
_Held = tuple[int, tuple[tuple[int, int], ...]]


@dataclass(slots=True)
class _Channel:
    """One channel's source text from absolute offset ``base``: released look-behind, then pending.

    Detectors always see what the provider sent; redactions are kept as absolute spans and applied
    only when text is released, so a match that keeps growing (a token of variable length) is
    found whole again by the next scan and masked to its end.
    """

    src: str = ""
    base: int = 0  # absolute offset of src[0]
    released: int = 0  # absolute offset up to which text has been released
    masked: int = -1  # absolute end of the text hidden by the last [REDACTED] released
    mask_start: int = 0  # absolute start of the match that [REDACTED] stands for
    redactions: list[tuple[int, int]] = field(default_factory=list)  # partly released: the rest to mask
    scan_at: int = 0  # with a hold-back: the pending length (raw) at which the next scan is due
    context: int = 0  # src[:context] is kept only as left context for the look-behind
    held: dict[_Key, _Held] = field(default_factory=dict)  # findings that start in held-back text

    @property
    def seen(self) -> str:
        """The released look-behind."""
        return self.src[: self.released - self.base]

    @property
    def pending(self) -> str:
        """Text scanned but not released yet."""
        return self.src[self.released - self.base :]

    def release(self, cut: int, spans: Sequence[tuple[int, int]]) -> str:
        """Release the text up to absolute offset ``cut``, masking ``spans`` (merged, absolute):
        each run as one [REDACTED], a run that continues one already released as nothing more."""
        pos, out = self.released, []
        for a, b in spans:
            if b <= pos:
                continue
            if a >= cut:
                break
            if a > pos:
                out.append(self.src[pos - self.base : a - self.base])
                pos = a
            if pos != self.masked:  # not the continuation of a run already released as [REDACTED]
                out.append(REDACTION)
                self.mask_start = a
            else:
                self.mask_start = min(self.mask_start, a)
            pos = self.masked = min(b, cut)
        if pos < cut:
            out.append(self.src[pos - self.base : cut - self.base])
        self.released = cut
        self.redactions = [(a, b) for a, b in spans if a < cut < b]
        return "".join(out)

    def trim(self, window: int) -> None:
        """Keep ``window`` characters of look-behind (padding not counted), or more while a redacted
        match reaches the release point (it may still grow)."""
        end = self.released - self.base
        floor = max(0, end - window * _MAX_WINDOWS_KEPT)
        keep = _visible_start(self.src, end, window, floor)
        if self.masked == self.released:
            keep = min(keep, max(floor, self.mask_start - self.base))
        cut = max(0, keep - LEFT_CONTEXT)  # and before it, some of its own left context
        self.context = keep - cut if self.base + cut else 0
        if cut:
            self.src = self.src[cut:]
            self.base += cut


@dataclass(slots=True)
class StreamStep:
    """What to do after feeding a chunk: release ``text`` to the caller, or stop (``blocked``)."""

    text: str
    blocked: bool = False


@dataclass
class StreamGuard:
    """Scans one streamed output incrementally, per channel (a choice's content, a tool call's arguments).

    Each scan covers the text not yet released and the last ``window`` characters released, so a
    match that spans chunks is found whole before any of it leaves. With ``holdback`` > 0 (when a
    rule may block or redact) the last ``holdback`` characters stay pending, so no part of a term
    that is blocked or redacted leaves before the term is complete, and text is scanned and
    released in batches of :data:`RELEASE_BATCH` characters. Padding (invisible format characters,
    runs of white space) does not count towards either. Held-back text is judged afresh by each
    scan, as the unary scan would judge the whole text. Matches longer than the hold-back may have
    released their head; matches whose shortest form is longer than the window are not seen.
    """

    service: GuardService
    target: GuardTarget
    window: int
    holdback: int = 0
    context: ScanContext | None = None
    _channels: dict[str, _Channel] = field(default_factory=dict)
    _records: dict[_Key, ActedFinding] = field(default_factory=dict)
    _errors: list[str] = field(default_factory=list)
    _overflow: list[ActedFinding] = field(default_factory=list)  # one per reason past the cap
    blocked: bool = False

    def feed(self, channel: str, text: str) -> StreamStep:
        """Scan ``text`` (the next chunk of ``channel``) and say what may be released."""
        if self.blocked:
            return StreamStep("", blocked=True)
        ch = self._channels.get(channel)
        if ch is None:
            ch = self._channels[channel] = _Channel()
        ch.src += text
        if self.holdback and len(ch.src) - (ch.released - ch.base) < max(
            ch.scan_at, self.holdback + RELEASE_BATCH
        ):
            return StreamStep("")  # a batch is not complete: nothing would be released yet
        return self._step(channel, ch, final=False)

    def finish(self, choice: str | None = None) -> dict[str, StreamStep]:
        """Release whatever is still held back, per channel: all channels, or those of ``choice``
        (the channel named ``choice`` and those named ``choice:…``)."""
        return {
            name: self._step(name, ch, final=True)
            for name, ch in self._channels.items()
            if ch.pending and (choice is None or name == choice or name.startswith(choice + ":"))
        }

    def _step(self, name: str, ch: _Channel, *, final: bool) -> StreamStep:
        start, end = ch.released - ch.base, len(ch.src)  # pending text is ch.src[start:end]
        floor = max(start, end - self.holdback * _MAX_WINDOWS_KEPT)
        cut = ch.base + (end if final else _visible_start(ch.src, end, self.holdback, floor))
        errors_before = len(self._errors)
        findings = _run(self.service.output_detectors, ch.src, Direction.OUTPUT, self._errors, self.context)
        found: dict[_Key, _Held] = {}
        blocked = len(self._errors) > errors_before
        for f in findings:
            if not f.spans or max(s.end for s in f.spans) <= start:
                continue  # lies wholly in text already released (and already judged)
            if min(s.start for s in f.spans) < ch.context:
                continue  # starts in the look-behind's left context: judged without its own
            action = self.service.policy.action_for(f, Direction.OUTPUT, self.target)
            f = _shift(f, ch.base)
            if action is Action.BLOCK and not final and _defer_block(f, ch.base + end, cut):
                continue
            key = self._record(name, f, action)
            found[key] = (
                ch.base,
                tuple((s.start, s.end) for s in f.spans) if action is Action.REDACT else (),
            )
            blocked = blocked or action is Action.BLOCK
        for key, (found_at, spans) in ch.held.items():
            if key in found:
                continue
            if found_at < ch.base:  # found with more look-behind than this scan had: it stands
                found[key] = (found_at, spans)
            else:  # more text undid it (a token grown past its longest form): gone, as in a unary scan
                self._records.pop(key, None)
        if blocked:
            self.blocked = True
            ch.src, ch.held = ch.src[:start], {}
            return StreamStep("", blocked=True)
        masks = _merge([*ch.redactions, *(sp for _, sps in found.values() for sp in sps)])
        out = ch.release(cut, masks)
        ch.scan_at = ch.base + end - cut + RELEASE_BATCH  # what is still pending, and a batch more
        ch.held = {k: v for k, v in found.items() if k[3] >= cut}
        ch.trim(self.window)
        return StreamStep(out)

    def _record(self, channel: str, f: Finding, action: Action) -> _Key:
        """Keep ``f`` once: a finding seen again (the same match, perhaps grown) replaces its record."""
        key = (channel, f.detector, f.type, f.spans[0].start)
        if key in self._records or len(self._records) < MAX_STREAM_FINDINGS:
            self._records[key] = ActedFinding(f, action)
        elif not any(_same_reason(o, f, action) for o in self._overflow):
            self._overflow.append(ActedFinding(f, action))
        return key

    def fail(self, error: str) -> None:
        """Stop the stream with ``error`` (a scan that ran out of time): it blocks, as a failing
        detector does."""
        if error not in self._errors:
            self._errors.append(error)
        self.blocked = True

    def result(self) -> GuardResult:
        """The verdict over everything scanned so far (findings past the cap give their action and
        reasons, not their spans)."""
        acted = tuple(self._records.values())
        verdict = _verdict([*acted, *self._overflow], self._errors)
        if self._overflow:
            verdict = dataclasses.replace(
                verdict,
                findings=tuple(a.finding for a in acted),
                reasons=(*verdict.reasons, f"guard:findings_truncated:{MAX_STREAM_FINDINGS}"),
            )
        return GuardResult(verdict, acted)


def _defer_block(f: Finding, text_end: int, cut: int) -> bool:
    """Whether a block may wait for the next chunk: the match ends where the text so far ends (the
    next chunk may undo it: a whole-word term, a token's longest form) and none of it leaves now."""
    return max(s.end for s in f.spans) == text_end and min(s.start for s in f.spans) >= cut


def _same_reason(a: ActedFinding, f: Finding, action: Action) -> bool:
    return a.action is action and a.finding.detector == f.detector and a.finding.type == f.type


def _shift(f: Finding, by: int) -> Finding:
    spans = tuple(Span(s.start + by, s.end + by) for s in f.spans)
    return Finding(
        detector=f.detector,
        type=f.type,
        score=f.score,
        severity=f.severity,
        message=f.message,
        spans=spans,
        location=f.location,
        metadata=f.metadata,
    )
