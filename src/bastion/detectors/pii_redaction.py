"""Act on personal data: mask it, or replace it with consistent pseudonyms.

- :func:`mask` replaces each entity with ``[EMAIL]``, ``[PHONE]`` … (irreversible).
- :class:`Pseudonymizer` replaces each entity with a placeholder that is the same for the same value:
  without a key, ``<EMAIL_1>``, ``<EMAIL_2>`` … numbered per call (irreversible, nothing kept);
  with a key, ``<EMAIL_3f9a2c1b7d>`` derived by HMAC-SHA256, stable across requests, and reversible only
  through the :class:`Vault` it returns, whose values are sealed with AES-SIV under the same key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

from bastion.detectors.pii import Entity
from bastion.errors import CryptoError, InputError

KEY_BYTES = 64  # AES-256-SIV takes a 512-bit key; the HMAC key is derived from it


def _label(entity: str) -> str:
    return entity.upper()


def _apply(text: str, entities: Iterable[Entity], replace: dict[int, str]) -> str:
    parts: list[str] = []
    pos = 0
    for i, e in enumerate(sorted(entities, key=lambda e: e.span.start)):
        if e.span.start < pos:
            continue
        parts.append(text[pos : e.span.start])
        parts.append(replace[i])
        pos = e.span.end
    parts.append(text[pos:])
    return "".join(parts)


def mask(text: str, entities: Iterable[Entity]) -> str:
    """``text`` with every entity replaced by ``[TYPE]``."""
    ordered = sorted(entities, key=lambda e: e.span.start)
    return _apply(text, ordered, {i: f"[{_label(e.entity)}]" for i, e in enumerate(ordered)})


@dataclass(frozen=True, slots=True)
class Vault:
    """Placeholder → sealed original value (AES-SIV ciphertext); useless without the key."""

    sealed: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pseudonymized:
    """The pseudonymised text and the vault to reverse it (empty when no key was configured)."""

    text: str
    vault: Vault


class Pseudonymizer:
    """Consistent placeholders for personal data; reversible only with ``key`` (64 random bytes)."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) != KEY_BYTES:
            raise InputError(f"pseudonymisation key must be {KEY_BYTES} bytes, got {len(key)}")
        self._key = key
        self._mac_key = hashlib.sha256(b"bastion-pii-pseudonym\x00" + key).digest() if key else None
        self._siv = AESSIV(key) if key else None

    def _token(self, entity: str, value: str) -> str:
        assert self._mac_key is not None
        digest = hmac.new(self._mac_key, f"{entity}\x00{value}".encode(), hashlib.sha256).hexdigest()
        return f"<{_label(entity)}_{digest[:10]}>"

    def pseudonymize(self, text: str, entities: Iterable[Entity]) -> Pseudonymized:
        """Replace every entity; equal values of one type get equal placeholders."""
        ordered = sorted(entities, key=lambda e: e.span.start)
        names: dict[tuple[str, str], str] = {}
        counters: dict[str, int] = {}
        sealed: dict[str, bytes] = {}
        replace: dict[int, str] = {}
        for i, e in enumerate(ordered):
            value = text[e.span.start : e.span.end]
            key = (e.entity, value)
            if key not in names:
                if self._siv is not None:
                    names[key] = self._token(e.entity, value)
                    sealed[names[key]] = self._siv.encrypt(value.encode(), [names[key].encode()])
                else:
                    counters[e.entity] = counters.get(e.entity, 0) + 1
                    names[key] = f"<{_label(e.entity)}_{counters[e.entity]}>"
            replace[i] = names[key]
        return Pseudonymized(_apply(text, ordered, replace), Vault(sealed))

    def restore(self, text: str, vault: Vault) -> str:
        """Put the original values back (needs the key the vault was sealed with)."""
        if self._siv is None:
            raise CryptoError("restoring pseudonymised text needs the configured key")
        for placeholder, blob in vault.sealed.items():
            try:
                value = self._siv.decrypt(blob, [placeholder.encode()]).decode()
            except InvalidTag as e:
                raise CryptoError("the vault was not sealed with this key, or was modified") from e
            text = text.replace(placeholder, value)
        return text
