"""In-process scanning: run a set of registered detectors on a text and combine them into a Verdict.

``from bastion import scan_prompt, scan_output, scan_document`` re-exports these. The default
action policy: a finding of severity ``high`` or worse blocks, ``low`` or worse flags, ``info`` is
allowed; a detector that raises is named in ``Verdict.errors`` and blocks (fail closed).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from bastion.detectors import load_builtins
from bastion.detectors.interface import Detector, Direction, ScanContext, detectors
from bastion.detectors.windows import windows
from bastion.domain.findings import Action, Finding, Severity, Span, Verdict

INPUT_DETECTORS = ("prompt_injection", "hidden_text", "secrets", "pii")
OUTPUT_DETECTORS = ("canary", "unsafe_output", "secrets", "pii", "hidden_text")
DOCUMENT_CHUNK = 2000
DOCUMENT_OVERLAP = 200

_instances: dict[str, Detector] = {}
_lock = threading.Lock()


def get_detector(name: str) -> Detector:
    """The shared, default-configured instance of the detector registered as ``name``."""
    det = _instances.get(name)
    if det is not None:
        return det
    with _lock:
        if name not in _instances:
            load_builtins()
            _instances[name] = detectors.create(name)
        return _instances[name]


def action_for(finding: Finding) -> Action:
    """The default action for one finding: block at ``high``, flag at ``low``, else allow."""
    if finding.severity.at_least(Severity.HIGH):
        return Action.BLOCK
    if finding.severity.at_least(Severity.LOW):
        return Action.FLAG
    return Action.ALLOW


def run_detectors(text: str, names: Sequence[str], context: ScanContext) -> Verdict:
    """Run the named detectors on ``text``; a failing detector makes the verdict ``block``."""
    findings: list[Finding] = []
    errors: list[str] = []
    reasons: list[str] = []
    for name in names:
        try:
            det = get_detector(name)
            findings.extend(det.scan(text, context))
        except Exception as e:  # noqa: BLE001 - fail closed: any detector failure blocks
            errors.append(name)
            reasons.append(f"detector {name} failed: {type(e).__name__}")
    actions = [action_for(f) for f in findings]
    if errors:
        actions.append(Action.BLOCK)
    for f, a in zip(findings, actions, strict=False):
        if a is not Action.ALLOW:
            reasons.append(f"{f.type} ({f.severity.value})")
    return Verdict(Action.strictest(actions), tuple(findings), tuple(errors), tuple(dict.fromkeys(reasons)))


def ranking_score(text: str, verdict: Verdict, names: Sequence[str]) -> float:
    """``verdict.score``, never below the prompt-injection classifier's own score when that detector ran.

    Findings start at the flag level, so a ranking (a threshold sweep, a ROC curve) also needs the
    classifier's score of texts below it. When the verdict already reaches the flag level the
    classifier cannot add anything (every window it did not report scores below that level), so it
    is not run a second time.
    """
    from bastion.detectors.prompt_injection import REPORT_AT, model_score

    if "prompt_injection" not in names or verdict.score >= REPORT_AT:
        return verdict.score
    return max(verdict.score, model_score(text))


def scan_prompt(
    text: str, *, detectors: Sequence[str] = INPUT_DETECTORS, context: ScanContext | None = None
) -> Verdict:
    """Scan a prompt (or any text sent to a model) with the input detectors."""
    return run_detectors(text, detectors, context or ScanContext(direction=Direction.INPUT))


def scan_output(
    text: str,
    *,
    system_prompt: str | None = None,
    canary: str | None = None,
    allowed_hosts: Sequence[str] = (),
    detectors: Sequence[str] = OUTPUT_DETECTORS,
) -> Verdict:
    """Scan a model's output: canary/system-prompt leakage, exfiltration, secrets, PII, hidden text."""
    ctx = ScanContext(
        direction=Direction.OUTPUT,
        system_prompt=system_prompt,
        canary=canary,
        allowed_hosts=tuple(allowed_hosts),
    )
    return run_detectors(text, detectors, ctx)


@dataclass(frozen=True, slots=True)
class ChunkScore:
    """The prompt-injection score of one chunk of a document."""

    span: Span
    score: float


@dataclass(frozen=True, slots=True)
class DocumentScan:
    """A scanned document: the combined verdict and each chunk's injection score."""

    verdict: Verdict
    chunks: tuple[ChunkScore, ...]

    @property
    def score(self) -> float:
        """The highest chunk score (0 for an empty document)."""
        return max((c.score for c in self.chunks), default=0.0)

    @property
    def suspicious(self) -> tuple[ChunkScore, ...]:
        """Chunks at or above the flag level (score >= 0.5)."""
        return tuple(c for c in self.chunks if c.score >= 0.5)


def scan_document(
    text: str,
    *,
    chunk_chars: int = DOCUMENT_CHUNK,
    overlap: int = DOCUMENT_OVERLAP,
    detectors: Sequence[str] = ("prompt_injection", "hidden_text"),
) -> DocumentScan:
    """Scan indirect content (a retrieved document, a tool or web result) chunk by chunk.

    Injected instructions are reported with their spans; each chunk gets its own score.
    """
    verdict = run_detectors(text, detectors, ScanContext(direction=Direction.INPUT))
    pi = [f for f in verdict.findings if f.detector == "prompt_injection"]
    chunks: list[ChunkScore] = []
    for start, end in windows(len(text), chunk_chars, overlap):
        inside = [f.score for f in pi if any(start <= s.start < end for s in f.spans)]
        chunks.append(ChunkScore(Span(start, end), max(inside, default=0.0)))
    return DocumentScan(verdict, tuple(chunks))
