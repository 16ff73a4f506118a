"""Whole-file operations on the streaming format, with atomic output.

Output goes to a temporary file in the target directory and is renamed over the target only
after the last segment authenticated (decrypt) or was written and synced (encrypt). On any
failure the temporary file is removed: no partial output is ever left behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bastion.crypto.keys.interface import KeyProvider
from bastion.crypto.stream import (
    DEFAULT_SEGMENT_SIZE,
    HEADER_SIZE,
    Progress,
    StreamHeader,
    decrypt_stream,
    encrypt_stream,
    rewrap_region,
)
from bastion.errors import InputError

_IO_BUFFER = 1 << 20


@contextmanager
def atomic_output(target: str | Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """A binary file that becomes ``target`` only if the ``with`` block completes."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise InputError(f"output {str(target)!r} exists; pass --force to replace it")
    if target.is_dir():
        raise InputError(f"output {str(target)!r} is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"output directory {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb", buffering=_IO_BUFFER) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _open_input(path: str | Path) -> BinaryIO:
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError:
        raise InputError(f"input {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"input {str(path)!r} is a directory") from None
    except OSError as e:
        raise InputError(f"input {str(path)!r} cannot be read: {e.strerror}") from e


def encrypt_file(
    src: str | Path,
    dst: str | Path,
    *,
    provider: KeyProvider,
    key_id: str,
    object_id: str,
    purpose: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> StreamHeader:
    """Encrypt file ``src`` into ``dst`` atomically."""
    if Path(src).resolve() == Path(dst).resolve():
        raise InputError("input and output are the same file")
    with _open_input(src) as fin, atomic_output(dst, overwrite=overwrite) as fout:
        return encrypt_stream(
            fin,
            fout,
            provider=provider,
            key_id=key_id,
            object_id=object_id,
            purpose=purpose,
            segment_size=segment_size,
            progress=progress,
        )


def decrypt_file(
    src: str | Path,
    dst: str | Path,
    *,
    provider: KeyProvider,
    expected_object_id: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> StreamHeader:
    """Decrypt file ``src`` into ``dst`` atomically; nothing is left at ``dst`` on failure."""
    if Path(src).resolve() == Path(dst).resolve():
        raise InputError("input and output are the same file")
    with _open_input(src) as fin, atomic_output(dst, overwrite=overwrite) as fout:
        return decrypt_stream(
            fin, fout, provider=provider, expected_object_id=expected_object_id, progress=progress
        )


def rewrap_file(path: str | Path, *, provider: KeyProvider, key_id: str) -> StreamHeader:
    """Re-wrap the data key of encrypted file ``path`` under the active version of ``key_id``.

    Only the fixed 4096-byte header region is rewritten (in place, then fsync); the bulk data is
    neither re-encrypted nor copied. The old KEK version must still be able to unwrap.
    """
    with _open_input(path) as f:
        region = f.read(HEADER_SIZE)
    header, new_region = rewrap_region(region, provider, key_id)
    fd = os.open(path, os.O_WRONLY)
    try:
        if os.pwrite(fd, new_region, 0) != HEADER_SIZE:
            raise OSError("short write while rewriting the header")
        os.fsync(fd)
    finally:
        os.close(fd)
    return header
