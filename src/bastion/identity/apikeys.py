"""API keys: generation, parsing, hashing and constant-time verification.

Format: ``<prefix>_<key-id>_<secret>``, for example ``bst_3f9c0a1b2c3d4e5f_<43 base64url chars>``.

* ``prefix`` (2 to 8 lowercase letters, default ``bst``) makes a leaked key easy to recognise
  for secret scanners;
* ``key-id`` is 16 lowercase hex characters (64 random bits). It is public: it names the key in
  lists, logs and the audit ledger, and it is how the stored record is looked up;
* ``secret`` is 32 random bytes (256 bits) from :mod:`secrets`, base64url without padding
  (exactly 43 characters of ``[A-Za-z0-9_-]``).

Only a hash is stored. The secret has 256 bits of entropy, so a single SHA-256 is the right
function (a slow password hash adds nothing against a search space of 2^256). The hash is
domain-separated and bound to the key id, so a stored hash cannot be moved to another key row.
Comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from bastion.errors import InputError

DEFAULT_PREFIX = "bst"
KEY_ID_HEX_CHARS = 16
SECRET_BYTES = 32
SECRET_CHARS = 43  # base64url(32 bytes) without padding
MAX_RAW_KEY_CHARS = 256
HASH_SCHEME = "sha256v1"
_HASH_DOMAIN = b"bastion/apikey/v1\x00"

_PREFIX_RE = re.compile(r"[a-z]{2,8}")
_KEY_RE = re.compile(r"([a-z]{2,8})_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")


class MalformedKeyError(InputError):
    """The presented string is not an API key of the expected shape (a 401, never a 500)."""

    code = "malformed_api_key"
    hint = "API keys look like `bst_<16 hex>_<43 characters>`; copy the whole key as it was shown."


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly generated key. ``token`` is shown once to its owner and never stored."""

    key_id: str
    token: str
    secret_hash: str

    def __repr__(self) -> str:  # never leak the token through a repr or a log line
        return f"NewApiKey(key_id={self.key_id!r}, token='***')"


@dataclass(frozen=True, slots=True)
class ParsedApiKey:
    """A syntactically valid key split into its parts."""

    prefix: str
    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ParsedApiKey(prefix={self.prefix!r}, key_id={self.key_id!r}, secret='***')"


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is 2 to 8 lowercase ASCII letters; :class:`InputError` otherwise."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise InputError(f"API key prefix must be 2 to 8 lowercase letters, got {prefix!r}")
    return prefix


def is_key_id(value: str) -> bool:
    """True when ``value`` has the shape of a key id (16 lowercase hex characters)."""
    return bool(_KEY_ID_RE.fullmatch(value))


def hash_secret(key_id: str, secret: str) -> str:
    """The stored form of a key: ``sha256v1$<hex>`` over a domain tag, the key id and the secret."""
    digest = hashlib.sha256(_HASH_DOMAIN + key_id.encode("ascii") + b"\x00" + secret.encode("ascii"))
    return f"{HASH_SCHEME}${digest.hexdigest()}"


def generate_key(prefix: str = DEFAULT_PREFIX) -> NewApiKey:
    """A new random key: 64-bit public key id, 256-bit secret, and the hash to store."""
    check_prefix(prefix)
    key_id = secrets.token_hex(KEY_ID_HEX_CHARS // 2)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode("ascii")
    return NewApiKey(
        key_id=key_id, token=f"{prefix}_{key_id}_{secret}", secret_hash=hash_secret(key_id, secret)
    )


def parse_key(raw: str, prefix: str = DEFAULT_PREFIX) -> ParsedApiKey:
    """Split ``raw`` into prefix, key id and secret; :class:`MalformedKeyError` if it is not a key.

    Surrounding whitespace is not tolerated silently beyond a trailing newline a shell may add.
    The error message never repeats the input (it may be a secret of some other system).
    """
    if not isinstance(raw, str):
        raise MalformedKeyError("API key must be a string")
    if len(raw) > MAX_RAW_KEY_CHARS:
        raise MalformedKeyError(f"API key is too long ({len(raw)} characters, at most {MAX_RAW_KEY_CHARS})")
    candidate = raw.removesuffix("\n").removesuffix("\r")
    m = _KEY_RE.fullmatch(candidate)
    if m is None:
        raise MalformedKeyError(
            "API key is malformed: expected <prefix>_<16 hex key id>_<43-character secret>"
        )
    if m.group(1) != prefix:
        raise MalformedKeyError(f"API key has the wrong prefix; this server issues `{prefix}_…` keys")
    return ParsedApiKey(prefix=m.group(1), key_id=m.group(2), secret=m.group(3))


def verify_secret(parsed: ParsedApiKey, stored_hash: str) -> bool:
    """Constant-time check of ``parsed``'s secret against the stored hash (False for an unknown scheme)."""
    if not stored_hash.startswith(HASH_SCHEME + "$"):
        return False
    expected = hash_secret(parsed.key_id, parsed.secret)
    return hmac.compare_digest(expected.encode("ascii"), stored_hash.encode("ascii", "replace"))
