"""Shared output helpers: ``--format table|json`` and Rich consoles (data to stdout, messages to stderr)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

#: Data goes to stdout; progress, warnings and errors go to stderr so that pipes stay clean.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


#: The ``--format table|json`` option every data-printing command takes.
FormatOpt = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]


def _default(o: object) -> object:
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if isinstance(o, bytes):
        return o.hex()
    return str(o)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (one document, newline-terminated)."""
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def print_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: OutputFormat, *, title: str = ""
) -> None:
    """Print ``rows`` as a Rich table or as a JSON list."""
    if fmt is OutputFormat.JSON:
        print_json([dict(r) for r in rows])
        return
    table = Table(title=title or None)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    out.print(table)


def print_record(record: Mapping[str, Any], fmt: OutputFormat) -> None:
    """Print one object as key/value lines or as JSON."""
    if fmt is OutputFormat.JSON:
        print_json(dict(record))
        return
    for k, v in record.items():
        out.print(f"[bold]{k}[/]: {v}", highlight=False)
