"""``bastion scan model`` and ``bastion scan dataset``: offline supply-chain scans with CI-friendly output."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bastion.cli.output import err, out
from bastion.cli.runtime import cli_actor, record_event
from bastion.cli.scan import scan_app
from bastion.domain.events import AuditEvent, EventTag, JSONValue
from bastion.domain.findings import Severity
from bastion.domain.reports import ScanReport
from bastion.errors import InputError


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"


FormatOpt = Annotated[
    ReportFormat, typer.Option("--format", "-f", case_sensitive=False, help="table, json, sarif or junit.")
]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to FILE.")]
FailOnOpt = Annotated[
    Severity,
    typer.Option("--fail-on", case_sensitive=False, help="Exit 1 when a finding reaches this severity."),
]


def emit(report: ScanReport, fmt: ReportFormat, output: Path | None, fail_on: Severity) -> None:
    """Print or write ``report``; exit 1 when it fails ``fail_on`` (any error also fails: fail closed)."""
    if fmt is ReportFormat.TABLE:
        if output is not None:
            raise InputError("--output needs --format json, sarif or junit")
        print_table(report)
    else:
        from bastion.reports import render

        text = render(report, fmt.value, fail_on=fail_on)
        if output is None:
            out.file.write(text if text.endswith("\n") else text + "\n")
        else:
            output.write_text(text, encoding="utf-8")
            err.print(f"report written to {output}", highlight=False)
    if report.fails(fail_on):
        raise typer.Exit(1)


def print_table(report: ScanReport) -> None:
    """A Rich table: one row per finding or error; clean targets are counted in the summary."""
    table = Table(title=f"{report.scanner}: {len(report.results)} target(s)", show_lines=False)
    for col in ("severity", "target", "finding", "message", "controls"):
        table.add_column(col, overflow="fold")
    clean = 0
    for r in report.results:
        if r.error:
            table.add_row("[bold red]error[/]", r.target, "not analysed", r.error, "")
        for f in sorted(r.findings, key=lambda f: -f.severity.rank):
            table.add_row(_sev(f.severity), f.location or r.target, f.type, f.message, " ".join(f.controls))
        if not r.error and not r.findings:
            clean += 1
    out.print(table)
    worst = report.worst_severity()
    errors = sum(1 for r in report.results if r.error)
    out.print(
        f"{clean} clean, {len(report.findings)} finding(s) (worst: {worst.value if worst else 'none'}), "
        f"{errors} not analysed, {report.duration_s:.2f} s",
        highlight=False,
    )


def _sev(s: Severity) -> str:
    color = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}[s.value]
    return f"[{color}]{s.value}[/]"


def record_scan(ctx: typer.Context, tag: EventTag, report: ScanReport, target: str) -> None:
    """Record the scan in the audit ledger (a summary: counts and digests, never file content)."""
    digests: list[JSONValue] = []
    digests.extend(r.digest for r in report.results[:100] if r.digest is not None)
    event = AuditEvent(
        tag=tag,
        actor=cli_actor(),
        target=target[:500],
        outcome="failure" if any(r.error for r in report.results) else "success",
        attributes={
            "scanner": report.scanner,
            "targets": len(report.results),
            "findings": len(report.findings),
            "worst": (report.worst_severity() or Severity.INFO).value if report.findings else "none",
            "errors": sum(1 for r in report.results if r.error),
            "digests": digests,
        },
    )
    record_event(ctx, event)


@scan_app.command("model")
def scan_model(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files, directories or archives to scan.")],
    fmt: FormatOpt = ReportFormat.TABLE,
    output: OutputOpt = None,
    fail_on: FailOnOpt = Severity.HIGH,
    no_digest: Annotated[
        bool, typer.Option("--no-digest", help="Skip SHA-256 of each file (faster).")
    ] = False,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", min=1.0, help="Time limit per file.")
    ] = 120.0,
) -> None:
    """Scan model artifacts statically (pickle, PyTorch, joblib, NumPy, Keras, TF, ONNX, safetensors, GGUF)."""
    from bastion.scanners.model.artifacts import ModelScanOptions, scan_model_paths
    from bastion.scanners.model.interface import ScanLimits

    _check_paths(paths)
    options = ModelScanOptions(limits=ScanLimits(max_seconds_per_file=max_seconds), digest=not no_digest)
    report = scan_model_paths(paths, options)
    record_scan(ctx, EventTag.SCAN_MODEL_COMPLETED, report, ",".join(str(p) for p in paths))
    emit(report, fmt, output, fail_on)


@scan_app.command("dataset")
def scan_dataset(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A CSV, JSONL or Parquet file.")],
    text_field: Annotated[
        list[str] | None,
        typer.Option("--text-field", help="Column(s) with text (default: all string columns)."),
    ] = None,
    label_field: Annotated[
        str | None, typer.Option("--label-field", help="Column with class labels.")
    ] = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", help="Reference data set for class-balance shift.")
    ] = None,
    detectors: Annotated[
        list[str] | None,
        typer.Option("--detector", help="Detectors to run on text (default: pii, secrets, injection)."),
    ] = None,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Stop after this many rows.")
    ] = 5_000_000,
    fmt: FormatOpt = ReportFormat.TABLE,
    output: OutputOpt = None,
    fail_on: FailOnOpt = Severity.HIGH,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Scan a data set: PII, secrets, injection payloads, duplicates, label errors, outliers, balance shift."""
    from bastion.services.dataset_scan import DatasetScanRequest, scan_dataset_file

    _check_paths([path])
    request = DatasetScanRequest(
        path=path,
        text_fields=tuple(text_field or ()),
        label_field=label_field,
        reference=reference,
        detectors=tuple(detectors or ()),
        max_rows=max_rows,
    )
    if progress and fmt is ReportFormat.TABLE:
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("scanning", total=path.stat().st_size)
            report = scan_dataset_file(
                request, on_progress=lambda done, total: bar.update(task, completed=done)
            )
    else:
        report = scan_dataset_file(request)
    record_scan(ctx, EventTag.SCAN_DATASET_COMPLETED, report, str(path))
    emit(report, fmt, output, fail_on)


def _check_paths(paths: Sequence[Path]) -> None:
    missing = [str(p) for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise InputError(f"no such file or directory: {', '.join(missing)}")
