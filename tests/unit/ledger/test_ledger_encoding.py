"""Canonical encoding of ledger entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bastion.domain.events import AuditEvent, EventTag, JSONValue
from bastion.errors import InputError, LedgerIntegrityError
from bastion.ledger.encoding import (
    LedgerEntry,
    canonical_json,
    decode_entry,
    encode_entry,
    encode_event,
    format_number,
    format_time,
)

T0 = datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=UTC)


def _entry(**attrs: JSONValue) -> LedgerEntry:
    return LedgerEntry(7, T0, "ab" * 32, AuditEvent(EventTag.KEY_USED, "alice", "key-1", attributes=attrs))


def test_entry_bytes_are_exact_canonical_json() -> None:
    data = encode_entry(_entry(z=1, a="x"))
    assert data == (
        b'{"actor":"alice","attributes":{"a":"x","z":1},"outcome":"success","prev":"' + b"ab" * 32 + b'",'
        b'"seq":7,"tag":"crypto:key:used","target":"key-1","time":"2026-11-26T01:02:03.456789Z","v":1}'
    )


def test_round_trip_and_stdlib_agreement() -> None:
    entry = _entry(n=[1, 2.5, None, True, False], s='é\u2028\n\x01"\\', nested={"b": {"a": []}})
    data = encode_entry(entry)
    assert decode_entry(data) == entry
    # The stdlib reads the same value, and sorted-key compact output agrees for BMP keys.
    assert (
        json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        == data
    )


def test_keys_sort_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (D83D DE00) and sorts before U+FB01 in UTF-16, after it by code point.
    assert canonical_json({"\ufb01": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb01":1}'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (123.456, "123.456"),
        (5e-324, "5e-324"),
        (-1.5e300, "-1.5e+300"),
    ],
)
def test_floats_follow_ecmascript(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(InputError, match="NaN and infinity"):
        encode_event(AuditEvent(EventTag.KEY_USED, "a", attributes={"x": bad}))


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"x": 2**53 + 1}, "outside"),
        ({"x": 10**21}, "outside"),
        ({"x": "\ud800"}, "lone surrogates"),
        ({"x": b"bytes"}, "bytes cannot be recorded"),
        ({"x": {1: "int key"}}, "keys must be strings"),
    ],
)
def test_unencodable_values_are_refused(attrs: dict[object, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        encode_event(AuditEvent(EventTag.KEY_USED, "a", attributes=attrs))  # type: ignore[arg-type]


def test_deep_nesting_is_refused() -> None:
    value: object = 1
    for _ in range(70):
        value = [value]
    with pytest.raises(InputError, match="nested too deeply"):
        canonical_json(value)


def test_time_is_utc_fixed_width() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 1, 2, 0, tzinfo=plus2)) == "2026-01-01T00:00:00.000000Z"
    with pytest.raises(InputError):
        format_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"actor":"a"}',
        b"\xff\xfe",
        # valid entry but with whitespace: not canonical
        b'{"actor": "a","attributes":{},"outcome":"success","prev":"' + b"0" * 64 + b'","seq":0,'
        b'"tag":"crypto:key:used","target":"","time":"2026-11-26T01:02:03.456789Z","v":1}',
        # unknown tag
        b'{"actor":"a","attributes":{},"outcome":"success","prev":"' + b"0" * 64 + b'","seq":0,'
        b'"tag":"nope:nope:nope","target":"","time":"2026-11-26T01:02:03.456789Z","v":1}',
        b'{"actor":"a","attributes":{},"outcome":"success","prev":"' + b"0" * 64 + b'","seq":0,'
        b'"tag":"crypto:key:used","target":"","time":"2026-11-26T01:02:03.456789Z","v":1,"x":NaN}',
    ],
)
def test_decode_refuses_non_entries(data: bytes) -> None:
    with pytest.raises(LedgerIntegrityError):
        decode_entry(data)


def test_large_exact_doubles_round_trip() -> None:
    # A float beyond 2**53 is written as digits and reads back as an integer equal to that double.
    text = canonical_json({"x": 2.0**60})
    assert text == '{"x":1152921504606847000}'  # ECMAScript: shortest digits, then zeros
    assert canonical_json(json.loads(text)) == text
