"""``bastion scan text|file|prompts``: run the runtime detectors from the command line.

- ``scan text "…"`` scans one string; ``scan file PATH`` scans a text file in segments (progress bar
  on stderr); ``scan prompts FILE.jsonl`` scans each line's ``text`` field and writes one JSON object
  per input line, in order, with ``score`` (0–1, higher = more likely an attack) and ``verdict``
  (``allow``/``flag``/``block``); a malformed line gets ``{"line": n, "error": …}``.
- ``--format table|json|jsonl|sarif``; ``--fail-on SEVERITY`` exits 1 when a finding reaches it
  (an error line or a failed detector always fails: fail closed).

Findings show types, scores and spans, never the matched text.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bastion.cli.output import err, out
from bastion.cli.runtime import cli_actor, record_event
from bastion.cli.scan import scan_app
from bastion.domain.events import AuditEvent, EventTag, JSONValue
from bastion.domain.findings import Action, Finding, Severity, Span, Verdict
from bastion.domain.reports import ScanReport, TargetResult
from bastion.errors import InputError

MAX_FILE_BYTES = 256 * 1024 * 1024
FILE_SEGMENT = 100_000
FILE_OVERLAP = 1_000


class TextFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"
    SARIF = "sarif"


class FailOn(StrEnum):
    NONE = "none"
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


FormatOpt = Annotated[TextFormat, typer.Option("--format", "-f", case_sensitive=False, help="Output format.")]
FailOnOpt = Annotated[
    FailOn,
    typer.Option("--fail-on", case_sensitive=False, help="Exit 1 when a finding reaches this severity."),
]
DetectorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--detector", "-d", help="Detector registry name (repeatable); default depends on --direction."
    ),
]
DirectionOpt = Annotated[
    str, typer.Option("--direction", help="input (prompts, documents) or output (model text).")
]


def _names(detector: list[str] | None, direction: str) -> tuple[str, ...]:
    from bastion.detectors.pipeline import INPUT_DETECTORS, OUTPUT_DETECTORS

    if direction not in ("input", "output"):
        raise InputError(f"--direction must be input or output, not {direction!r}")
    if detector:
        return tuple(detector)
    return INPUT_DETECTORS if direction == "input" else OUTPUT_DETECTORS


def _ranking_score(text: str, verdict: Verdict, names: Sequence[str]) -> float:
    from bastion.detectors.pipeline import ranking_score

    return ranking_score(text, verdict, names)


def _verdict(text: str, names: Sequence[str], direction: str) -> Verdict:
    from bastion.detectors.interface import Direction, ScanContext
    from bastion.detectors.pipeline import get_detector, run_detectors

    for n in names:
        get_detector(n)  # unknown names raise ConfigError (exit 2) instead of an error verdict
    return run_detectors(text, names, ScanContext(direction=Direction(direction)))


def _record(target: str, verdict: Verdict, score: float | None = None) -> dict[str, Any]:
    return {
        "target": target,
        "score": round(verdict.score if score is None else score, 4),
        "verdict": verdict.action.value,
        "findings": [f.to_dict() for f in verdict.findings],
        **({"errors": list(verdict.errors)} if verdict.errors else {}),
    }


def _fails(verdict: Verdict, fail_on: FailOn) -> bool:
    if verdict.errors:
        return True
    if fail_on is FailOn.NONE:
        return False
    return any(f.severity.at_least(Severity(fail_on.value)) for f in verdict.findings)


def _audit(ctx: typer.Context, target: str, verdicts: Sequence[Verdict | None]) -> None:
    """One ledger event per scan command: counts only, never the scanned text."""
    real = [v for v in verdicts if v is not None]
    record_event(
        ctx,
        AuditEvent(
            EventTag.SCAN_PROMPT_COMPLETED,
            cli_actor(),
            target=target[:500],
            outcome="failure" if len(real) < len(verdicts) or any(v.errors for v in real) else "success",
            attributes={
                "scanned": len(verdicts),
                "blocked": sum(1 for v in real if v.action is Action.BLOCK),
                "flagged": sum(1 for v in real if v.action is Action.FLAG),
                "errors": len(verdicts) - len(real) + sum(1 for v in real if v.errors),
                "finding_types": list[JSONValue](sorted({f.type for v in real for f in v.findings})[:50]),
            },
        ),
    )


def _emit(
    records: list[dict[str, Any]], results: list[TargetResult], fmt: TextFormat, started: float
) -> None:
    if fmt is TextFormat.JSON:
        sys.stdout.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")
    elif fmt is TextFormat.JSONL:
        for r in records:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    elif fmt is TextFormat.SARIF:
        from bastion.reports import render

        report = ScanReport(
            scanner="bastion scan text",
            started_at=datetime.now(UTC),
            duration_s=time.perf_counter() - started,
            results=tuple(results),
        )
        sys.stdout.write(render(report, "sarif").rstrip("\n") + "\n")
    else:
        _table(records)
    sys.stdout.flush()


def _table(records: list[dict[str, Any]]) -> None:
    table = Table(title="bastion scan")
    for col in ("target", "verdict", "score", "finding", "severity", "spans", "message"):
        table.add_column(col)
    for r in records:
        if "error" in r:
            table.add_row(str(r.get("target", r.get("line"))), "error", "", "", "", "", str(r["error"]))
            continue
        if not r["findings"]:
            table.add_row(r["target"], r["verdict"], f"{r['score']:.3f}", "", "", "", "")
        for f in r["findings"]:
            spans = " ".join(f"{a}-{b}" for a, b in f["spans"][:3])
            table.add_row(
                r["target"], r["verdict"], f"{f['score']:.3f}", f["type"], f["severity"], spans, f["message"]
            )
    out.print(table)


@scan_app.command("text")
def scan_text(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The text to scan (use `scan file -` for stdin).")],
    fmt: FormatOpt = TextFormat.TABLE,
    fail_on: FailOnOpt = FailOn.NONE,
    detector: DetectorOpt = None,
    direction: DirectionOpt = "input",
) -> None:
    """Scan one text with the runtime detectors."""
    started = time.perf_counter()
    names = _names(detector, direction)
    verdict = _verdict(text, names, direction)
    _emit(
        [_record("text", verdict, _ranking_score(text, verdict, names))],
        [TargetResult("text", verdict.findings)],
        fmt,
        started,
    )
    _audit(ctx, "text", [verdict])
    if _fails(verdict, fail_on):
        raise typer.Exit(1)


def _segments(length: int) -> Iterator[tuple[int, int]]:
    from bastion.detectors.windows import windows

    yield from windows(length, FILE_SEGMENT, FILE_OVERLAP)


def _shift(f: Finding, offset: int) -> Finding:
    from dataclasses import replace

    return replace(f, spans=tuple(Span(s.start + offset, s.end + offset) for s in f.spans))


@scan_app.command("file")
def scan_file(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="A text file (UTF-8; invalid bytes are replaced); - for stdin.")
    ],
    fmt: FormatOpt = TextFormat.TABLE,
    fail_on: FailOnOpt = FailOn.NONE,
    detector: DetectorOpt = None,
    direction: DirectionOpt = "input",
) -> None:
    """Scan a text file in segments, with a progress bar on stderr."""

    started = time.perf_counter()
    names = _names(detector, direction)
    text = _read_text(path)
    findings: list[Finding] = []
    errors: list[str] = []
    seen: set[tuple[str, int, int]] = set()
    with _progress() as progress:
        task = progress.add_task(str(path), total=max(1, len(text)))
        for start, end in _segments(len(text)):
            v = _verdict(text[start:end], names, direction)
            errors.extend(e for e in v.errors if e not in errors)
            for f in v.findings:
                g = _shift(f, start)
                key = (g.type, g.spans[0].start if g.spans else -1, g.spans[0].end if g.spans else -1)
                if key not in seen:
                    seen.add(key)
                    findings.append(g)
            progress.update(task, completed=end)
    from bastion.detectors.pipeline import action_for

    actions = [action_for(f) for f in findings] + ([Action.BLOCK] if errors else [])
    verdict = Verdict(Action.strictest(actions), tuple(findings), tuple(errors))
    target = str(path)
    result = TargetResult(target, verdict.findings, error=", ".join(errors) or None, size=len(text))
    _emit([_record(target, verdict)], [result], fmt, started)
    _audit(ctx, target, [verdict])
    if _fails(verdict, fail_on):
        raise typer.Exit(1)


def _read_text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"{path} is {size} bytes; the limit is {MAX_FILE_BYTES}")
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _prompt_line(
    n: int, line: str, names: Sequence[str], direction: str
) -> tuple[dict[str, Any], Verdict | None]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return {"line": n, "error": f"invalid JSON: {e.msg} (column {e.colno})"}, None
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return {"line": n, "error": 'expected an object with a string "text" field'}, None
    v = _verdict(obj["text"], names, direction)
    rec: dict[str, Any] = {"line": n}
    if "id" in obj and isinstance(obj["id"], str | int):
        rec["id"] = obj["id"]
    score = _ranking_score(obj["text"], v, names)
    rec.update({k: v2 for k, v2 in _record(f"line {n}", v, score).items() if k != "target"})
    return rec, v


@scan_app.command("prompts")
def scan_prompts(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="JSONL file, one object with a `text` field per line; - for stdin.")
    ],
    fmt: Annotated[
        TextFormat,
        typer.Option("--format", "-f", case_sensitive=False, help="Output format (default jsonl)."),
    ] = TextFormat.JSONL,
    fail_on: FailOnOpt = FailOn.NONE,
    detector: DetectorOpt = None,
    direction: DirectionOpt = "input",
) -> None:
    """Score every prompt of a JSONL file: one JSON object per input line, in order."""
    started = time.perf_counter()
    names = tuple(detector) if detector else ("prompt_injection", "hidden_text")
    _names(list(names), direction)
    stream = sys.stdin if str(path) == "-" else _open(path)
    records: list[dict[str, Any]] = []
    results: list[TargetResult] = []
    verdicts: list[Verdict | None] = []
    failed = False
    total = 0 if str(path) == "-" else max(1, path.stat().st_size)
    with stream, _progress() as progress:
        task = progress.add_task(str(path), total=total or None)
        for n, line in enumerate(stream, start=1):
            progress.advance(task, len(line.encode("utf-8", errors="replace")))
            if not line.strip():
                rec, verdict = {"line": n, "error": "empty line"}, None
            else:
                rec, verdict = _prompt_line(n, line, names, direction)
            verdicts.append(verdict)
            failed = failed or verdict is None or _fails(verdict, fail_on)
            if fmt is TextFormat.JSONL:
                sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
                continue
            records.append(rec)
            target = f"{path}:{n}"
            results.append(
                TargetResult(target, verdict.findings)
                if verdict
                else TargetResult(target, error=str(rec["error"]))
            )
    if fmt is TextFormat.JSONL:
        sys.stdout.flush()
    else:
        for r in records:
            r.setdefault("target", f"line {r['line']}")
        _emit(records, results, fmt, started)
    _audit(ctx, str(path), verdicts)
    if failed:  # a finding at --fail-on, a failed detector, or a malformed line (fail closed)
        raise typer.Exit(1)


def _open(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
