"""The ledger's Ed25519 tree-head signing key on disk: create it (mode 0600), load it (fail closed on loose
permissions or a non-Ed25519 key), and render public keys as the PEM auditors pin.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from bastion.errors import ConfigError

__all__ = ["load_or_create_signing_key", "public_key_pem"]


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 tree-head key at ``path`` (PEM, PKCS#8), created with mode 0600 if missing.

    An existing key readable or writable by group or others is refused (fail closed).
    """
    path = Path(path)
    try:
        return _load_key(path)
    except FileNotFoundError:
        pass
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_key(path)  # another process created it first
    except OSError as e:
        raise ConfigError(f"cannot create the ledger signing key at {str(path)!r}: {e.strerror}") from e
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return key


def _load_key(path: Path) -> Ed25519PrivateKey:
    st = path.stat()  # FileNotFoundError goes to the caller
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the ledger signing key {str(path)!r} is accessible by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"Restrict it: chmod 600 {path}",
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as e:
        raise ConfigError(
            f"the ledger signing key {str(path)!r} is not an unencrypted PEM private key",
            hint="Point ledger.signing_key_file at an Ed25519 PKCS#8 PEM file, or remove it to create one.",
        ) from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the ledger signing key {str(path)!r} is not an Ed25519 key")
    return key


def public_key_pem(key: Ed25519PublicKey) -> str:
    """``key`` as a SubjectPublicKeyInfo PEM (what auditors pin)."""
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")
