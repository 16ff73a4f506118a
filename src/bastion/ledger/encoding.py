"""Canonical encoding of ledger entries: the exact bytes that are hashed into the Merkle tree.

An entry is encoded as JSON in the style of RFC 8785 (JCS):

* object keys sorted by their UTF-16 code units, no insignificant whitespace, UTF-8, no BOM;
* strings: only ``"``, ``\\`` and control characters below U+0020 are escaped (``\\b \\t \\n \\f \\r``,
  else ``\\u00xx`` in lower-case hex); everything else is written as raw UTF-8; lone surrogates are refused;
* integers: the interoperable range ``-(2**53 - 1) .. 2**53 - 1``; a larger integer only when it is exactly
  what a double is written as (a float such as ``2.0**60`` encodes as digits and reads back as that
  integer); other large integers are refused — write them as strings;
* floats: finite only (NaN and ±infinity are refused), written as ECMAScript ``Number.prototype.toString``
  writes them (shortest digits that round-trip; ``1.0`` becomes ``1``, ``1e21`` becomes ``1e+21``). JSON has
  one number type, so a float with an integral value decodes as an ``int``: the *value* round-trips,
  the Python type may not. Keep attributes integral or textual where you can;
* ``true``, ``false``, ``null``; lists; objects with string keys only.

The entry object has exactly these keys (sorted)::

    {"actor", "attributes", "outcome", "prev", "seq", "tag", "target", "time", "v"}

``prev`` is the leaf hash (hex) of the previous entry (64 zeros for entry 0): a hash chain beside the
Merkle tree, so that a single altered, inserted or deleted entry is named even when its stored hash
was recomputed. ``time`` is RFC 3339 UTC with microseconds (``2026-11-26T01:55:32.123456Z``), fixed
width so that it also sorts as text. ``v`` is the format version (1).

Because ``seq``, ``time`` and ``prev`` are only known when the writer appends, an event is encoded once
(:func:`encode_event`) into fixed pieces and the writer splices the three values in
(:meth:`EncodedEvent.entry_bytes`) — a few string joins on the hot path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson

from bastion.domain.events import AuditEvent, EventTag, JSONValue, parse_tag
from bastion.errors import InputError, LedgerIntegrityError

FORMAT_VERSION = 1
MAX_SAFE_INTEGER = 2**53 - 1
ZERO_HASH_HEX = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ENTRY_KEYS = frozenset({"actor", "attributes", "outcome", "prev", "seq", "tag", "target", "time", "v"})

_encode_str = json.encoder.encode_basestring
_MAX_DEPTH = 64
_STR_ONLY = frozenset({str})
_PLAIN_LEAVES = frozenset({str, int, bool, type(None)})
_PLAIN_CONTAINERS = frozenset({dict, list, tuple, MappingProxyType})
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER


def format_time(ts: datetime) -> str:
    """``ts`` as fixed-width RFC 3339 UTC text with microseconds; naive datetimes are refused."""
    if ts.tzinfo is None:
        raise InputError("ledger timestamps must be timezone-aware")
    return ts.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """The aware UTC datetime of a ledger timestamp written by :func:`format_time`."""
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as e:
        raise LedgerIntegrityError(f"malformed ledger timestamp {text!r}") from e


def format_number(value: float) -> str:
    """A finite float written as ECMAScript ``Number.prototype.toString`` (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(value):
        raise InputError("NaN and infinity cannot be recorded in the ledger")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    dec = Decimal(repr(abs(value)))  # repr: the shortest digits that round-trip
    _, digits_t, exp = dec.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    exp += len("".join(map(str, digits_t))) - len(digits)  # account for stripped zeros
    k = len(digits)
    n = exp + k  # value = 0.digits × 10^n
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _check_str(s: str) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError("ledger text must be valid Unicode (lone surrogates are refused)") from e
    return s


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON text (see the module docstring); :class:`InputError` if not encodable.

    An object made only of what orjson writes exactly as this module does (see :func:`_plain`) is
    written by orjson with sorted keys, about twice as fast as the general path even with the check;
    anything else (floats, non-ASCII keys, subclasses, deep nesting, integers past ±(2**53-1), lone
    surrogates) goes the general path, which writes it or names the problem.
    """
    t = type(value)
    if (t is dict or t is MappingProxyType) and _plain(value, 0):
        try:
            text: str = orjson.dumps(
                value.copy() if t is MappingProxyType else value, default=_proxied, option=_ORJSON_OPTIONS
            ).decode()
        except orjson.JSONEncodeError:
            pass  # an integer past 53 bits or a lone surrogate: the general path decides
        else:
            return text
    parts: list[str] = []
    _emit(value, parts, 0)
    return "".join(parts)


def _plain(value: Any, depth: int) -> bool:
    """True when orjson writes the container ``value`` (at ``depth``) byte for byte as :func:`_emit`:
    exact ``dict``/``MappingProxyType`` with ASCII ``str`` keys (their code-point, UTF-8 and UTF-16
    orders agree), ``list``, ``tuple``, and leaves of exact type ``str`` (orjson escapes like
    ``encode_basestring`` and writes other characters as UTF-8), ``int`` (``OPT_STRICT_INTEGER``
    refuses the ones past ±(2**53-1)), ``bool`` or None. Floats are left to :func:`format_number`."""
    if depth >= _MAX_DEPTH:
        return False  # the general path knows exactly where the limit lies
    t = type(value)
    if t is dict or t is MappingProxyType:
        keys = value.keys()
        if not (_STR_ONLY.issuperset(map(type, keys)) and "".join(keys).isascii()):
            return False
        items = value.values()
    else:
        items = value
    for v in items:
        t = type(v)
        if t in _PLAIN_LEAVES:
            continue
        if t in _PLAIN_CONTAINERS and _plain(v, depth + 1):
            continue
        return False
    return True


def _proxied(value: Any) -> dict[Any, Any]:
    """orjson's hook for the one container it does not know, a nested ``MappingProxyType`` (only
    reached after :func:`_plain` accepted the value)."""
    if type(value) is MappingProxyType:
        return dict(value)
    raise TypeError(type(value).__name__)


def _emit(value: Any, out: list[str], depth: int) -> None:
    # The exact built-in types first (the common case: what the services record), dispatched on
    # ``type``; subclasses, other mappings and sequences take the general path below.
    if depth > _MAX_DEPTH:
        raise InputError("ledger attributes are nested too deeply (more than 64 levels)")
    t = type(value)
    if t is str:
        out.append(_encode_str(value if value.isascii() else _check_str(value)))
    elif t is dict or t is MappingProxyType:  # events hold their attributes in a MappingProxyType
        if not value:
            out.append("{}")
            return
        keys = list(value)
        if all(type(k) is str and k.isascii() for k in keys):
            keys.sort()  # ASCII: code-point order is UTF-16 code-unit order
        else:
            keys.sort(key=lambda k: _utf16_key(_check_key(k)))
        sep = "{"
        for key in keys:
            out.append(sep)
            sep = ","
            out.append(_encode_str(key))
            out.append(":")
            _emit(value[key], out, depth + 1)
        out.append("}")
    elif t is list or t is tuple:
        if not value:
            out.append("[]")
            return
        sep = "["
        for item in value:
            out.append(sep)
            sep = ","
            _emit(item, out, depth + 1)
        out.append("]")
    elif t is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            out.append(str(value))
        else:
            _emit_other(value, out, depth)
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    else:
        _emit_other(value, out, depth)


def _emit_other(value: Any, out: list[str], depth: int) -> None:
    if isinstance(value, str):
        out.append(_encode_str(_check_str(value)))
    elif isinstance(value, int):
        text = str(int(value))
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER and not _is_exact_double_text(value, text):
            raise InputError(f"integer {value} is outside ±(2**53-1); record it as a string")
        out.append(text)
    elif isinstance(value, float):
        out.append(format_number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key in sorted(value, key=lambda k: _utf16_key(_check_key(k))):
            if not first:
                out.append(",")
            first = False
            out.append(_encode_str(key))
            out.append(":")
            _emit(value[key], out, depth + 1)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _emit(item, out, depth + 1)
        out.append("]")
    else:
        raise InputError(f"a {type(value).__name__} cannot be recorded in the ledger (JSON values only)")


def _is_exact_double_text(value: int, text: str) -> bool:
    """True when a large integer is exactly what a double would be written as (e.g. a float 2.0**60)."""
    try:
        return format_number(float(value)) == text
    except OverflowError:
        return False


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise InputError(f"ledger attribute keys must be strings, got {type(key).__name__}")
    return _check_str(key)


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event encoded once, waiting for its ``seq``, ``time`` and ``prev``.

    The canonical entry is ``head + prev + mid + seq + tail_a + time + tail_b`` (keys in sorted order:
    actor, attributes, outcome, prev, seq, tag, target, time, v).
    """

    event: AuditEvent
    head: str  # {"actor":…,"attributes":…,"outcome":…,"prev":"
    mid: str  # ","seq":
    tail_a: str  # ,"tag":…,"target":…,"time":"
    tail_b: str  # ","v":1}

    def entry_bytes(self, seq: int, time: str, prev_hex: str) -> bytes:
        """The canonical bytes of this event at position ``seq``."""
        return (self.head + prev_hex + self.mid + str(seq) + self.tail_a + time + self.tail_b).encode("utf-8")


