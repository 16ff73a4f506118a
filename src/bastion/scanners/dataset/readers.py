"""Stream rows from CSV, JSONL and Parquet with bounded memory (one batch at a time)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import InputError, ScanError

Row = dict[str, object]
_MAX_LINE = 16 << 20  # a JSONL line or CSV field longer than this is an error, not a memory spike
_BATCH = 4096


@dataclass(frozen=True, slots=True)
class RowBatch:
    """Rows read so far; ``offset`` is the byte position reached (for progress) where known."""

    rows: list[Row]
    first_index: int
    offset: int


def detect_kind(path: Path) -> str:
    """``csv``, ``jsonl`` or ``parquet`` from the content (Parquet magic) and the extension."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return "parquet"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise InputError(f"cannot tell the format of {str(path)!r}", hint="Use a .csv, .jsonl or .parquet file.")


def iter_batches(
    path: Path, *, max_rows: int, on_progress: Callable[[int], None] | None = None
) -> Iterator[RowBatch]:
    """Yield batches of rows; stops after ``max_rows``. Malformed input raises :class:`ScanError`."""
    kind = detect_kind(path)
    reader = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}[kind]
    seen = 0
    for batch in reader(path):
        if seen + len(batch.rows) > max_rows:
            batch = RowBatch(batch.rows[: max_rows - seen], batch.first_index, batch.offset)
        seen += len(batch.rows)
        if on_progress is not None:
            on_progress(batch.offset)
        yield batch
        if seen >= max_rows:
            return


def _csv(path: Path) -> Iterator[RowBatch]:
    csv.field_size_limit(_MAX_LINE)
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(text, delimiter=delimiter)
        rows: list[Row] = []
        index = 0
        try:
            for rec in reader:
                rows.append({k: v for k, v in rec.items() if k is not None})
                if len(rows) >= _BATCH:
                    yield RowBatch(rows, index, raw.tell())
                    index += len(rows)
                    rows = []
        except csv.Error as e:
            raise ScanError(f"{path}: malformed CSV near row {index + len(rows) + 1}: {e}") from e
        if rows:
            yield RowBatch(rows, index, raw.tell())


def _jsonl(path: Path) -> Iterator[RowBatch]:
    rows: list[Row] = []
    index = 0
    offset = 0
    with path.open("rb") as fh:
        lineno = 0
        while True:
            line = fh.readline(_MAX_LINE + 1)
            if not line:
                break
            lineno += 1
            offset += len(line)
            if len(line) > _MAX_LINE:
                raise ScanError(f"{path}: line {lineno} is longer than {_MAX_LINE} bytes")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as e:
                raise ScanError(f"{path}: line {lineno} is not valid JSON: {e}") from e
            rows.append(obj if isinstance(obj, dict) else {"value": obj})
            if len(rows) >= _BATCH:
                yield RowBatch(rows, index, offset)
                index += len(rows)
                rows = []
    if rows:
        yield RowBatch(rows, index, offset)


def _parquet(path: Path) -> Iterator[RowBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        index = 0
        total_groups = max(pf.num_row_groups, 1)
        size = path.stat().st_size
        for n, batch in enumerate(pf.iter_batches(batch_size=_BATCH)):
            rows: list[Row] = batch.to_pylist()
            yield RowBatch(rows, index, min(size, size * (n + 1) // total_groups))
            index += len(rows)
    except (pa.ArrowException, OSError) as e:
        raise ScanError(f"{path}: cannot read Parquet: {e}") from e


def text_of(row: Row, fields: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str:
    """The row's text: the named fields, or every string value except ``exclude`` (nested chat
    messages included)."""
    if fields:
        return "\n".join(_flatten(row.get(f)) for f in fields if row.get(f) is not None)
    return "\n".join(
        _flatten(v) for k, v in row.items() if k not in exclude and isinstance(v, str | list | dict)
    )


def _flatten(v: object, depth: int = 0) -> str:
    if isinstance(v, str):
        return v
    if depth > 8:
        return ""
    if isinstance(v, dict):
        return "\n".join(_flatten(x, depth + 1) for x in v.values())
    if isinstance(v, list):
        return "\n".join(_flatten(x, depth + 1) for x in v)
    return "" if v is None else str(v)
