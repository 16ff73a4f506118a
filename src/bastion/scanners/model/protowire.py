"""A minimal protobuf wire-format reader: enough to walk ONNX and TensorFlow graphs without either library.

Only the wire format is parsed (varints and length-delimited fields); field meanings live with the
callers. Malformed input raises :class:`MalformedArtifact`.
"""

from __future__ import annotations

from collections.abc import Iterator

from bastion.scanners.model.interface import MalformedArtifact

VARINT, I64, LEN, SGROUP, EGROUP, I32 = range(6)


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` and the offset after it."""
    result = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            raise MalformedArtifact("truncated or oversized protobuf varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(field_number, wire_type, a, b)``: for LEN fields the payload is ``buf[a:b]``;
    for VARINT fields ``a`` is the value; fixed-width fields give their span."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise MalformedArtifact(f"protobuf field number 0 at offset {pos}")
        if wt == VARINT:
            val, pos = read_varint(buf, pos, end)
            yield num, wt, val, pos
        elif wt == LEN:
            ln, pos = read_varint(buf, pos, end)
            if pos + ln > end:
                raise MalformedArtifact(f"protobuf field {num} runs past its message at offset {pos}")
            yield num, wt, pos, pos + ln
            pos += ln
        elif wt == I64:
            if pos + 8 > end:
                raise MalformedArtifact("truncated protobuf fixed64")
            yield num, wt, pos, pos + 8
            pos += 8
        elif wt == I32:
            if pos + 4 > end:
                raise MalformedArtifact("truncated protobuf fixed32")
            yield num, wt, pos, pos + 4
            pos += 4
        else:
            raise MalformedArtifact(f"unsupported protobuf wire type {wt} at offset {pos}")


def text(buf: bytes, a: int, b: int) -> str:
    """A LEN field as UTF-8 text (replacement characters for bad bytes)."""
    return bytes(buf[a:b]).decode("utf-8", "replace")
