"""Find and decode payloads hidden in a text (base64, hex, Unicode tag characters).

Used by the prompt-injection detector to rescan what an attacker encoded. Bounded: at most
``MAX_PAYLOADS`` candidates per call, each at most ``MAX_PAYLOAD_CHARS`` long; every pattern is RE2.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import cache

import re2

from bastion.detectors.normalize import decode_tag_characters
from bastion.domain.findings import Span

MAX_PAYLOADS = 8
MAX_PAYLOAD_CHARS = 8192
MIN_DECODED_CHARS = 8

BASE64_PATTERN = r"[A-Za-z0-9+/_-]{16,}={0,2}"
HEX_PATTERN = r"(?:[0-9a-fA-F]{2}[ :]?){10,}|(?:\\x[0-9a-fA-F]{2}){8,}"
TAG_PATTERN = "[\U000e0000-\U000e007f]{4,}"


@dataclass(frozen=True, slots=True)
class Payload:
    """A decoded payload: how it was encoded, where it sits in the text, what it says."""

    encoding: str  # "base64", "hex", "unicode_tags"
    span: Span
    text: str


@cache
def _patterns() -> tuple[tuple[str, re2._Regexp], ...]:
    return (
        ("base64", re2.compile(BASE64_PATTERN)),
        ("hex", re2.compile(HEX_PATTERN)),
        ("unicode_tags", re2.compile(TAG_PATTERN)),
    )


def _printable_text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < MIN_DECODED_CHARS:
        return None
    printable = sum(1 for c in text if c.isprintable() or c in "\n\t\r")
    letters = sum(1 for c in text if c.isalpha())
    if printable < 0.95 * len(text) or letters < 0.5 * len(text) or " " not in text:
        return None
    return text


def _decode(encoding: str, chunk: str) -> str | None:
    if encoding == "unicode_tags":
        text = decode_tag_characters(chunk)
        return text if len(text) >= 4 else None
    if encoding == "hex":
        digits = chunk.replace("\\x", "").replace(" ", "").replace(":", "")
        try:
            return _printable_text(bytes.fromhex(digits))
        except ValueError:
            return None
    if not any(c.isdigit() or c.isupper() for c in chunk) or (chunk.isalpha() and chunk.islower()):
        return None  # an ordinary word run, not base64
    padded = chunk + "=" * (-len(chunk) % 4)
    try:
        if "-" in chunk or "_" in chunk:
            raw = base64.urlsafe_b64decode(padded)
        else:
            raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable_text(raw)


def find_payloads(text: str) -> list[Payload]:
    """Decoded payloads in ``text`` that read as text (at most ``MAX_PAYLOADS``)."""
    found: list[Payload] = []
    for encoding, rx in _patterns():
        if encoding == "unicode_tags" and text.isascii():
            continue
        for m in rx.finditer(text):
            chunk = m.group(0)[:MAX_PAYLOAD_CHARS]
            decoded = _decode(encoding, chunk)
            if decoded is not None:
                found.append(Payload(encoding, Span(m.start(), m.end()), decoded))
            if len(found) >= MAX_PAYLOADS:
                return found
    return found
