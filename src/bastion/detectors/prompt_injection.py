"""Prompt-injection and jailbreak detector: a shipped linear classifier plus explainable heuristics.

Registry name: ``prompt_injection`` (both directions; on outputs and documents it catches indirect
injection). Finding types: ``prompt_injection.<rule>`` / ``jailbreak.<rule>`` when a heuristic
explains the hit, ``prompt_injection.classifier`` when only the model does,
``prompt_injection.obfuscated`` when a rule fires only after de-obfuscation (leetspeak, ROT13,
spaced letters, homoglyphs) and ``prompt_injection.encoded`` for instructions hidden in base64,
hex or Unicode tag characters.

The model (``models/prompt_injection.npz``: float16 weights over hashed n-grams, plain arrays, no
pickle) is trained by ``training/train_prompt_injection.py``; inference needs only numpy. Long texts
are scored in overlapping windows, so time and memory grow linearly and stay bounded per window.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

from bastion.detectors.decoding import find_payloads
from bastion.detectors.features import HASH_DIM, LAYOUT, N_FEATURES, Analysis, vectorize
from bastion.detectors.interface import Direction, ScanContext
from bastion.detectors.windows import windows
from bastion.domain.findings import Finding, Severity, Span
from bastion.errors import DetectorError

NAME = "prompt_injection"
WINDOW = 1000
OVERLAP = 200
REPORT_AT = 0.5  # calibrated score from which a window is reported (the flag threshold)


@dataclass(frozen=True, slots=True)
class Model:
    """The shipped linear model and the thresholds chosen on held-out sources."""

    weights: npt.NDArray[np.float32]
    bias: float
    threshold_flag: float
    threshold_block: float

    def probability(self, indices: npt.NDArray[np.int64], values: npt.NDArray[np.float32]) -> float:
        """Attack probability for one sparse feature vector."""
        z = float(np.dot(self.weights[indices], values)) + self.bias
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))

    def calibrate(self, p: float) -> float:
        """Map a probability to Bastion's score scale: flag threshold → 0.5, block threshold → 0.9."""
        f, b = self.threshold_flag, self.threshold_block
        if p < f:
            return 0.5 * p / f if f > 0 else 0.5
        if p < b:
            return 0.5 + 0.4 * (p - f) / (b - f) if b > f else 0.9
        return min(1.0, 0.9 + 0.1 * (p - b) / (1.0 - b)) if b < 1.0 else 1.0


_model: Model | None = None
_model_lock = threading.Lock()


def load_model() -> Model:
    """The shipped model, loaded once (thread-safe)."""
    global _model
    if _model is not None:
        return _model
    with _model_lock:
        if _model is None:
            _model = _read_model()
    return _model


def _read_model() -> Model:
    ref = resources.files("bastion.detectors") / "models" / "prompt_injection.npz"
    try:
        with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
            weights = data["weights"].astype(np.float32)
            bias = float(data["bias"][0])
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
    except (OSError, KeyError, ValueError) as e:
        raise DetectorError(f"prompt-injection model missing or unreadable: {e}") from e
    if weights.shape != (N_FEATURES,) or meta.get("hash_dim") != HASH_DIM or meta.get("layout") != LAYOUT:
        raise DetectorError("prompt-injection model does not match this version's features")
    return Model(weights, bias, float(meta["threshold_flag"]), float(meta["threshold_block"]))


@dataclass(frozen=True, slots=True)
class Assessment:
    """The score of one text (or window) and why."""

    score: float  # calibrated, 0-1
    probability: float
    analysis: Analysis


def assess(text: str, model: Model | None = None) -> Assessment:
    """Score one short text (no windowing, no payload decoding)."""
    m = model or load_model()
    indices, values, analysis = vectorize(text)
    p = m.probability(indices, values)
    return Assessment(m.calibrate(p), p, analysis)


def score_text(text: str) -> float:
    """The highest calibrated score over the windows of ``text`` (0-1, higher = more likely an attack)."""
    findings = PromptInjectionDetector().scan(text, ScanContext())
    return max((f.score for f in findings), default=0.0)


