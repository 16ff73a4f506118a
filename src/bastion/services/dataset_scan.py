"""Data-set scanning use-case: stream a CSV/JSONL/Parquet file through the text detectors (PII,
secrets, injection payloads) from the detector registry and the data-set scanners (duplicates,
label errors, trigger phrases, outliers, class-balance shift), and produce a :class:`ScanReport`."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bastion.domain.findings import Finding, Severity
from bastion.domain.reports import ScanReport, TargetResult
from bastion.errors import BastionError, InputError
from bastion.scanners.controls import DATA_INJECTION, DATA_POISONING, DATA_SENSITIVE
from bastion.scanners.dataset import labels as label_checks
from bastion.scanners.dataset.duplicates import DuplicateIndex
from bastion.scanners.dataset.readers import iter_batches, text_of

SCANNER_NAME = "bastion-dataset-scanner"
DEFAULT_DETECTORS = ("pii", "secrets", "prompt_injection")
_DETECTOR_CONTROLS = {"pii": DATA_SENSITIVE, "secrets": DATA_SENSITIVE, "prompt_injection": DATA_INJECTION}
_MAX_TEXT = 20_000  # characters per row given to detectors
_PER_TYPE = 50  # row-level findings kept per finding type (the rest are counted)
_LABEL_ROWS = 200_000  # rows kept in memory for label analysis


@dataclass(frozen=True, slots=True)
class DatasetScanRequest:
    path: Path
    text_fields: tuple[str, ...] = ()
    label_field: str | None = None
    reference: Path | None = None
    detectors: tuple[str, ...] = ()
    max_rows: int = 5_000_000


def _finding(type_: str, sev: Severity, msg: str, loc: str, hint: str, controls: tuple[str, ...]) -> Finding:
    score = {
        Severity.INFO: 0.1,
        Severity.LOW: 0.3,
        Severity.MEDIUM: 0.6,
        Severity.HIGH: 0.85,
        Severity.CRITICAL: 1.0,
    }
    return Finding(SCANNER_NAME, type_, score[sev], sev, msg, location=loc, hint=hint, controls=controls)


def scan_dataset_file(
    request: DatasetScanRequest, *, on_progress: Callable[[int, int], None] | None = None
) -> ScanReport:
    """Scan ``request.path``; ``on_progress(bytes_done, bytes_total)`` is called per batch."""
    import bastion.detectors  # noqa: F401  (registers the built-in detectors)
    from bastion.detectors.interface import ScanContext, detectors

    path = request.path
    if not path.is_file():
        raise InputError(f"{str(path)!r} is not a file")
    started, t0 = datetime.now(UTC), time.perf_counter()
    names = request.detectors or DEFAULT_DETECTORS
    active = [(n, detectors.create(n)) for n in names]
    context = ScanContext()
    size = path.stat().st_size
    findings: list[Finding] = []
    per_type: Counter[str] = Counter()
    dupes = DuplicateIndex()
    texts: list[str] = []
    labels: list[str] = []
    rows = 0
    error: str | None = None
    exclude = (request.label_field,) if request.label_field else ()
    try:
        for batch in iter_batches(
            path,
            max_rows=request.max_rows,
            on_progress=(lambda off: on_progress(off, size)) if on_progress else None,
        ):
            for i, row in enumerate(batch.rows):
                idx = batch.first_index + i
                text = text_of(row, request.text_fields, exclude)
                dupes.add(idx, text)
                for name, det in active:
                    for f in det.scan(text[:_MAX_TEXT], context):
                        per_type[f.type] += 1
                        if per_type[f.type] <= _PER_TYPE:
                            controls = tuple(
                                dict.fromkeys((*f.controls, *_DETECTOR_CONTROLS.get(name, DATA_POISONING)))
                            )
                            findings.append(
                                replace(f, location=f"{path}:row {idx + 1}", spans=(), controls=controls)
                            )
                if request.label_field is not None and len(texts) < _LABEL_ROWS:
                    label = row.get(request.label_field)
                    if label is not None:
                        texts.append(text)
                        labels.append(str(label))
            rows += len(batch.rows)
    except BastionError as e:
        error = e.message
    findings.extend(_summaries(per_type, path))
    findings.extend(_duplicate_findings(dupes, path))
    if request.label_field is not None and error is None:
        findings.extend(_label_findings(texts, labels, request, path))
    return ScanReport(
        scanner=SCANNER_NAME,
        started_at=started,
        duration_s=time.perf_counter() - t0,
        results=(TargetResult(target=str(path), findings=tuple(findings), error=error, size=size),),
        metadata={"kind": "dataset", "rows": str(rows), "detectors": ",".join(names)},
    )


def _summaries(per_type: Counter[str], path: Path) -> list[Finding]:
    return [
        _finding(
            "dataset.findings_truncated",
            Severity.INFO,
            f"{n} rows matched {t}; the first {_PER_TYPE} are listed",
            str(path),
            "Filter the data set with the same detectors before training or indexing it.",
            DATA_POISONING,
        )
        for t, n in per_type.items()
        if n > _PER_TYPE
    ]


def _duplicate_findings(d: DuplicateIndex, path: Path) -> list[Finding]:
    out: list[Finding] = []
    for kind, pairs, sev in (("exact", d.exact, Severity.LOW), ("near", d.near, Severity.LOW)):
        if pairs:
            sample = ", ".join(f"{a + 1}~{b + 1}" for a, b in pairs[:10])
            out.append(
                _finding(
                    f"dataset.{kind}_duplicates",
                    sev,
                    f"{len(pairs)} {kind}-duplicate rows (row~first: {sample})",
                    str(path),
                    "Deduplicate before training: repeated rows amplify poisoned examples and leak test data.",
                    DATA_POISONING,
                )
            )
    return out


def _label_findings(
    texts: list[str], labels: list[str], req: DatasetScanRequest, path: Path
) -> list[Finding]:
    out: list[Finding] = []
    issues, _ = label_checks.label_issues(texts, labels)
    for issue in issues[:_PER_TYPE]:
        out.append(
            _finding(
                "dataset.label_issue",
                Severity.MEDIUM,
                f"label {issue.given!r} looks wrong; the data suggest {issue.suggested!r} (margin {issue.margin:.2f})",
                f"{path}:row {issue.index + 1}",
                "Review the label; flipped labels are a poisoning technique.",
                DATA_POISONING,
            )
        )
    if issues:
        out.append(
            _finding(
                "dataset.label_issues",
                Severity.MEDIUM if len(issues) < 0.05 * len(labels) else Severity.HIGH,
                f"{len(issues)} of {len(labels)} labelled rows are likely mislabelled (confident learning)",
                str(path),
                "Relabel or drop the listed rows before training.",
                DATA_POISONING,
            )
        )
    for t in label_checks.trigger_phrases(texts, labels):
        out.append(
            _finding(
                "dataset.trigger_phrase",
                Severity.HIGH,
                f"phrase {t.phrase[:80]!r} occurs in {t.count} rows, {t.purity:.0%} labelled {t.label!r}: "
                "a possible backdoor trigger",
                str(path),
                "Inspect rows containing the phrase; remove them if the phrase has no reason to decide the label.",
                DATA_POISONING,
            )
        )
    for idx, score in label_checks.outliers(texts)[:20]:
        out.append(
            _finding(
                "dataset.outlier",
                Severity.LOW,
                f"row is an outlier (z={score:.1f})",
                f"{path}:row {idx + 1}",
                "Check the row: outliers can be injected payloads or corrupt data.",
                DATA_POISONING,
            )
        )
    if req.reference is not None:
        ref_labels = [
            str(r.get(req.label_field))
            for b in iter_batches(req.reference, max_rows=req.max_rows)
            for r in b.rows
            if req.label_field is not None and r.get(req.label_field) is not None
        ]
        tvd, shares = label_checks.balance_shift(labels, ref_labels)
        if tvd > 0.1:
            detail = ", ".join(f"{k}: {a:.0%} vs {b:.0%}" for k, (a, b) in list(shares.items())[:10])
            out.append(
                _finding(
                    "dataset.balance_shift",
                    Severity.MEDIUM if tvd < 0.25 else Severity.HIGH,
                    f"class balance differs from the reference (total variation {tvd:.2f}; {detail})",
                    str(path),
                    "Find out why the class mix changed; injected or dropped classes are a poisoning signal.",
                    DATA_POISONING,
                )
            )
    return out