def _text(value: object, name: str) -> str:
    if type(value) is not str:
        raise InputError(f"the event's {name} must be a string")
    if not value.isascii():
        _check_str(value)
    text: str = _encode_str(value)
    return text


def encode_event(event: AuditEvent) -> EncodedEvent:
    """Validate and pre-encode ``event``; :class:`InputError` for anything the ledger cannot hold."""
    attributes = canonical_json(event.attributes) if event.attributes else "{}"
    head = (
        '{"actor":'
        + _text(event.actor, "actor")
        + ',"attributes":'
        + attributes
        + ',"outcome":'
        + _text(event.outcome, "outcome")
        + ',"prev":"'
    )
    tail_a = (
        ',"tag":' + _text(event.tag.value, "tag") + ',"target":' + _text(event.target, "target") + ',"time":"'
    )
    return EncodedEvent(event, head, '","seq":', tail_a, f'","v":{FORMAT_VERSION}}}')


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One recorded entry: its position, time, hash-chain link and event."""

    seq: int
    time: datetime
    prev: str
    event: AuditEvent

    @property
    def time_text(self) -> str:
        return format_time(self.time)

    def to_json(self) -> dict[str, JSONValue]:
        """A JSON-ready view for people and APIs (the canonical bytes are :func:`encode_entry`)."""
        return {
            "seq": self.seq,
            "time": self.time_text,
            "tag": self.event.tag.value,
            "actor": self.event.actor,
            "target": self.event.target,
            "outcome": self.event.outcome,
            "attributes": dict(self.event.attributes),
        }


def encode_entry(entry: LedgerEntry) -> bytes:
    """The canonical bytes of ``entry``."""
    return encode_event(entry.event).entry_bytes(entry.seq, entry.time_text, entry.prev)


def decode_entry(data: bytes) -> LedgerEntry:
    """Parse canonical entry bytes; :class:`LedgerIntegrityError` if they are not a canonical entry."""
    obj = decode_object(data)
    try:
        attributes: dict[str, JSONValue] = obj["attributes"]
        if not isinstance(attributes, dict):
            raise TypeError("attributes must be an object")
        for name in ("actor", "outcome", "target", "prev", "time", "tag"):
            if not isinstance(obj[name], str):
                raise TypeError(f"{name} must be a string")
        tag: EventTag = parse_tag(obj["tag"])
        entry = LedgerEntry(
            seq=_int(obj["seq"]),
            time=parse_time(obj["time"]),
            prev=obj["prev"],
            event=AuditEvent(tag, obj["actor"], obj["target"], obj["outcome"], attributes),
        )
    except (KeyError, TypeError, ValueError, InputError) as e:
        raise LedgerIntegrityError(f"not a ledger entry: {e}") from e
    if encode_entry(entry) != data:
        raise LedgerIntegrityError("entry bytes are not in canonical form")
    return entry


def decode_object(data: bytes) -> dict[str, Any]:
    """The JSON object of entry bytes with exactly the entry keys (not checked for canonical form)."""
    try:
        obj = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise LedgerIntegrityError(f"entry bytes are not UTF-8 JSON: {e}") from e
    if not isinstance(obj, dict) or obj.keys() != ENTRY_KEYS or obj["v"] != FORMAT_VERSION:
        raise LedgerIntegrityError("entry bytes are not a version-1 ledger entry object")
    return obj


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("seq must be an integer")
    return value