def model_score(text: str) -> float:
    """The classifier's calibrated score alone, maximum over windows, even below the report level.

    Findings start at the flag level (0.5); a ranking (a CI threshold sweep, a ROC curve) also needs the
    order of the texts below it.
    """
    m = load_model()
    return max((assess(text[s:e], m).score for s, e in windows(len(text), WINDOW, OVERLAP)), default=0.0)


class PromptInjectionDetector:
    """Registered as ``prompt_injection``; see the module docstring for the finding types."""

    name = NAME
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})

    def __init__(self, window: int = WINDOW, overlap: int = OVERLAP) -> None:
        self.window = window
        self.overlap = overlap
        self.model = load_model()

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        findings: list[Finding] = []
        for start, end in windows(len(text), self.window, self.overlap):
            findings.extend(self._scan_window(text[start:end], start))
        return _dedupe(findings)

    def _scan_window(self, chunk: str, offset: int) -> list[Finding]:
        a = assess(chunk, self.model)
        out: list[Finding] = []
        hits = a.analysis.hits
        if a.score >= REPORT_AT or hits:
            out.append(self._main_finding(a, offset, len(chunk)))
        if a.analysis.obfuscated_hits:
            rules = ",".join(h.rule.name for h in a.analysis.obfuscated_hits)
            out.append(
                _finding(
                    "prompt_injection.obfuscated",
                    max(0.9, a.score),
                    "an attack phrase appears once obfuscation (leetspeak, ROT13, spacing) is undone",
                    (Span(offset, offset + len(chunk)),),
                    {"rules": rules},
                )
            )
        for payload in find_payloads(chunk):
            inner = assess(payload.text, self.model)
            if inner.score >= REPORT_AT or inner.analysis.hits:
                score = min(1.0, max(inner.score, 0.6 if inner.analysis.hits else 0.0) + 0.3)
                span = Span(offset + payload.span.start, offset + payload.span.end)
                out.append(
                    _finding(
                        "prompt_injection.encoded",
                        score,
                        f"an instruction is hidden in {payload.encoding}",
                        (span,),
                        {
                            "encoding": payload.encoding,
                            "rules": ",".join(h.rule.name for h in inner.analysis.hits),
                        },
                    )
                )
        return out

    def _main_finding(self, a: Assessment, offset: int, length: int) -> Finding:
        hits = sorted(a.analysis.hits, key=lambda h: -h.rule.weight)
        rule_spans = (a.analysis.folded.span(h.start, h.end) for h in hits)
        spans = tuple(dict.fromkeys(Span(offset + s.start, offset + s.end) for s in rule_spans)) or (
            Span(offset, offset + length),
        )
        if hits:
            top = hits[0].rule
            ftype = f"{top.kind}.{top.name}"
            message = top.explanation
            # A heuristic alone can flag; blocking needs the model to agree (keeps hard negatives quiet).
            score = max(a.score, min(0.85, top.weight * 0.8))
        else:
            ftype, message, score = (
                "prompt_injection.classifier",
                "the classifier scores this as an attack",
                a.score,
            )
        meta: dict[str, str | float] = {
            "model_score": round(a.score, 4),
            "rules": ",".join(h.rule.name for h in hits),
        }
        return _finding(ftype, score, message, spans, meta)


def _finding(
    ftype: str, score: float, message: str, spans: tuple[Span, ...], meta: dict[str, str | float]
) -> Finding:
    score = float(min(1.0, max(0.0, score)))
    return Finding(
        detector=NAME,
        type=ftype,
        score=score,
        severity=Severity.from_score(score),
        message=message,
        spans=spans,
        metadata=meta,
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (type, first span); overlapping windows report the same hit twice."""
    seen: set[tuple[str, int, int]] = set()
    out: list[Finding] = []
    for f in findings:
        key = (f.type, f.spans[0].start if f.spans else -1, f.spans[0].end if f.spans else -1)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
