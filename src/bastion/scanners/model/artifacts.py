"""The model-artifact scanner: walk paths, recognise each file by content, dispatch to the format
scanners and collect one :class:`TargetResult` per file (archive members included in their file's
result). Static only: nothing is imported, unpickled or executed."""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from bastion.domain.findings import Finding, Severity
from bastion.domain.reports import ScanReport, TargetResult
from bastion.errors import ScanError
from bastion.scanners.controls import MODEL_CODE_EXECUTION, MODEL_INTEGRITY
from bastion.scanners.model import containers, graph_formats, keras_formats, tensor_formats
from bastion.scanners.model.formats import MODEL_EXTENSIONS, claimed_formats, sniff
from bastion.scanners.model.interface import (
    ArtifactFormat as F,
)
from bastion.scanners.model.interface import (
    Deadline,
    MalformedArtifact,
    ScanLimits,
    make_finding,
)
from bastion.scanners.model.pickle_scan import NeedsJoblib, scan_pickle_stream
from bastion.scanners.model.templates import scan_chat_template

SCANNER_NAME = "bastion-model-scanner"
_PICKLE_EXTENSIONS = frozenset(
    [".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".jbl", ".dill", ".sav", ".p"]
)
_CODE_FORMATS = frozenset({F.PICKLE, F.TORCH_LEGACY, F.JOBLIB})
_FULL_READ = frozenset(
    {
        F.PICKLE,
        F.TORCH_LEGACY,
        F.ZIP,
        F.TAR,
        F.GZIP,
        F.BZIP2,
        F.XZ,
        F.ONNX,
        F.SAVED_MODEL,
        F.JSON,
        F.HDF5,
        F.SAFETENSORS,
        F.GGUF,
        F.NUMPY,
    }
)


@dataclass(frozen=True, slots=True)
class ModelScanOptions:
    """How to scan: limits per file and whether to hash every file (SHA-256)."""

    limits: ScanLimits = field(default_factory=ScanLimits)
    digest: bool = True


@dataclass(slots=True)
class _FileState:
    limits: ScanLimits
    deadline: Deadline
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)


def iter_files(paths: Sequence[Path]) -> Iterator[tuple[Path, str]]:
    """Every regular file under ``paths`` (sorted, symlinks not followed), with its display name."""
    for root in paths:
        if root.is_file() and not root.is_symlink():
            yield root, str(root)
        elif root.is_dir():
            for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
                dirnames.sort()
                for f in sorted(filenames):
                    p = Path(dirpath) / f
                    yield p, str(p)
        elif root.is_symlink():
            yield root, str(root)
        else:
            raise ScanError(f"{str(root)!r} does not exist", hint="Check the path.")


def scan_model_paths(paths: Sequence[Path], options: ModelScanOptions | None = None) -> ScanReport:
    """Scan every file under ``paths``; a :class:`ScanReport` with one result per file."""
    options = options or ModelScanOptions()
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    results = [scan_file(p, display, options) for p, display in iter_files(paths)]
    return ScanReport(
        scanner=SCANNER_NAME,
        started_at=started,
        duration_s=time.perf_counter() - t0,
        results=tuple(results),
        metadata={"kind": "model", "files": str(len(results))},
    )


def scan_file(path: Path, display: str, options: ModelScanOptions) -> TargetResult:
    """Scan one file; errors are captured in the result (the file is then not clean)."""
    state = _FileState(options.limits, Deadline(options.limits.max_seconds_per_file))
    if path.is_symlink():
        state.findings.append(
            make_finding(
                "file.symlink",
                Severity.MEDIUM,
                f"symbolic link to {os.readlink(path)[:200]!r} (not followed)",
                location=display,
                hint="Replace links in model directories with the files themselves.",
                controls=MODEL_INTEGRITY,
            )
        )
        return TargetResult(target=display, findings=tuple(state.findings))
    digest = None
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            if size == 0:
                _dispatch(b"", path.name, display, state, 0, None)
            else:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    _dispatch(mm, path.name, display, state, 0, path)  # type: ignore[arg-type]
                    if options.digest:
                        digest = _sha256(mm)
    except OSError as e:
        state.errors.append(f"cannot read: {e.strerror or e}")
        size = None
    return TargetResult(
        target=display,
        findings=tuple(state.findings),
        error="; ".join(state.errors)[:2000] or None,
        digest=digest,
        size=size,
    )


