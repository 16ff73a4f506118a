"""Streaming authenticated encryption of large files in constant memory (format ``BSTENC`` v1).

The construction is Tink's AES256_GCM_HKDF_1MB streaming AEAD, itself the STREAM construction of
Hoang, Reyhanitabar, Rogaway and Vizár (2015), built on ``cryptography``'s AES-GCM:

* a random 256-bit *data key* per file, wrapped by a KEK in a key provider; the wrap is bound to
  the file's object id and purpose;
* a segment key ``HKDF-SHA256(data_key, salt, "bastion-stream/v1/segment" || ctx)`` where ``salt`` is
  32 random bytes and ``ctx`` encodes object id and purpose (so a file cannot pose as another);
* plaintext cut into segments (1 MiB by default); segment ``i`` is AES-256-GCM encrypted with the
  96-bit nonce ``nonce_prefix(7) || i (uint32 BE) || last (1 byte: 1 on the final segment, else 0)``,
  so truncation, reordering, duplication and appending are all detected;
* a fixed 4096-byte header region, authenticated by HMAC-SHA256 under a key derived the same way
  (info ``"bastion-stream/v1/header"``), so the KEK slot can be rewritten in place on rotation
  without touching the bulk data.

File layout (integers big-endian)::

    0     6  magic  b"BSTENC"
    6     1  format version (1)
    7     1  suite (1 = AES-256-GCM, HKDF-SHA256, nonce prefix 7 bytes)
    8     4  header body length N (<= 4052)
    12    N  header body: canonical JSON {object_id, purpose, segment_size, salt, nonce_prefix,
             kek: {provider, key_id, version, blob}} (bytes as base64)
    12+N     zero padding up to 4064
    4064 32  HMAC-SHA256(header_key, bytes 0..4064)
    4096     segments: ciphertext || 16-byte tag; every segment but the last holds exactly
             segment_size plaintext bytes; the last holds 0..segment_size bytes
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bastion.crypto.envelope import IntegrityError, new_data_key, object_context
from bastion.crypto.keys.interface import KeyProvider, KeyProviderError, WrappedKey
from bastion.errors import CryptoError, InputError

MAGIC = b"BSTENC"
FORMAT_VERSION = 1
SUITE_AES256_GCM_HKDF = 1
HEADER_SIZE = 4096
_TAG_AT = HEADER_SIZE - 32
_MAX_BODY = _TAG_AT - 12
TAG = 16
NONCE_PREFIX = 7
SALT = 32
DEFAULT_SEGMENT_SIZE = 1 << 20
MIN_SEGMENT_SIZE = 1 << 10
MAX_SEGMENT_SIZE = 1 << 26
MAX_SEGMENTS = 2**32

Progress = Callable[[int], None]


class FormatError(CryptoError):
    """The input is not a Bastion encrypted file, or uses an unknown version."""

    code = "bad_format"
    hint = "Check that the input is a file written by `bastion encrypt` with a compatible version."


@dataclass(frozen=True, slots=True)
class StreamHeader:
    """The parsed header of an encrypted file (authenticated once :func:`decrypt_stream` accepted it)."""

    object_id: str
    purpose: str
    segment_size: int
    salt: bytes
    nonce_prefix: bytes
    wrapped: WrappedKey

    def body(self) -> bytes:
        """The canonical JSON body."""
        doc = {
            "object_id": self.object_id,
            "purpose": self.purpose,
            "segment_size": self.segment_size,
            "salt": _b64(self.salt),
            "nonce_prefix": _b64(self.nonce_prefix),
            "kek": {
                "provider": self.wrapped.provider,
                "key_id": self.wrapped.key_id,
                "version": self.wrapped.version,
                "blob": _b64(self.wrapped.blob),
            },
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def file_context(object_id: str, purpose: str) -> bytes:
    """The context a file's data key is wrapped under and its keys are derived with."""
    return object_context("file", object_id, purpose)


def _derive(data_key: bytes, salt: bytes, label: bytes, ctx: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=b"bastion-stream/v1/" + label + ctx
    ).derive(data_key)


