"""Envelope encryption of small objects: a random data key per object, wrapped by a KEK.

A *sealed* value is ``0x01 || nonce(12) || AES-256-GCM(data_key, plaintext, aad)``; the
associated data binds it to the object id and purpose (:func:`object_context`), so a ciphertext
moved to another object or used for another purpose does not decrypt. Large files use the
streaming format in :mod:`bastion.crypto.stream` instead.
"""

from __future__ import annotations

import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bastion.crypto.keys.interface import DATA_KEY_BYTES, check_data_key
from bastion.errors import CryptoError

SEALED_VERSION = 1
_NONCE = 12
_TAG = 16


class IntegrityError(CryptoError):
    """A ciphertext did not authenticate: wrong key, wrong object, modified, truncated or reordered.

    No plaintext is ever returned for data that raised this error.
    """

    code = "integrity_error"
    hint = (
        "The data was modified, truncated, or belongs to another object or key. "
        "Restore it from a trusted copy; it cannot be decrypted as it is."
    )


def new_data_key() -> bytes:
    """A fresh random AES-256 data key."""
    return secrets.token_bytes(DATA_KEY_BYTES)


def object_context(kind: str, object_id: str, purpose: str) -> bytes:
    """Unambiguous associated data naming what a ciphertext (or a wrapped key) belongs to."""
    parts = [p.encode() for p in (kind, object_id, purpose)]
    return b"bastion-ctx/v1" + b"".join(struct.pack(">I", len(p)) + p for p in parts)


def seal(data_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` under ``data_key``, bound to ``aad``."""
    check_data_key(data_key)
    nonce = secrets.token_bytes(_NONCE)
    return bytes([SEALED_VERSION]) + nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)


def unseal(data_key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext of ``sealed``; :class:`IntegrityError` if anything does not authenticate."""
    check_data_key(data_key)
    if len(sealed) < 1 + _NONCE + _TAG or sealed[0] != SEALED_VERSION:
        raise IntegrityError("sealed value is malformed (too short or unknown version)")
    try:
        return AESGCM(data_key).decrypt(sealed[1 : 1 + _NONCE], sealed[1 + _NONCE :], aad)
    except InvalidTag:
        raise IntegrityError(
            "sealed value did not authenticate (wrong key, wrong object, or modified)"
        ) from None
