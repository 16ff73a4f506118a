"""The key-provider interface: key-encryption keys (KEKs) that wrap and unwrap data keys.

A provider holds KEKs by ``key_id``; each KEK has numbered versions. New wraps use the *active*
(highest) version; older versions stay *decrypt-only* until retired, after which data keys wrapped
under them can no longer be unwrapped. Data keys never leave a provider in the clear except as the
return value of :meth:`KeyProvider.unwrap`; KEK material never leaves the provider at all (the
local development keyring being the documented exception: it lives in a passphrase-protected file).

Providers are chosen by registry name in configuration (:data:`key_providers`), never by import
path. Built-in names: ``local`` (development only), ``pkcs11``, ``vault``, ``aws-kms``,
``gcp-kms``, ``azure-keyvault`` (the cloud ones are stubs in this build).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bastion.errors import CryptoError
from bastion.registry import Registry

#: Length of every data key (AES-256).
DATA_KEY_BYTES = 32
#: The key a provider health check creates and uses (never protects data).
PROBE_KEY = "bastion-probe"
#: Key ids that exist only for health checks (hidden from listings).
HEALTH_PROBE_KEYS = frozenset({PROBE_KEY})


class KeyProviderError(CryptoError):
    """A key provider failed: unreachable, misconfigured, or it refused the operation."""

    code = "key_provider_error"


class KeyNotFoundError(KeyProviderError):
    """The named key (or key version) does not exist in the provider, or was retired."""

    code = "key_not_found"
    hint = "Check crypto.key_id and that the key exists: `bastion keys provider-check`."


class UnwrapError(KeyProviderError):
    """A wrapped data key did not authenticate: wrong KEK, wrong context, or a modified blob."""

    code = "unwrap_failed"
    hint = (
        "The data key was wrapped by another key, for another object, or was modified. "
        "Check that the right key provider and key id are configured."
    )


class KeyState(StrEnum):
    """The life-cycle state of one KEK version."""

    ACTIVE = "active"  # wraps and unwraps
    DECRYPT_ONLY = "decrypt-only"  # unwraps only (an older version after rotation)


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One version of a KEK."""

    version: int
    state: KeyState
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What a provider knows about one KEK (never the key material)."""

    key_id: str
    versions: tuple[KeyVersion, ...]

    @property
    def active(self) -> KeyVersion:
        """The version new wraps use (the highest)."""
        return max(self.versions, key=lambda v: v.version)


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key encrypted under one KEK version; safe to store beside the data it protects.

    ``blob`` is provider-specific and opaque; ``provider``, ``key_id`` and ``version`` say which
    KEK can unwrap it.
    """

    provider: str
    key_id: str
    version: int
    blob: bytes


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """The outcome of :meth:`KeyProvider.check`: a round trip through the provider."""

    provider: str
    ok: bool
    detail: str
    wrap_unwrap_us: float | None = None


@runtime_checkable
class KeyProvider(Protocol):
    """Holds KEKs; wraps and unwraps data keys under them.

    ``context`` is authenticated associated data: a blob wrapped with one context only unwraps
    with the same context (callers bind it to the object id and purpose).
    """

    name: str

    def create_key(self, key_id: str) -> KeyInfo:
        """Create KEK ``key_id`` (version 1); :class:`KeyProviderError` if it exists."""
        ...

    def key_info(self, key_id: str) -> KeyInfo:
        """Versions and states of ``key_id``; :class:`KeyNotFoundError` if absent."""
        ...

    def list_keys(self) -> list[KeyInfo]:
        """Every KEK this provider holds for Bastion."""
        ...

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> WrappedKey:
        """Encrypt ``data_key`` under the active version of ``key_id``, bound to ``context``."""
        ...

    def unwrap(self, wrapped: WrappedKey, context: bytes) -> bytes:
        """The data key inside ``wrapped``; :class:`UnwrapError` if it does not authenticate."""
        ...

    def rotate(self, key_id: str) -> KeyInfo:
        """Add a new active version of ``key_id``; older versions become decrypt-only."""
        ...

    def retire(self, key_id: str, below_version: int) -> KeyInfo:
        """Destroy every version of ``key_id`` lower than ``below_version`` (never the active one)."""
        ...

    def check(self) -> ProviderHealth:
        """A live round trip (create a probe key if needed, wrap, unwrap); never raises."""
        ...

    def close(self) -> None:
        """Release sessions and handles."""
        ...


#: Registry of key-provider factories. Each factory takes keyword arguments from its config
#: section plus ``environment`` (the deployment environment name).
key_providers: Registry[KeyProvider] = Registry("key_providers")


def check_data_key(data_key: bytes) -> None:
    """Refuse anything but a 32-byte data key (a programming error otherwise)."""
    if len(data_key) != DATA_KEY_BYTES:
        raise CryptoError(f"a data key must be {DATA_KEY_BYTES} bytes, got {len(data_key)}")


def check_key_id(key_id: str) -> None:
    """Key ids are short, printable names (they end up in labels, paths and URLs)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", key_id):
        raise KeyProviderError(
            f"invalid key id {key_id!r}",
            hint="Use 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )


def load_builtin_providers() -> None:
    """Import the built-in provider modules so that they register themselves."""
    import importlib

    for mod in ("local", "pkcs11", "vault", "cloud"):
        importlib.import_module(f"bastion.crypto.keys.{mod}")


def wrap_aad(key_id: str, version: int, context: bytes) -> bytes:
    """Associated data for one wrap: key id, key version and the caller's context, unambiguous."""
    kid = key_id.encode()
    return b"bastion-kek-wrap/v1" + struct.pack(">HI", len(kid), version) + kid + context
