"""Pickle opcode bytes and the readers of their text arguments (protocols 0-5).

Binary arguments are read in place by :mod:`pickle_machine`; the text-line arguments of the
protocol 0/1 opcodes (``GLOBAL``, ``INST``, ``PUT``, ``GET``, ``STRING``, ...) and string
decoding live here. Every reader raises :class:`MalformedArtifact` on input the unpickler would
reject, so a stream that does not parse is never reported clean.
"""

from __future__ import annotations

import codecs

from bastion.scanners.model.interface import MalformedArtifact

(MARK, STOP, POP, POP_MARK, DUP, FLOAT, INT, BININT, BININT1, LONG, BININT2, NONE, PERSID, BINPERSID,
 REDUCE, STRING, BINSTRING, SHORT_BINSTRING, UNICODE, BINUNICODE, APPEND, BUILD, GLOBAL, DICT,
 EMPTY_DICT, APPENDS, GET, BINGET, INST, LONG_BINGET, LIST, EMPTY_LIST, OBJ, PUT, BINPUT, LONG_BINPUT,
 SETITEM, TUPLE, EMPTY_TUPLE, SETITEMS, BINFLOAT) = b"(.012FIJKLMNPQRSTUVXabcd}eghijl]opqrst)uG"  # fmt: skip
(PROTO, NEWOBJ, EXT1, EXT2, EXT4, TUPLE1, TUPLE2, TUPLE3, NEWTRUE, NEWFALSE, LONG1, LONG4) = range(0x80, 0x8C)
BINBYTES, SHORT_BINBYTES = b"BC"
(SHORT_BINUNICODE, BINUNICODE8, BINBYTES8, EMPTY_SET, ADDITEMS, FROZENSET, NEWOBJ_EX, STACK_GLOBAL,
 MEMOIZE, FRAME, BYTEARRAY8, NEXT_BUFFER, READONLY_BUFFER) = range(0x8C, 0x99)  # fmt: skip

# Text-line opcodes of protocols 0 and 1 (their argument ends at a newline).
LINE_OPS = frozenset((PUT, GET, STRING, UNICODE, INT, FLOAT, LONG, PERSID))
MAX_DECODED_STR = 1024  # longer strings cannot name a global: skipped, never decoded


def as_text(value: object, offset: int) -> object:
    """A string value as ``str``: UTF-8 strings are kept as undecoded bytes until needed."""
    if type(value) is bytes:
        try:
            return value.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise MalformedArtifact(f"invalid UTF-8 string before offset {offset}") from None
    return value


def decode_string(data: bytes, a: int, b: int, op: int) -> str:
    """The string argument ``data[a:b]`` of ``op``: latin-1 for the Python 2 ``str`` opcodes."""
    raw = bytes(data[a:b])
    if op in (SHORT_BINSTRING, BINSTRING):
        return raw.decode("latin-1")
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise MalformedArtifact(f"invalid UTF-8 string at offset {a}") from None


def read_line(data: bytes, pos: int, start: int) -> tuple[bytes, int]:
    """The newline-terminated argument at ``pos`` (at most 64 KiB) and the offset after it."""
    end = data.find(b"\n", pos, pos + 65536)
    if end < 0:
        raise MalformedArtifact(f"unterminated text argument at offset {start}")
    return bytes(data[pos:end]), end + 1


def read_global_name(data: bytes, pos: int, start: int) -> tuple[str, str, int]:
    """``GLOBAL``/``INST`` arguments: module and name lines, UTF-8 as the unpickler reads them."""
    a, pos = read_line(data, pos, start)
    b, pos = read_line(data, pos, start)
    try:
        return a.decode("utf-8"), b.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise MalformedArtifact(f"non-UTF-8 global name at offset {start}") from None


def parse_string_line(line: bytes, start: int) -> str:
    """The quoted, escaped argument of protocol 0 ``STRING``."""
    if len(line) < 2 or line[:1] not in (b"'", b'"') or line[-1:] != line[:1]:
        raise MalformedArtifact(f"STRING argument is not quoted at offset {start}")
    try:
        return codecs.escape_decode(line[1:-1])[0].decode("latin-1")
    except (ValueError, UnicodeDecodeError):
        raise MalformedArtifact(f"bad STRING escape at offset {start}") from None


def parse_unicode_line(line: bytes, start: int) -> str:
    """The raw-unicode-escape argument of protocol 0 ``UNICODE``."""
    try:
        return line.decode("raw-unicode-escape")
    except UnicodeDecodeError:
        raise MalformedArtifact(f"bad UNICODE argument at offset {start}") from None
