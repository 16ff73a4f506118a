"""Tensor-only formats: safetensors, GGUF and NumPy ``.npy``. Headers are validated; tensor data is
never read (only its declared extent is checked against the file)."""

from __future__ import annotations

import ast
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from math import prod

from bastion.domain.findings import Finding, Severity
from bastion.scanners.controls import MODEL_CODE_EXECUTION, MODEL_INTEGRITY
from bastion.scanners.model.interface import MalformedArtifact, ScanLimits, make_finding
from bastion.scanners.model.templates import scan_chat_template

_ST_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
    "C64": 8,
    "F4": 1,
    "F6_E2M3": 1,
    "F6_E3M2": 1,
}


@dataclass(slots=True)
class TensorScan:
    findings: list[Finding] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    pickle_offset: int | None = None  # .npy object arrays: where the embedded pickle starts


def _integrity(type_: str, sev: Severity, msg: str, loc: str, hint: str) -> Finding:
    return make_finding(type_, sev, msg, location=loc, hint=hint, controls=MODEL_INTEGRITY)


def _no_dupes(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise MalformedArtifact(f"duplicate key {k!r} in header (ambiguous: loaders disagree)")
        out[k] = v
    return out


def scan_safetensors(data: bytes, location: str, limits: ScanLimits) -> TensorScan:
    """Validate a safetensors header: dtypes, shapes, offsets inside the file, no overlaps or gaps."""
    size = len(data)
    if size < 8:
        raise MalformedArtifact("safetensors file shorter than its 8-byte header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > limits.max_header_bytes or 8 + n > size:
        raise MalformedArtifact(f"safetensors header length {n} exceeds the file or the limit")
    try:
        header = json.loads(bytes(data[8 : 8 + n]), object_pairs_hook=_no_dupes)
    except (ValueError, RecursionError) as e:
        raise MalformedArtifact(f"safetensors header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise MalformedArtifact("safetensors header is not a JSON object")
    out = TensorScan()
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise MalformedArtifact("safetensors __metadata__ must map strings to strings")
        out.metadata = {str(k): v for k, v in meta.items()}
    data_size = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise MalformedArtifact(f"tensor {name!r}: entry is not an object")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _ST_DTYPES:
            raise MalformedArtifact(f"tensor {name!r}: unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise MalformedArtifact(f"tensor {name!r}: invalid shape")
        if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int for o in offs)):
            raise MalformedArtifact(f"tensor {name!r}: invalid data_offsets")
        a, b = offs
        if not 0 <= a <= b <= data_size:
            raise MalformedArtifact(
                f"tensor {name!r}: data_offsets [{a}, {b}] outside the data ({data_size} bytes)"
            )
        need = prod(shape) * _ST_DTYPES[str(dtype)]
        if dtype in ("F4", "F6_E2M3", "F6_E3M2"):
            need = b - a  # sub-byte types: packed sizes vary by producer
        if b - a != need:
            raise MalformedArtifact(
                f"tensor {name!r}: {b - a} bytes for shape {shape} of {dtype} (needs {need})"
            )
        spans.append((a, b, str(name)))
    spans.sort()
    cursor = 0
    for a, b, name in spans:
        if a < cursor:
            out.findings.append(
                _integrity(
                    "safetensors.overlap",
                    Severity.HIGH,
                    f"tensor {name!r} overlaps the previous tensor's data",
                    location,
                    "Overlapping tensors are not produced by the safetensors library; re-export the file.",
                )
            )
        elif a > cursor:
            out.findings.append(
                _integrity(
                    "safetensors.gap",
                    Severity.MEDIUM,
                    f"{a - cursor} unreferenced bytes before tensor {name!r}",
                    location,
                    "Hidden bytes between tensors can carry a payload; re-export the file.",
                )
            )
        cursor = max(cursor, b)
    if cursor < data_size:
        out.findings.append(
            _integrity(
                "safetensors.trailing_data",
                Severity.MEDIUM,
                f"{data_size - cursor} bytes after the last tensor are not referenced by the header",
                location,
                "Appended data (a polyglot file) is not produced by the safetensors library; re-export it.",
            )
        )
    return out


# -- GGUF ------------------------------------------------------------------------------------------
_GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


class _Reader:
    def __init__(self, data: bytes, v1: bool) -> None:
        self.data, self.pos, self.v1 = data, 0, v1

    def unpack(self, fmt: str) -> object:
        try:
            (v,) = struct.unpack_from(fmt, self.data, self.pos)
        except struct.error:
            raise MalformedArtifact(f"GGUF truncated at offset {self.pos}") from None
        self.pos += struct.calcsize(fmt)
        return v

    def count(self) -> int:
        v = self.unpack("<I" if self.v1 else "<Q")
        assert isinstance(v, int)
        if v > len(self.data):
            raise MalformedArtifact(f"GGUF count {v} exceeds the file size at offset {self.pos}")
        return v

    def string(self) -> str:
        n = self.count()
        if self.pos + n > len(self.data):
            raise MalformedArtifact(f"GGUF string runs past the end at offset {self.pos}")
        s = bytes(self.data[self.pos : self.pos + n]).decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, vtype: int, depth: int = 0) -> object:
        if vtype in _GGUF_SCALARS:
            return self.unpack(_GGUF_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9 and depth < 3:
            itype = self.unpack("<I")
            n = self.count()
            assert isinstance(itype, int)
            if itype in _GGUF_SCALARS:  # skip numeric arrays without decoding them
                width = struct.calcsize(_GGUF_SCALARS[itype])
                if self.pos + n * width > len(self.data):
                    raise MalformedArtifact("GGUF array runs past the end of the file")
                self.pos += n * width
                return None
            return [self.value(itype, depth + 1) for _ in range(n)]
        raise MalformedArtifact(f"GGUF metadata value of unknown type {vtype} at offset {self.pos}")


def scan_gguf(data: bytes, location: str, limits: ScanLimits) -> TensorScan:
    """Parse the GGUF header, metadata and tensor table; check chat templates for template injection."""
    if len(data) < 8:
        raise MalformedArtifact("GGUF file shorter than its header")
    (version,) = struct.unpack_from("<I", data, 4)
    if version not in (1, 2, 3):
        raise MalformedArtifact(f"unsupported GGUF version {version}")
    r = _Reader(data, version == 1)
    r.pos = 8
    n_tensors, n_kv = r.count(), r.count()
    out = TensorScan()
    alignment = 32
    for _ in range(n_kv):
        key = r.string()
        vtype = r.unpack("<I")
        assert isinstance(vtype, int)
        value = r.value(vtype)
        if (
            isinstance(value, str | int | float)
            and len(out.metadata) < 64
            and not key.startswith("tokenizer.ggml")
        ):
            out.metadata[key] = str(value)[:200]
        if key == "general.alignment" and isinstance(value, int) and value > 0:
            alignment = value
        if key.startswith("tokenizer.chat_template") and isinstance(value, str):
            out.findings.extend(scan_chat_template(value, f"{location}#{key}"))
    infos: list[tuple[int, int, str]] = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.unpack("<I")
        assert isinstance(n_dims, int)
        if n_dims > 8:
            raise MalformedArtifact(f"GGUF tensor {name!r} has {n_dims} dimensions")
        for _ in range(n_dims):
            r.unpack("<I" if r.v1 else "<Q")
        r.unpack("<I")
        off = r.unpack("<Q")
        assert isinstance(off, int)
        infos.append((off, 0, name))
    data_start = -(-r.pos // alignment) * alignment
    for off, _, name in infos:
        if data_start + off > len(data):
            raise MalformedArtifact(f"GGUF tensor {name!r} starts past the end of the file")
    return out


# -- NumPy ------------------------------------------------------------------------------------------
def scan_npy(data: bytes, location: str, limits: ScanLimits) -> TensorScan:
    """Validate a ``.npy`` header; an object array's payload is a pickle (its offset is returned)."""
    if len(data) < 10:
        raise MalformedArtifact("npy file shorter than its header")
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", data, 8)
        start = 10
    elif major in (2, 3):
        (hlen,) = struct.unpack_from("<I", data, 8)
        start = 12
    else:
        raise MalformedArtifact(f"unsupported npy version {major}")
    if hlen > min(limits.max_header_bytes, 1 << 20) or start + hlen > len(data):
        raise MalformedArtifact("npy header length exceeds the file or the limit")
    try:
        header = ast.literal_eval(
            bytes(data[start : start + hlen]).decode("latin-1" if major < 3 else "utf-8")
        )
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError) as e:
        raise MalformedArtifact(f"npy header is not a literal dict: {e}") from None
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= header.keys():
        raise MalformedArtifact("npy header lacks descr/fortran_order/shape")
    out = TensorScan()
    descr, shape = header["descr"], header["shape"]
    if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
        raise MalformedArtifact("npy shape is invalid")
    offset = start + hlen
    if _has_object(descr):
        out.findings.append(
            make_finding(
                "numpy.object_array",
                Severity.LOW,
                "object array: loading it needs allow_pickle=True, which unpickles the payload (scanned below)",
                location=location,
                hint="Store numeric arrays; object arrays are pickles.",
                controls=MODEL_CODE_EXECUTION,
            )
        )
        out.pickle_offset = offset
        return out
    itemsize = _itemsize(descr)
    if itemsize is not None and offset + prod(shape) * itemsize > len(data):
        raise MalformedArtifact("npy data is shorter than its shape and dtype need")
    return out


def _has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return "O" in descr.lstrip("<>|=")[:1]
    if isinstance(descr, list):
        return any(isinstance(f, tuple) and len(f) >= 2 and _has_object(f[1]) for f in descr)
    return True  # unknown descr shape: assume the worst


def _itemsize(descr: object) -> int | None:
    if isinstance(descr, str) and descr[1:2].isalpha() and descr[2:].isdigit():
        return int(descr[2:]) * (4 if descr[1] == "U" else 1)
    return None


TensorScanner = Callable[[bytes, str, ScanLimits], TensorScan]
