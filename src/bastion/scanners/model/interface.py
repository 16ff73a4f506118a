"""Values shared by the model-artifact scanners: limits, the format vocabulary and finding builders."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bastion.domain.findings import Finding, Scalar, Severity
from bastion.errors import ScanError

DETECTOR = "model-scanner"

_SCORES = {
    Severity.INFO: 0.1,
    Severity.LOW: 0.3,
    Severity.MEDIUM: 0.6,
    Severity.HIGH: 0.85,
    Severity.CRITICAL: 1.0,
}


class ArtifactFormat(StrEnum):
    """What a file is, judged by its content (never by its extension)."""

    PICKLE = "pickle"
    TORCH_ZIP = "pytorch-zip"
    TORCH_LEGACY = "pytorch-legacy"
    TORCH_TAR = "pytorch-tar"
    JOBLIB = "joblib"
    NUMPY = "numpy"
    NUMPY_ZIP = "numpy-npz"
    KERAS_ZIP = "keras"
    HDF5 = "hdf5"
    SAVED_MODEL = "tf-saved-model"
    ONNX = "onnx"
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    TEXT = "text"
    JSON = "json"
    EMPTY = "empty"
    UNKNOWN = "unknown"


class ScanTimeout(ScanError):
    """The per-file time budget ran out; the file is reported as not analysed."""

    code = "scan_timeout"


class MalformedArtifact(ScanError):
    """The file does not parse as the format it claims to be (fail closed)."""

    code = "malformed_artifact"


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Per-file bounds on work and memory; a file that exceeds one is an error, never clean."""

    max_seconds_per_file: float = 120.0
    max_member_bytes: int = 4 << 30  # one decompressed archive member held for analysis
    max_total_uncompressed: int = 64 << 30
    max_compression_ratio: float = 250.0  # with members over 1 MiB: a zip bomb
    max_depth: int = 4  # archives inside archives
    max_members: int = 100_000
    max_pickle_stack: int = 2_000_000
    max_memo: int = 8_000_000
    max_header_bytes: int = 100 << 20  # safetensors/GGUF/JSON headers and metadata


@dataclass(slots=True)
class Deadline:
    """A monotonic deadline; :meth:`check` raises :class:`ScanTimeout` once it has passed."""

    seconds: float
    expires: float = field(init=False)

    def __post_init__(self) -> None:
        self.expires = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self.expires:
            raise ScanTimeout(f"analysis exceeded the {self.seconds:g} s per-file limit")


def make_finding(
    type_: str,
    severity: Severity,
    message: str,
    *,
    location: str,
    hint: str,
    controls: tuple[str, ...],
    metadata: Mapping[str, Scalar] | None = None,
) -> Finding:
    """A scanner finding with the score implied by its severity."""
    return Finding(
        detector=DETECTOR,
        type=type_,
        score=_SCORES[severity],
        severity=severity,
        message=message,
        location=location,
        hint=hint,
        controls=controls,
        metadata=dict(metadata or {}),
    )