def _header_region(header: StreamHeader, data_key: bytes) -> bytes:
    body = header.body()
    if len(body) > _MAX_BODY:
        raise CryptoError(
            f"encrypted-file header too large ({len(body)} > {_MAX_BODY} bytes); shorten the object id"
        )
    region = bytearray(HEADER_SIZE)
    region[0:12] = MAGIC + bytes([FORMAT_VERSION, SUITE_AES256_GCM_HKDF]) + struct.pack(">I", len(body))
    region[12 : 12 + len(body)] = body
    hkey = _derive(data_key, header.salt, b"header", file_context(header.object_id, header.purpose))
    region[_TAG_AT:] = hmac.new(hkey, bytes(region[:_TAG_AT]), hashlib.sha256).digest()
    return bytes(region)


def parse_header(region: bytes) -> StreamHeader:
    """Parse (NOT authenticate) a header region; :class:`FormatError` when it is not one."""
    if len(region) < HEADER_SIZE:
        raise FormatError(f"input is too short to be an encrypted file ({len(region)} bytes)")
    if region[0:6] != MAGIC:
        raise FormatError("input is not a Bastion encrypted file (bad magic)")
    if region[6] != FORMAT_VERSION or region[7] != SUITE_AES256_GCM_HKDF:
        raise FormatError(f"unsupported encrypted-file version {region[6]} / suite {region[7]}")
    (n,) = struct.unpack(">I", region[8:12])
    if n > _MAX_BODY:
        raise IntegrityError("encrypted-file header failed authentication (bad length)")
    try:
        doc = json.loads(region[12 : 12 + n])
        kek = doc["kek"]
        header = StreamHeader(
            object_id=str(doc["object_id"]),
            purpose=str(doc["purpose"]),
            segment_size=int(doc["segment_size"]),
            salt=base64.b64decode(doc["salt"], validate=True),
            nonce_prefix=base64.b64decode(doc["nonce_prefix"], validate=True),
            wrapped=WrappedKey(
                str(kek["provider"]), str(kek["key_id"]), int(kek["version"]), base64.b64decode(kek["blob"])
            ),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise IntegrityError("encrypted-file header failed authentication (unparseable body)") from e
    if (
        len(header.salt) != SALT
        or len(header.nonce_prefix) != NONCE_PREFIX
        or not MIN_SEGMENT_SIZE <= header.segment_size <= MAX_SEGMENT_SIZE
    ):
        raise IntegrityError("encrypted-file header failed authentication (bad field sizes)")
    return header


def _read_full(src: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``src`` unless EOF comes first; the number of bytes read."""
    got = 0
    while got < len(buf):
        n = src.readinto(buf[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_SEGMENTS:
        raise CryptoError("file too large for the streaming format (2^32 segments)")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    provider: KeyProvider,
    key_id: str,
    object_id: str,
    purpose: str,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    progress: Progress | None = None,
) -> StreamHeader:
    """Encrypt everything ``src`` yields into ``dst``; memory use is about three segments."""
    if not MIN_SEGMENT_SIZE <= segment_size <= MAX_SEGMENT_SIZE:
        raise InputError(f"segment size must be between {MIN_SEGMENT_SIZE} and {MAX_SEGMENT_SIZE} bytes")
    data_key = new_data_key()
    ctx = file_context(object_id, purpose)
    header = StreamHeader(
        object_id=object_id,
        purpose=purpose,
        segment_size=segment_size,
        salt=secrets.token_bytes(SALT),
        nonce_prefix=secrets.token_bytes(NONCE_PREFIX),
        wrapped=provider.wrap(key_id, data_key, ctx),
    )
    dst.write(_header_region(header, data_key))
    aead = AESGCM(_derive(data_key, header.salt, b"segment", ctx))
    bufs = [bytearray(segment_size), bytearray(segment_size)]
    out = bytearray(segment_size + TAG)
    cur = _read_full(src, memoryview(bufs[0]))
    index = 0
    while True:
        nxt = _read_full(src, memoryview(bufs[1])) if cur == segment_size else 0
        last = nxt == 0
        n = aead.encrypt_into(
            _nonce(header.nonce_prefix, index, last),
            memoryview(bufs[0])[:cur],
            None,
            memoryview(out)[: cur + TAG],
        )
        dst.write(memoryview(out)[:n])
        if progress is not None:
            progress(cur)
        if last:
            return header
        bufs.reverse()
        cur, index = nxt, index + 1


def open_header(
    region: bytes, provider: KeyProvider, *, expected_object_id: str | None = None
) -> tuple[StreamHeader, bytes]:
    """Parse and authenticate a header region; the header and the unwrapped data key."""
    header = parse_header(region)
    if expected_object_id is not None and header.object_id != expected_object_id:
        raise IntegrityError(
            f"the file belongs to object {header.object_id!r}, not {expected_object_id!r}",
            hint="Decrypt it as its own object, or check that the right file was given.",
        )
    if header.wrapped.provider != provider.name:
        raise KeyProviderError(
            f"the file's data key is held by key provider {header.wrapped.provider!r}, "
            f"but the configured provider is {provider.name!r}"
        )
    data_key = provider.unwrap(header.wrapped, file_context(header.object_id, header.purpose))
    hkey = _derive(data_key, header.salt, b"header", file_context(header.object_id, header.purpose))
    expected = hmac.new(hkey, region[:_TAG_AT], hashlib.sha256).digest()
    if not hmac.compare_digest(expected, region[_TAG_AT:HEADER_SIZE]):
        raise IntegrityError("encrypted-file header failed authentication (modified header)")
    return header, data_key


def decrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    *,
    provider: KeyProvider,
    expected_object_id: str | None = None,
    progress: Progress | None = None,
) -> StreamHeader:
    """Decrypt ``src`` into ``dst``; :class:`IntegrityError` names the first bad segment.

    Only authenticated segments are written to ``dst``: on failure, ``dst`` holds a prefix of
    authenticated plaintext, so callers writing files must discard it (see
    :func:`bastion.crypto.files.decrypt_file`, which does).
    """
    region = bytearray(HEADER_SIZE)
    got = _read_full(src, memoryview(region))
    header, data_key = open_header(bytes(region[:got]), provider, expected_object_id=expected_object_id)
    seg_ct = header.segment_size + TAG
    aead = AESGCM(_derive(data_key, header.salt, b"segment", file_context(header.object_id, header.purpose)))
    bufs = [bytearray(seg_ct), bytearray(seg_ct)]
    out = bytearray(header.segment_size)
    cur = _read_full(src, memoryview(bufs[0]))
    index = 0
    while True:
        nxt = _read_full(src, memoryview(bufs[1])) if cur == seg_ct else 0
        last = nxt == 0
        offset = HEADER_SIZE + index * seg_ct
        if cur < TAG:
            raise IntegrityError(f"encrypted file truncated in segment {index} (at byte {offset})")
        try:
            n = aead.decrypt_into(
                _nonce(header.nonce_prefix, index, last),
                memoryview(bufs[0])[:cur],
                None,
                memoryview(out)[: cur - TAG],
            )
        except InvalidTag:
            raise IntegrityError(
                f"segment {index} (bytes {offset}..{offset + cur}) failed authentication: "
                "the file was modified, truncated, reordered, or extended"
            ) from None
        dst.write(memoryview(out)[:n])
        if progress is not None:
            progress(cur)
        if last:
            return header
        bufs.reverse()
        cur, index = nxt, index + 1


def rewrap_region(region: bytes, provider: KeyProvider, key_id: str) -> tuple[StreamHeader, bytes]:
    """A new header region whose data key is wrapped by the active version of ``key_id``.

    The data key and every other header field stay the same, so the segments are untouched.
    """
    header, data_key = open_header(region, provider)
    rewrapped = provider.wrap(key_id, data_key, file_context(header.object_id, header.purpose))
    new = StreamHeader(
        header.object_id, header.purpose, header.segment_size, header.salt, header.nonce_prefix, rewrapped
    )
    return new, _header_region(new, data_key)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()
