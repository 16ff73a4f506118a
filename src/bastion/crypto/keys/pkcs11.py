"""PKCS#11 HSM key provider (``python-pkcs11``), tested against SoftHSM2.

KEKs are AES-256 secret-key objects on the token, generated inside it as sensitive and
non-extractable; the key material never leaves the HSM. Each version is one object labelled
``bastion:<key_id>:v<version>`` whose ``CKA_ID`` holds its creation time (8-byte big-endian Unix
seconds). Wrapping is ``CKM_AES_GCM`` with a random 96-bit nonce and associated data that binds
key id, version and the caller's context; the stored blob is ``0x01 || nonce(12) || ciphertext+tag``.
Retiring a version destroys its object.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import struct
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

_BLOB_VERSION = 1
# PKCS#11 login state is per process and token; remember which PIN logged in (as a digest).
_LOGGED_IN: dict[tuple[str, str], bytes] = {}
_LABEL = re.compile(r"bastion:([A-Za-z0-9][A-Za-z0-9_.-]{0,63}):v(\d{1,9})")


class Pkcs11Provider:
    """KEKs held in a PKCS#11 token."""

    name = "pkcs11"

    def __init__(
        self,
        library: str | Path,
        token_label: str,
        pin: str,
        *,
        environment: str = "development",
    ) -> None:
        try:
            import pkcs11
        except ImportError as e:  # pragma: no cover - python-pkcs11 is a dependency
            raise ConfigError("python-pkcs11 is not installed") from e
        self._p11: Any = pkcs11
        if not Path(library).is_file():
            raise ConfigError(
                f"PKCS#11 library {str(library)!r} does not exist",
                hint="Set crypto.pkcs11.library to the module path (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).",
            )
        if not pin:
            raise ConfigError(
                "crypto.pkcs11: no user PIN", hint="Set the variable named by crypto.pkcs11.pin_env."
            )
        self._lock = threading.RLock()
        try:
            lib = pkcs11.lib(str(library))
            token = lib.get_token(token_label=token_label)
            login = (str(library), token_label)
            pin_digest = hashlib.sha256(pin.encode()).digest()
            try:
                self._session: Any = token.open(user_pin=pin, rw=True)
                _LOGGED_IN[login] = pin_digest
            except pkcs11.UserAlreadyLoggedIn:
                # Login is per process and token: another provider here already logged in.
                # Only a caller presenting the same PIN may share that login.
                if not hmac.compare_digest(_LOGGED_IN.get(login, b""), pin_digest):
                    raise pkcs11.PinIncorrect() from None
                self._session = token.open(rw=True)
        except pkcs11.NoSuchToken as e:
            raise KeyProviderError(f"PKCS#11 token {token_label!r} not found in {library}") from e
        except pkcs11.PinIncorrect as e:
            raise KeyProviderError(f"PKCS#11 token {token_label!r}: wrong PIN") from e
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as e:
            raise KeyProviderError(f"PKCS#11 token {token_label!r} cannot be opened: {e!r}") from e
        self.token_label = token_label
        self._handles: dict[tuple[str, int], Any] = {}

    # -- token objects -------------------------------------------------------------------------

    def _objects(self) -> dict[tuple[str, int], tuple[Any, datetime]]:
        p11 = self._p11
        found: dict[tuple[str, int], tuple[Any, datetime]] = {}
        try:
            for obj in self._session.get_objects({p11.Attribute.CLASS: p11.ObjectClass.SECRET_KEY}):
                m = _LABEL.fullmatch(obj[p11.Attribute.LABEL] or "")
                if not m:
                    continue
                raw_id = bytes(obj[p11.Attribute.ID] or b"")
                created = (
                    datetime.fromtimestamp(struct.unpack(">Q", raw_id)[0], UTC)
                    if len(raw_id) == 8
                    else datetime.fromtimestamp(0, UTC)
                )
                found[(m.group(1), int(m.group(2)))] = (obj, created)
        except p11.PKCS11Error as e:
            raise KeyProviderError(f"PKCS#11: listing keys failed: {e!r}") from e
        return found

    def _infos(self) -> dict[str, KeyInfo]:
        by_key: dict[str, list[tuple[int, datetime]]] = {}
        for (kid, ver), (_obj, created) in self._objects().items():
            by_key.setdefault(kid, []).append((ver, created))
        out = {}
        for kid, versions in by_key.items():
            top = max(v for v, _ in versions)
            out[kid] = KeyInfo(
                kid,
                tuple(
                    KeyVersion(v, KeyState.ACTIVE if v == top else KeyState.DECRYPT_ONLY, c)
                    for v, c in sorted(versions)
                ),
            )
        return out

    def _generate(self, key_id: str, version: int) -> None:
        p11 = self._p11
        now = int(time.time())
        try:
            self._session.generate_key(
                p11.KeyType.AES,
                256,
                label=f"bastion:{key_id}:v{version}",
                id=struct.pack(">Q", now),
                store=True,
                capabilities=p11.MechanismFlag.ENCRYPT | p11.MechanismFlag.DECRYPT,
                template={p11.Attribute.SENSITIVE: True, p11.Attribute.EXTRACTABLE: False},
            )
        except p11.PKCS11Error as e:
            raise KeyProviderError(f"PKCS#11: generating {key_id!r} v{version} failed: {e!r}") from e

    def _handle(self, key_id: str, version: int) -> Any:
        h = self._handles.get((key_id, version))
        if h is None:
            found = self._objects().get((key_id, version))
            if found is None:
                raise KeyNotFoundError(
                    f"key {key_id!r} version {version} is not on token {self.token_label!r} "
                    "(never created, or retired)"
                )
            h = self._handles[(key_id, version)] = found[0]
        return h

    # -- KeyProvider ---------------------------------------------------------------------------

    def create_key(self, key_id: str) -> KeyInfo:
        check_key_id(key_id)
        with self._lock:
            if key_id in self._infos():
                raise KeyProviderError(f"key {key_id!r} already exists on token {self.token_label!r}")
            self._generate(key_id, 1)
            return self._infos()[key_id]

    def key_info(self, key_id: str) -> KeyInfo:
        with self._lock:
            info = self._infos().get(key_id)
        if info is None:
            raise KeyNotFoundError(f"key {key_id!r} is not on token {self.token_label!r}")
        return info

    def list_keys(self) -> list[KeyInfo]:
        with self._lock:
            return [v for _, v in sorted(self._infos().items())]

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> WrappedKey:
        check_data_key(data_key)
        p11 = self._p11
        with self._lock:
            version = self._active_version(key_id)
            nonce = secrets.token_bytes(12)
            try:
                ct = self._handle(key_id, version).encrypt(
                    data_key,
                    mechanism=p11.Mechanism.AES_GCM,
                    mechanism_param=p11.GCMParams(nonce, wrap_aad(key_id, version, context), 128),
                )
            except p11.PKCS11Error as e:
                raise KeyProviderError(f"PKCS#11: wrapping under {key_id!r} v{version} failed: {e!r}") from e
        return WrappedKey(self.name, key_id, version, bytes([_BLOB_VERSION]) + nonce + bytes(ct))

    def _active_version(self, key_id: str) -> int:
        cached = [v for (k, v) in self._handles if k == key_id]
        if cached:
            return max(cached)
        return self.key_info(key_id).active.version

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        if wrapped.provider != self.name:
            raise UnwrapError(f"data key was wrapped by provider {wrapped.provider!r}, not {self.name!r}")
        blob = wrapped.blob
        if len(blob) != 1 + 12 + 32 + 16 or blob[0] != _BLOB_VERSION:
            raise UnwrapError(f"wrapped data key for {wrapped.key_id!r} is malformed")
        p11 = self._p11
        with self._lock:
            handle = self._handle(wrapped.key_id, wrapped.version)
            try:
                return bytes(
                    handle.decrypt(
                        blob[13:],
                        mechanism=p11.Mechanism.AES_GCM,
                        mechanism_param=p11.GCMParams(
                            blob[1:13], wrap_aad(wrapped.key_id, wrapped.version, context), 128
                        ),
                    )
                )
            except p11.PKCS11Error:
                raise UnwrapError(
                    f"wrapped data key did not authenticate under {wrapped.key_id!r} v{wrapped.version}"
                ) from None

    def rotate(self, key_id: str) -> KeyInfo:
        with self._lock:
            info = self.key_info(key_id)
            self._generate(key_id, info.active.version + 1)
            self._handles = {k: h for k, h in self._handles.items() if k[0] != key_id}
            return self.key_info(key_id)

    def retire(self, key_id: str, below_version: int) -> KeyInfo:
        p11 = self._p11
        with self._lock:
            info = self.key_info(key_id)
            if below_version > info.active.version:
                raise KeyProviderError(f"refusing to retire the active version of {key_id!r}")
            for (kid, ver), (obj, _c) in self._objects().items():
                if kid == key_id and ver < below_version:
                    try:
                        obj.destroy()
                    except p11.PKCS11Error as e:
                        raise KeyProviderError(f"PKCS#11: destroying {kid!r} v{ver} failed: {e!r}") from e
                    self._handles.pop((kid, ver), None)
            return self.key_info(key_id)

    def check(self) -> ProviderHealth:
        try:
            with self._lock:
                if PROBE_KEY not in self._infos():
                    self.create_key(PROBE_KEY)
            dek = secrets.token_bytes(32)
            t0 = time.perf_counter()
            ok = self.unwrap(self.wrap(PROBE_KEY, dek, b"probe"), b"probe") == dek
            us = (time.perf_counter() - t0) * 1e6
        except Exception as e:  # noqa: BLE001 - a health check reports, it never raises
            return ProviderHealth(self.name, False, f"{type(e).__name__}: {e}")
        return ProviderHealth(self.name, ok, f"PKCS#11 token {self.token_label!r}", us)

    def close(self) -> None:
        with self._lock:
            self._handles.clear()
            # Closing twice, or after the token went away, is harmless.
            with contextlib.suppress(Exception):
                self._session.close()


key_providers.add("pkcs11", Pkcs11Provider)