def _sha256(data: mmap.mmap) -> str:
    h = hashlib.sha256()
    view = memoryview(data)
    try:
        for i in range(0, len(view), 16 << 20):
            h.update(view[i : i + (16 << 20)])
    finally:
        view.release()
    return h.hexdigest()


def scan_bytes(data: bytes, name: str, options: ModelScanOptions | None = None) -> TargetResult:
    """Scan an in-memory artifact (tests, uploads) as if it were a file called ``name``."""
    options = options or ModelScanOptions()
    state = _FileState(options.limits, Deadline(options.limits.max_seconds_per_file))
    _dispatch(data, name, name, state, 0, None)
    return TargetResult(
        target=name,
        findings=tuple(state.findings),
        error="; ".join(state.errors)[:2000] or None,
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )


def _dispatch(data: bytes, name: str, location: str, st: _FileState, depth: int, path: Path | None) -> None:
    try:
        _analyse(data, name, location, st, depth, path)
    except MalformedArtifact as e:
        st.errors.append(f"{location}: {e.message}")
    except ScanError as e:
        st.errors.append(f"{location}: {e.message}")
    except RecursionError:
        st.errors.append(f"{location}: structure nested too deeply")
    except MemoryError:
        st.errors.append(f"{location}: out of memory while analysing")
    except Exception as e:  # noqa: BLE001 - a scanner bug must fail closed for this file, not crash the scan
        st.errors.append(f"{location}: internal scanner error ({type(e).__name__}: {e})")


def _analyse(data: bytes, name: str, location: str, st: _FileState, depth: int, path: Path | None) -> None:
    st.deadline.check()
    fmt = sniff(bytes(data[:_HEAD]), len(data), name)
    if fmt in (F.TEXT, F.UNKNOWN) and PurePosixPath(name).suffix.lower() in _PICKLE_EXTENSIONS:
        fmt = F.PICKLE  # loaders unpickle these names whatever the content: parse it as one (fail closed)
    st.formats.append(fmt.value)
    claims = claimed_formats(name)
    if claims is not None and fmt not in claims and fmt is not F.EMPTY:
        st.findings.append(
            make_finding(
                "format.mismatch",
                Severity.HIGH if fmt in _CODE_FORMATS else Severity.MEDIUM,
                f"named {PurePosixPath(name).suffix!r} but its content is {fmt.value}",
                location=location,
                hint="A file whose content differs from its name is how pickles are smuggled past name-based checks.",
                controls=MODEL_CODE_EXECUTION if fmt in _CODE_FORMATS else MODEL_INTEGRITY,
                metadata={"detected": fmt.value},
            )
        )
    lim = st.limits
    if fmt in (F.PICKLE, F.TORCH_LEGACY):
        _pickle(data, location, st, max_pickles=5 if fmt is F.TORCH_LEGACY else None)
    elif fmt is F.ZIP:
        _zip(data, name, location, st, depth, path)
    elif fmt is F.TAR:
        _nest_guard(depth, lim)
        import io

        containers.scan_tar(
            io.BytesIO(bytes(data)),
            location,
            lim,
            depth,
            st.findings,
            _sink(location, st),
        )
    elif fmt in (F.GZIP, F.BZIP2, F.XZ):
        _nest_guard(depth, lim)
        inner = containers.decompress(bytes(data), fmt.value, lim)
        stem = PurePosixPath(name).stem
        _dispatch(inner, stem, f"{location}!{stem}", st, depth + 1, None)
    elif fmt is F.NUMPY:
        res = tensor_formats.scan_npy(data, location, lim)
        st.findings.extend(res.findings)
        if res.pickle_offset is not None:
            _pickle(data, location, st, start=res.pickle_offset, max_pickles=1)
    elif fmt is F.SAFETENSORS:
        st.findings.extend(tensor_formats.scan_safetensors(data, location, lim).findings)
    elif fmt is F.GGUF:
        st.findings.extend(tensor_formats.scan_gguf(data, location, lim).findings)
    elif fmt is F.ONNX:
        st.findings.extend(graph_formats.scan_onnx(data, location, st.deadline).findings)
    elif fmt is F.SAVED_MODEL:
        st.findings.extend(graph_formats.scan_saved_model(data, location, st.deadline).findings)
    elif fmt is F.HDF5:
        st.findings.extend(keras_formats.scan_h5(data, location))
    elif fmt is F.JSON:
        _json(data, name, location, st)
    elif fmt is F.EMPTY:
        st.findings.append(
            make_finding(
                "file.empty",
                Severity.LOW,
                "zero-length file",
                location=location,
                hint="An empty model file will fail to load; check the download.",
                controls=MODEL_INTEGRITY,
            )
        )
    elif fmt is F.UNKNOWN and PurePosixPath(name).suffix.lower() in MODEL_EXTENSIONS:
        raise MalformedArtifact(f"unrecognised content for a model file named {PurePosixPath(name).name!r}")


