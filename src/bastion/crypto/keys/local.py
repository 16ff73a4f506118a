"""The local development keyring: KEKs in one file, encrypted under a passphrase-derived key.

For development only: the provider refuses to start outside ``environment: development`` and
logs a warning every time it is opened. The file is JSON::

    {"format": "bastion-keyring", "version": 1,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<b64>"},
     "nonce": "<b64>", "ciphertext": "<b64 AES-256-GCM of the key table>"}

The key table is encrypted with AES-256-GCM under ``scrypt(passphrase, salt)``; the associated
data is the format name and version, so a wrong passphrase or any modified byte is detected.
Wrapped data keys are ``0x01 || nonce(12) || AES-256-GCM(KEK, data_key, aad)`` where the
associated data binds key id, key version and the caller's context.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bastion.crypto.keys.interface import (
    PROBE_KEY,
    KeyInfo,
    KeyNotFoundError,
    KeyProviderError,
    KeyState,
    KeyVersion,
    ProviderHealth,
    UnwrapError,
    WrappedKey,
    check_data_key,
    check_key_id,
    key_providers,
    wrap_aad,
)
from bastion.errors import ConfigError

log = logging.getLogger(__name__)

FORMAT = "bastion-keyring"
FORMAT_VERSION = 1
_FILE_AAD = f"{FORMAT}/v{FORMAT_VERSION}".encode()
_BLOB_VERSION = 1
DEFAULT_SCRYPT_N = 2**15
MIN_SCRYPT_N = 2**10  # tests only; the default is what a development machine should use


@dataclass(slots=True)
class _Version:
    version: int
    created_at: datetime
    material: bytes


class LocalKeyring:
    """KEKs in a passphrase-protected file (development only)."""

    name = "local"

    def __init__(
        self,
        path: str | Path,
        passphrase: str,
        *,
        environment: str = "development",
        scrypt_n: int = DEFAULT_SCRYPT_N,
        create: bool = True,
    ) -> None:
        if environment != "development":
            raise ConfigError(
                "the local development keyring is refused outside environment: development",
                hint="Set crypto.provider to pkcs11 or vault (or a cloud KMS) for staging and production.",
            )
        if not passphrase:
            raise ConfigError(
                "the local keyring needs a passphrase",
                hint="Set BASTION_KEYRING_PASSPHRASE (or the variable named by crypto.local.passphrase_env).",
            )
        if scrypt_n < MIN_SCRYPT_N or scrypt_n & (scrypt_n - 1):
            raise ConfigError(f"crypto.local.scrypt_n must be a power of two >= {MIN_SCRYPT_N}")
        log.warning("using the LOCAL DEVELOPMENT keyring %s: not for production data", path)
        self.path = Path(path)
        self._passphrase = passphrase.encode()
        self._scrypt_n = scrypt_n
        self._lock = threading.RLock()
        self._keys: dict[str, list[_Version]] = {}
        self._salt = secrets.token_bytes(16)
        self._file_key: bytes | None = None
        if self.path.exists():
            self._load()
        elif create:
            self._save()
        else:
            raise KeyProviderError(f"local keyring {str(self.path)!r} does not exist")

    # -- file handling -------------------------------------------------------------------------

    def _derive(self, salt: bytes, n: int) -> bytes:
        return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(self._passphrase)

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT or doc.get("version") != FORMAT_VERSION:
                raise ValueError("not a bastion keyring (format/version)")
            kdf = doc["kdf"]
            if kdf.get("name") != "scrypt":
                raise ValueError(f"unsupported kdf {kdf.get('name')!r}")
            salt = base64.b64decode(kdf["salt"], validate=True)
            n = int(kdf["n"])
            if n < MIN_SCRYPT_N or n > 2**22 or int(kdf["r"]) != 8 or int(kdf["p"]) != 1:
                raise ValueError("unsupported scrypt parameters")
            nonce = base64.b64decode(doc["nonce"], validate=True)
            ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise KeyProviderError(f"local keyring {str(self.path)!r} is unreadable: {e}") from e
        file_key = self._derive(salt, n)
        try:
            table = json.loads(AESGCM(file_key).decrypt(nonce, ciphertext, _FILE_AAD))
        except InvalidTag:
            raise KeyProviderError(
                f"local keyring {str(self.path)!r}: wrong passphrase, or the file was modified",
                hint="Check BASTION_KEYRING_PASSPHRASE; a modified keyring cannot be repaired.",
            ) from None
        self._salt, self._scrypt_n, self._file_key = salt, n, file_key
        self._keys = {
            kid: [
                _Version(
                    int(v["version"]),
                    datetime.fromisoformat(v["created_at"]),
                    base64.b64decode(v["material"]),
                )
                for v in versions
            ]
            for kid, versions in table["keys"].items()
        }

    def _save(self) -> None:
        if self._file_key is None:
            self._file_key = self._derive(self._salt, self._scrypt_n)
        table: dict[str, Any] = {
            "keys": {
                kid: [
                    {
                        "version": v.version,
                        "created_at": v.created_at.isoformat(),
                        "material": base64.b64encode(v.material).decode(),
                    }
                    for v in versions
                ]
                for kid, versions in self._keys.items()
            }
        }
        nonce = secrets.token_bytes(12)
        ciphertext = AESGCM(self._file_key).encrypt(nonce, json.dumps(table).encode(), _FILE_AAD)
        doc = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "kdf": {"name": "scrypt", "n": self._scrypt_n, "r": 8, "p": 1, "salt": _b64(self._salt)},
            "nonce": _b64(nonce),
            "ciphertext": _b64(ciphertext),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keyring-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- KeyProvider ---------------------------------------------------------------------------

    def _info(self, key_id: str) -> KeyInfo:
        versions = self._keys.get(key_id)
        if not versions:
            raise KeyNotFoundError(f"key {key_id!r} does not exist in the local keyring")
        top = max(v.version for v in versions)
        return KeyInfo(
            key_id,
            tuple(
                KeyVersion(
                    v.version, KeyState.ACTIVE if v.version == top else KeyState.DECRYPT_ONLY, v.created_at
                )
                for v in sorted(versions, key=lambda v: v.version)
            ),
        )

    def create_key(self, key_id: str) -> KeyInfo:
        check_key_id(key_id)
        with self._lock:
            if key_id in self._keys:
                raise KeyProviderError(f"key {key_id!r} already exists in the local keyring")
            self._keys[key_id] = [_Version(1, datetime.now(UTC), AESGCM.generate_key(256))]
            self._save()
            return self._info(key_id)

    def key_info(self, key_id: str) -> KeyInfo:
        with self._lock:
            return self._info(key_id)

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            return [self._info(k) for k in sorted(self._keys)]

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> WrappedKey:
        check_data_key(data_key)
        with self._lock:
            versions = self._keys.get(key_id)
            if not versions:
                raise KeyNotFoundError(f"key {key_id!r} does not exist in the local keyring")
            active = max(versions, key=lambda v: v.version)
        nonce = secrets.token_bytes(12)
        ct = AESGCM(active.material).encrypt(nonce, data_key, wrap_aad(key_id, active.version, context))
        return WrappedKey(self.name, key_id, active.version, bytes([_BLOB_VERSION]) + nonce + ct)

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        if wrapped.provider != self.name:
            raise UnwrapError(f"data key was wrapped by provider {wrapped.provider!r}, not {self.name!r}")
        with self._lock:
            found = [v for v in self._keys.get(wrapped.key_id, []) if v.version == wrapped.version]
        if not found:
            raise KeyNotFoundError(
                f"key {wrapped.key_id!r} version {wrapped.version} does not exist (never created, or retired)"
            )
        blob = wrapped.blob
        if len(blob) != 1 + 12 + 32 + 16 or blob[0] != _BLOB_VERSION:
            raise UnwrapError(f"wrapped data key for {wrapped.key_id!r} is malformed")
        try:
            return AESGCM(found[0].material).decrypt(
                blob[1:13], blob[13:], wrap_aad(wrapped.key_id, wrapped.version, context)
            )
        except InvalidTag:
            raise UnwrapError(
                f"wrapped data key did not authenticate under {wrapped.key_id!r} v{wrapped.version}"
            ) from None

    def rotate(self, key_id: str) -> KeyInfo:
        with self._lock:
            versions = self._keys.get(key_id)
            if not versions:
                raise KeyNotFoundError(f"key {key_id!r} does not exist in the local keyring")
            top = max(v.version for v in versions)
            versions.append(_Version(top + 1, datetime.now(UTC), AESGCM.generate_key(256)))
            self._save()
            return self._info(key_id)

    def retire(self, key_id: str, below_version: int) -> KeyInfo:
        with self._lock:
            info = self._info(key_id)
            if below_version > info.active.version:
                raise KeyProviderError(f"refusing to retire the active version of {key_id!r}")
            self._keys[key_id] = [v for v in self._keys[key_id] if v.version >= below_version]
            self._save()
            return self._info(key_id)

    def check(self) -> ProviderHealth:
        try:
            with self._lock:
                if PROBE_KEY not in self._keys:
                    self.create_key(PROBE_KEY)
            dek = secrets.token_bytes(32)
            t0 = time.perf_counter()
            ok = self.unwrap(self.wrap(PROBE_KEY, dek, b"probe"), b"probe") == dek
            us = (time.perf_counter() - t0) * 1e6
        except Exception as e:  # noqa: BLE001 - a health check reports, it never raises
            return ProviderHealth(self.name, False, f"{type(e).__name__}: {e}")
        return ProviderHealth(self.name, ok, f"local keyring {self.path} (DEVELOPMENT ONLY)", us)

    def close(self) -> None:
        self._file_key = None


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


key_providers.add("local", LocalKeyring)
