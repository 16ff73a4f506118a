"""HashiCorp Vault Transit key provider (``hvac``).

KEKs are Transit keys (``aes256-gcm96``, created with ``derived: true`` so that the caller's
context takes part in key derivation: a blob only decrypts with the same context). The key
material never leaves Vault. Rotation is Transit's ``rotate``; retiring raises
``min_decryption_version``. The stored blob is Vault's ciphertext string (``vault:v<N>:…``).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from datetime import UTC, datetime
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

_CIPHERTEXT = re.compile(r"vault:v(\d{1,9}):[A-Za-z0-9+/=]+")


class VaultTransitProvider:
    """KEKs held by a Vault Transit secrets engine."""

    name = "vault"

    def __init__(
        self,
        addr: str,
        token: str,
        *,
        mount_point: str = "transit",
        namespace: str | None = None,
        verify: bool | str = True,
        environment: str = "development",
        client: Any = None,
    ) -> None:
        if client is None:
            if not token:
                raise ConfigError(
                    "crypto.vault: no token", hint="Set the variable named by crypto.vault.token_env."
                )
            import hvac

            client = hvac.Client(url=addr, token=token, namespace=namespace, verify=verify, timeout=10)
        self._client = client
        self._transit: Any = client.secrets.transit
        self.mount_point = mount_point
        self.addr = addr
        self._lock = threading.Lock()

    def _call(self, what: str, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return fn(mount_point=self.mount_point, **kwargs)
        except Exception as e:  # hvac raises its own tree plus requests' errors
            name = type(e).__name__
            if name in ("InvalidPath",):
                raise KeyNotFoundError(f"Vault Transit: {what}: not found") from e
            if name in ("InvalidRequest",) and what.startswith("decrypt"):
                raise UnwrapError(f"Vault Transit: {what}: the wrapped data key did not authenticate") from e
            raise KeyProviderError(f"Vault Transit at {self.addr}: {what} failed ({name})") from e

    @staticmethod
    def _context(key_id: str, context: bytes) -> str:
        # Transit derives a per-context key; the version is carried by the ciphertext itself.
        return base64.b64encode(hashlib.sha256(wrap_aad(key_id, 0, context)).digest()).decode()

    def create_key(self, key_id: str) -> KeyInfo:
        check_key_id(key_id)
        self._call("create key", self._transit.create_key, name=key_id, key_type="aes256-gcm96", derived=True)
        return self.key_info(key_id)

    def key_info(self, key_id: str) -> KeyInfo:
        data = self._call(f"read key {key_id!r}", self._transit.read_key, name=key_id)["data"]
        latest = int(data["latest_version"])
        min_dec = int(data.get("min_decryption_version", 1))
        versions = []
        for ver_s, created in sorted(data["keys"].items(), key=lambda kv: int(kv[0])):
            ver = int(ver_s)
            if ver < min_dec:
                continue
            if isinstance(created, int | float):
                when = datetime.fromtimestamp(created, UTC)
            else:
                when = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            versions.append(
                KeyVersion(ver, KeyState.ACTIVE if ver == latest else KeyState.DECRYPT_ONLY, when)
            )
        return KeyInfo(key_id, tuple(versions))

    def list_keys(self) -> list[KeyInfo]:
        keys = self._call("list keys", self._transit.list_keys)["data"]["keys"]
        return [self.key_info(k) for k in sorted(keys)]

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> WrappedKey:
        check_data_key(data_key)
        resp = self._call(
            f"encrypt under {key_id!r}",
            self._transit.encrypt_data,
            name=key_id,
            plaintext=base64.b64encode(data_key).decode(),
            context=self._context(key_id, context),
        )
        ct = str(resp["data"]["ciphertext"])
        m = _CIPHERTEXT.fullmatch(ct)
        if not m:
            raise KeyProviderError("Vault Transit returned an unexpected ciphertext format")
        return WrappedKey(self.name, key_id, int(m.group(1)), ct.encode())

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        if wrapped.provider != self.name:
            raise UnwrapError(f"data key was wrapped by provider {wrapped.provider!r}, not {self.name!r}")
        ct = wrapped.blob.decode("ascii", errors="replace")
        m = _CIPHERTEXT.fullmatch(ct)
        if not m or int(m.group(1)) != wrapped.version:
            raise UnwrapError(f"wrapped data key for {wrapped.key_id!r} is malformed")
        resp = self._call(
            f"decrypt under {wrapped.key_id!r} v{wrapped.version}",
            self._transit.decrypt_data,
            name=wrapped.key_id,
            ciphertext=ct,
            context=self._context(wrapped.key_id, context),
        )
        try:
            return base64.b64decode(resp["data"]["plaintext"], validate=True)
        except (KeyError, ValueError, TypeError) as e:
            raise UnwrapError("Vault Transit returned no usable plaintext") from e

    def rotate(self, key_id: str) -> KeyInfo:
        self._call(f"rotate {key_id!r}", self._transit.rotate_key, name=key_id)
        return self.key_info(key_id)

    def retire(self, key_id: str, below_version: int) -> KeyInfo:
        info = self.key_info(key_id)
        if below_version > info.active.version:
            raise KeyProviderError(f"refusing to retire the active version of {key_id!r}")
        self._call(
            f"retire {key_id!r} below v{below_version}",
            self._transit.update_key_configuration,
            name=key_id,
            min_decryption_version=below_version,
        )
        return self.key_info(key_id)

    def check(self) -> ProviderHealth:
        try:
            try:
                self.key_info(PROBE_KEY)
            except KeyNotFoundError:
                self.create_key(PROBE_KEY)
            dek = secrets.token_bytes(32)
            t0 = time.perf_counter()
            ok = self.unwrap(self.wrap(PROBE_KEY, dek, b"probe"), b"probe") == dek
            us = (time.perf_counter() - t0) * 1e6
        except Exception as e:  # noqa: BLE001 - a health check reports, it never raises
            return ProviderHealth(self.name, False, f"{type(e).__name__}: {e}")
        return ProviderHealth(self.name, ok, f"Vault Transit at {self.addr} (mount {self.mount_point})", us)

    def close(self) -> None:
        adapter = getattr(self._client, "adapter", None)
        if adapter is not None and hasattr(adapter, "close"):
            adapter.close()


key_providers.add("vault", VaultTransitProvider)
