"""Recognise an artifact's format from its content; the file name is only a hint for mismatch reports."""

from __future__ import annotations

import struct
from pathlib import PurePosixPath

from bastion.scanners.model.interface import ArtifactFormat

_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_PICKLE_FIRST = frozenset(b"(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrst)uGBC\x80")

#: What each extension claims to be (used only to report mismatches).
EXTENSION_CLAIMS: dict[str, frozenset[ArtifactFormat]] = {
    ".safetensors": frozenset({ArtifactFormat.SAFETENSORS}),
    ".gguf": frozenset({ArtifactFormat.GGUF}),
    ".onnx": frozenset({ArtifactFormat.ONNX}),
    ".npy": frozenset({ArtifactFormat.NUMPY}),
    ".npz": frozenset({ArtifactFormat.NUMPY_ZIP, ArtifactFormat.ZIP}),
    ".h5": frozenset({ArtifactFormat.HDF5}),
    ".hdf5": frozenset({ArtifactFormat.HDF5}),
    ".keras": frozenset({ArtifactFormat.KERAS_ZIP, ArtifactFormat.ZIP, ArtifactFormat.HDF5}),
    ".json": frozenset({ArtifactFormat.JSON}),
}
#: Extensions under which an unrecognised binary is an error rather than "not a model".
MODEL_EXTENSIONS = frozenset(
    [
        ".pt",
        ".pth",
        ".bin",
        ".ckpt",
        ".pkl",
        ".pickle",
        ".joblib",
        ".jbl",
        ".dill",
        ".mar",
        ".model",
        ".sav",
        ".npy",
        ".npz",
        ".h5",
        ".hdf5",
        ".keras",
        ".pb",
        ".onnx",
        ".safetensors",
        ".gguf",
        ".ggml",
        ".tflite",
        ".msgpack",
        ".zip",
        ".tar",
        ".tgz",
        ".gz",
        ".xz",
        ".bz2",
        ".pkl.gz",
    ]
)


def sniff(head: bytes, size: int, name: str = "") -> ArtifactFormat:
    """The format of a file whose first bytes are ``head`` (at least 1 KiB where available)."""
    if size == 0:
        return ArtifactFormat.EMPTY
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return ArtifactFormat.TORCH_LEGACY
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return ArtifactFormat.PICKLE
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return ArtifactFormat.ZIP
    if head.startswith(b"\x93NUMPY"):
        return ArtifactFormat.NUMPY
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return ArtifactFormat.HDF5
    if head.startswith(b"GGUF"):
        return ArtifactFormat.GGUF
    if head.startswith(b"\x1f\x8b"):
        return ArtifactFormat.GZIP
    if head.startswith(b"BZh"):
        return ArtifactFormat.BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return ArtifactFormat.XZ
    if len(head) >= 262 and head[257:262] == b"ustar":
        return ArtifactFormat.TAR
    if len(head) >= 9:
        (n,) = struct.unpack_from("<Q", head)
        if 2 <= n <= size - 8 and head[8:9] == b"{":
            return ArtifactFormat.SAFETENSORS
    base = PurePosixPath(name).name
    if base in ("saved_model.pb", "keras_metadata.pb", "fingerprint.pb"):
        return ArtifactFormat.SAVED_MODEL
    if _looks_like_onnx(head):
        return ArtifactFormat.ONNX
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return ArtifactFormat.JSON
    if head[0] in _PICKLE_FIRST and _text_ratio(head) < 0.95:
        return ArtifactFormat.PICKLE  # protocol 0/1 pickles have no PROTO opcode
    if _text_ratio(head) >= 0.95:
        # protocol 0 pickles are text; they start with an opcode and end with STOP
        if head[:1] in (b"c", b"(", b"I", b"S", b"V", b"]", b"}", b"N", b"l", b"d") and b"\n" in head[:256]:
            return ArtifactFormat.PICKLE
        return ArtifactFormat.TEXT
    return ArtifactFormat.UNKNOWN


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint) and names its producer (field 2) or graph (7).
    return len(head) > 4 and head[0] == 0x08 and head[1] < 0x20 and head[2] in (0x12, 0x1A, 0x22, 0x3A, 0x42)


def _text_ratio(head: bytes) -> float:
    sample = head[:1024]
    if not sample:
        return 1.0
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    return printable / len(sample)


def claimed_formats(name: str) -> frozenset[ArtifactFormat] | None:
    """The formats the file name's extension claims, or ``None`` when it claims nothing specific."""
    return EXTENSION_CLAIMS.get(PurePosixPath(name).suffix.lower())
