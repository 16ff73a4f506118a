"""Archives: zip (PyTorch, Keras, npz), tar and single-stream compression, with bomb and trick checks.

Archive members are analysed by content like top-level files. Limits bound the number of members,
nesting depth, each member's decompressed size, the total and the compression ratio; exceeding one
is an error for that archive (never clean). Ambiguous structures that make loaders and scanners see
different files (duplicate names, overlapping entries, prepended data, unsafe paths) are findings.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import lzma
import posixpath
import re
import tarfile
import zipfile
from collections.abc import Callable
from typing import IO
from zlib import error as zlib_error

from bastion.domain.findings import Finding, Severity
from bastion.scanners.controls import MODEL_INTEGRITY
from bastion.scanners.model.interface import MalformedArtifact, ScanLimits, make_finding

MemberSink = Callable[[bytes, str, int], None]  # (data, member name, depth)
_TORCH_STORAGE = re.compile(r"(?:^|/)data/\d+\Z")
_SNIFF = 4096


class ArchiveError(MalformedArtifact):
    code = "unsafe_archive"


def _integrity(type_: str, sev: Severity, msg: str, location: str) -> Finding:
    return make_finding(
        type_,
        sev,
        msg,
        location=location,
        hint="Loaders and scanners may read different files from this archive; rebuild it with a standard tool.",
        controls=MODEL_INTEGRITY,
    )


def _unsafe_name(name: str) -> bool:
    n = name.replace("\\", "/")
    return n.startswith("/") or bool(re.match(r"[A-Za-z]:", n)) or posixpath.normpath(n).startswith("../")


def scan_zip(
    fileobj: IO[bytes],
    size: int,
    location: str,
    limits: ScanLimits,
    depth: int,
    findings: list[Finding],
    sink: MemberSink,
    wants_full: Callable[[bytes, str], bool],
) -> list[str]:
    """Check a zip's structure and hand each member worth analysing to ``sink``; returns member names."""
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise ArchiveError(f"zip structure is invalid: {e}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise ArchiveError(f"zip holds {len(infos)} members (limit {limits.max_members})")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})[:5]
            findings.append(
                _integrity(
                    "zip.duplicate_name",
                    Severity.HIGH,
                    f"duplicate member names {dupes}: loaders and scanners may pick different entries",
                    location,
                )
            )
        total = sum(i.file_size for i in infos)
        if total > limits.max_total_uncompressed:
            raise ArchiveError(f"zip expands to {total} bytes (limit {limits.max_total_uncompressed})")
        offsets = sorted(
            (i.header_offset, i.header_offset + 30 + len(i.orig_filename.encode()) + i.compress_size)
            for i in infos
        )
        for (_a0, a1), (b0, _b1) in itertools.pairwise(offsets):
            if b0 < a1:
                findings.append(
                    _integrity(
                        "zip.overlapping_entries",
                        Severity.HIGH,
                        "zip entries overlap (a non-recursive zip bomb or a parser-confusion trick)",
                        location,
                    )
                )
                break
        if offsets and offsets[0][0] > 0:
            findings.append(
                _integrity(
                    "zip.prepended_data",
                    Severity.MEDIUM,
                    f"{offsets[0][0]} bytes precede the first zip entry (a polyglot file)",
                    location,
                )
            )
        is_torch = any(n == "data.pkl" or n.endswith("/data.pkl") for n in names)
        for info in infos:
            name = info.filename
            if _unsafe_name(name):
                findings.append(
                    _integrity(
                        "zip.path_traversal",
                        Severity.MEDIUM,
                        f"member {name[:200]!r} extracts outside its folder",
                        location,
                    )
                )
            if info.is_dir():
                continue
            if info.flag_bits & 0x1:
                raise ArchiveError(f"member {name[:200]!r} is encrypted and cannot be analysed")
            if info.file_size > 1 << 20 and info.file_size > limits.max_compression_ratio * max(
                info.compress_size, 1
            ):
                raise ArchiveError(
                    f"member {name[:200]!r} expands {info.file_size // max(info.compress_size, 1)}x (zip bomb)"
                )
            if info.file_size > limits.max_member_bytes:
                raise ArchiveError(
                    f"member {name[:200]!r} is larger than the {limits.max_member_bytes}-byte limit"
                )
            if is_torch and _TORCH_STORAGE.search(name):
                continue  # raw tensor storage: never unpickled by torch.load, skipped unread
            try:
                with zf.open(info) as fh:
                    head = fh.read(_SNIFF)
                    if not wants_full(head, name):
                        sink(head, name, depth + 1)  # sniffed content is enough (e.g. text, tensor data)
                        continue
                    rest = fh.read(info.file_size - len(head) + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib_error) as e:
                raise ArchiveError(f"member {name[:200]!r} cannot be read: {e}") from None
            data = head + rest
            if len(data) != info.file_size:
                raise ArchiveError(f"member {name[:200]!r} size differs from its directory entry")
            sink(data, name, depth + 1)
        return names


def scan_tar(
    fileobj: IO[bytes],
    location: str,
    limits: ScanLimits,
    depth: int,
    findings: list[Finding],
    sink: MemberSink,
) -> list[str]:
    """Check a tar's members (unsafe paths, links, devices) and hand regular files to ``sink``."""
    names: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r:") as tf:
            for count, member in enumerate(tf):
                if count >= limits.max_members:
                    raise ArchiveError(f"tar holds more than {limits.max_members} members")
                names.append(member.name)
                if _unsafe_name(member.name):
                    findings.append(
                        _integrity(
                            "tar.path_traversal",
                            Severity.HIGH,
                            f"member {member.name[:200]!r} extracts outside its folder",
                            location,
                        )
                    )
                if member.issym() or member.islnk():
                    findings.append(
                        _integrity(
                            "tar.link",
                            Severity.MEDIUM,
                            f"member {member.name[:200]!r} links to {member.linkname[:200]!r}",
                            location,
                        )
                    )
                    continue
                if member.isdev() or member.isfifo():
                    findings.append(
                        _integrity(
                            "tar.special_file",
                            Severity.HIGH,
                            f"member {member.name[:200]!r} is a device or FIFO",
                            location,
                        )
                    )
                    continue
                if not member.isfile():
                    continue
                total += member.size
                if member.size > limits.max_member_bytes or total > limits.max_total_uncompressed:
                    raise ArchiveError(f"member {member.name[:200]!r} exceeds the size limits")
                fh = tf.extractfile(member)
                if fh is None:
                    continue
                sink(fh.read(member.size), member.name, depth + 1)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ArchiveError(f"tar structure is invalid: {e}") from None
    return names


def decompress(data: bytes, kind: str, limits: ScanLimits) -> bytes:
    """Decompress a gzip/bzip2/xz stream, refusing to grow past the member limit or the ratio."""
    cap = min(limits.max_member_bytes, max(1 << 20, int(len(data) * limits.max_compression_ratio)))
    buf = io.BytesIO(data)
    stream: gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile
    if kind == "gzip":
        stream = gzip.GzipFile(fileobj=buf)
    elif kind == "bzip2":
        stream = bz2.BZ2File(buf)
    else:
        stream = lzma.LZMAFile(buf)  # noqa: SIM115 - closed by the `with` below
    try:
        with stream:
            out = stream.read(cap + 1)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
        raise ArchiveError(f"{kind} stream is invalid: {e}") from None
    if len(out) > cap:
        raise ArchiveError(f"{kind} stream expands beyond {cap} bytes (compression bomb)")
    return bytes(out)