_HEAD = 4096


def _nest_guard(depth: int, limits: ScanLimits) -> None:
    if depth >= limits.max_depth:
        raise MalformedArtifact(f"archives nested deeper than {limits.max_depth} levels")


def _pickle(
    data: bytes, location: str, st: _FileState, *, start: int = 0, max_pickles: int | None = None
) -> None:
    scan = functools.partial(
        scan_pickle_stream,
        data,
        location=location,
        limits=st.limits,
        deadline=st.deadline,
        start=start,
        max_pickles=max_pickles,
    )
    try:
        res = scan()
    except NeedsJoblib:  # joblib interleaves raw array bytes: scan again in joblib mode
        res = scan(joblib=True)
    st.findings.extend(res.findings)


def _sink(location: str, st: _FileState) -> containers.MemberSink:
    def sink(member: bytes, name: str, depth: int) -> None:
        _dispatch(member, name, f"{location}!{name}", st, depth, None)

    return sink


def _wants_full(head: bytes, name: str) -> bool:
    fmt = sniff(head, max(len(head), 1), name)
    if fmt is F.NUMPY:
        return b"'O" in head[:_HEAD] or b"|O" in head[:_HEAD] or b"[(" in head[:_HEAD]
    return fmt in _FULL_READ


def _zip(data: bytes, name: str, location: str, st: _FileState, depth: int, path: Path | None) -> None:
    _nest_guard(depth, st.limits)
    import io

    fileobj = path.open("rb") if path is not None else io.BytesIO(bytes(data))
    with fileobj:
        names = containers.scan_zip(
            fileobj,
            len(data),
            location,
            st.limits,
            depth,
            st.findings,
            _sink(location, st),
            _wants_full,
        )
    if "config.json" in names and any(n.endswith(".weights.h5") for n in names):
        st.formats.append(F.KERAS_ZIP.value)


def _json(data: bytes, name: str, location: str, st: _FileState) -> None:
    if len(data) > st.limits.max_header_bytes:
        return
    try:
        obj = json.loads(bytes(data))
    except (ValueError, RecursionError):
        return  # not JSON after all: plain text
    if isinstance(obj, dict):
        tpl = obj.get("chat_template")
        if isinstance(tpl, str):
            st.findings.extend(scan_chat_template(tpl, f"{location}#chat_template"))
        elif isinstance(tpl, list):
            for item in tpl:
                if isinstance(item, dict) and isinstance(item.get("template"), str):
                    st.findings.extend(scan_chat_template(item["template"], f"{location}#chat_template"))
        if "class_name" in obj or "module" in obj:
            st.findings.extend(keras_formats.scan_keras_config(obj, location))
