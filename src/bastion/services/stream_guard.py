"""Output guards on streams: :class:`StreamGuard` scans a streamed answer incrementally, per channel,
and acts on it as :meth:`GuardService.scan` acts on a whole answer.

Each scan covers the text not yet released and a bounded look-behind of released text, so a match
split over chunks is found whole; when a rule may block or redact, text is held back until no part
of a match can leave before the match is complete. Detectors always see the provider's text;
redactions apply as text is released. docs/gateway.md (Streams) says what this guarantees and where
it stops.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from bastion.detectors.interface import Direction, ScanContext
from bastion.domain.findings import Action, Finding, Span
from bastion.services.guard import (
    REDACTION,
    ActedFinding,
    GuardResult,
    GuardService,
    GuardTarget,
    run_detectors,
    verdict_of,
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
        findings = run_detectors(
            self.service.output_detectors, ch.src, Direction.OUTPUT, self._errors, self.context
        )
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
        verdict = verdict_of([*acted, *self._overflow], self._errors)
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
