"""Properties of the ledger engine: any single tampering is named; every proof verifies; encoding round-trips."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.domain.events import AuditEvent, EventTag
from bastion.errors import InputError
from bastion.ledger.appender import MemoryLog
from bastion.ledger.encoding import LedgerEntry, canonical_json, decode_entry, encode_entry
from bastion.ledger.merkle import (
    ClosedNode,
    CompactRange,
    MemorySource,
    TreeReader,
    leaf_hash,
    mth,
    verify_consistency,
    verify_inclusion,
)
from bastion.ledger.verify import EntryRecord, index_key, verify_records

KEY = Ed25519PrivateKey.generate()
T0 = datetime(2026, 11, 26, tzinfo=UTC)

text = st.text(max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
events = st.builds(
    AuditEvent,
    tag=st.sampled_from(list(EventTag)),
    actor=text,
    target=text,
    outcome=st.sampled_from(["success", "failure", "denied"]),
    attributes=st.dictionaries(text, json_values, max_size=5),
)


def _same_json(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=200, deadline=None)
@given(event=events, seq=st.integers(0, 2**40), micros=st.integers(0, 10**15))
def test_encoding_round_trips(event: AuditEvent, seq: int, micros: int) -> None:
    entry = LedgerEntry(seq, T0 + timedelta(microseconds=micros), "ab" * 32, event)
    data = encode_entry(entry)
    back = decode_entry(data)
    assert encode_entry(back) == data  # canonical: one value, one encoding
    assert (back.seq, back.time, back.prev, back.event.tag) == (entry.seq, entry.time, entry.prev, event.tag)
    assert (back.event.actor, back.event.target, back.event.outcome) == (
        event.actor,
        event.target,
        event.outcome,
    )
    # JSON has one number type: values round-trip (1.0 reads back as 1), compare them as JSON.
    assert json.loads(canonical_json(dict(back.event.attributes))) == json.loads(
        canonical_json(dict(event.attributes))
    )
    assert json.loads(data)["attributes"] == json.loads(canonical_json(dict(event.attributes)))


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 300), data=st.data())
def test_every_proof_verifies(n: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    reader = TreeReader(MemorySource(leaves), n)
    root = reader.root()
    assert root == mth(leaves)
    m = data.draw(st.integers(0, n - 1), label="index")
    assert verify_inclusion(leaves[m], m, n, reader.inclusion_path(m), root)
    old = data.draw(st.integers(0, n), label="old size")
    proof = reader.consistency_path(old)
    assert verify_consistency(old, n, proof, mth(leaves[:old]), root)
    if 0 < old < n:
        assert not verify_consistency(old, n, proof, mth(leaves[: old - 1]) if old > 1 else b"\0" * 32, root)
    assert not verify_inclusion(leaves[m], m, n, reader.inclusion_path(m), leaf_hash(b"other"))


def _log(n: int, every: int) -> MemoryLog:
    log = MemoryLog(KEY, tree_head_every=every)
    for i in range(n):
        log.record(
            AuditEvent(EventTag.AUTHZ_DENIED, f"p{i % 4}", f"r{i}", attributes={"i": i}),
            T0 + timedelta(seconds=i),
        )
    log.sign_tree_head(T0 + timedelta(days=1))
    return log


def _rewrite(rec: EntryRecord, stored_leaf: bool, **changes: object) -> EntryRecord:
    obj = json.loads(rec[2])
    obj.update(changes)
    data = canonical_json(obj).encode()
    index = index_key(obj["time"], obj["tag"], obj["actor"])
    return (obj["seq"], index, data, rec[3] if stored_leaf else leaf_hash(data))


tamper_kinds = st.sampled_from(["modify", "modify-actor", "delete", "insert", "reorder"])


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(2, 40),
    every=st.integers(1, 50),
    kind=tamper_kinds,
    stored_leaves=st.booleans(),
    data=st.data(),
)
def test_any_single_tampering_is_named(
    n: int, every: int, kind: str, stored_leaves: bool, data: st.DataObject
) -> None:
    log = _log(n, every)
    recs = [e.record() if stored_leaves else (*e.record()[:3], None) for e in log.entries]
    assert verify_records([recs], log.heads, log.public_keys).ok
    k = data.draw(st.integers(0, n - 1), label="position")
    if kind == "modify":
        recs[k] = _rewrite(recs[k], stored_leaves, attributes={"tampered": True})
        expected = k
    elif kind == "modify-actor":
        recs[k] = _rewrite(recs[k], stored_leaves, actor="mallory")
        expected = k
    elif kind == "delete":
        del recs[k]
        expected = k
    elif kind == "insert":
        prev = leaf_hash(recs[k - 1][2]).hex() if k else "0" * 64
        forged = _rewrite(recs[k], False, prev=prev, actor="forger")
        recs.insert(k, forged if stored_leaves else (*forged[:3], None))
        expected = k
    else:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != k), label="other")
        recs[k], recs[j] = recs[j], recs[k]
        expected = min(j, k)
    batch = data.draw(st.integers(1, n + 1), label="batch size")
    report = verify_records(
        [recs[i : i + batch] for i in range(0, len(recs), batch)], log.heads, log.public_keys
    )
    assert not report.ok
    assert report.first_bad_seq == expected, report


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 700), cuts=st.lists(st.integers(0, 700), max_size=6), min_level=st.integers(1, 9))
def test_bulk_extend_equals_one_by_one(n: int, cuts: list[int], min_level: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    one: list[ClosedNode] = []
    a = CompactRange()
    for h in leaves:
        a.append(h, one, min_level)
    bulk: list[ClosedNode] = []
    b = CompactRange()
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    for lo, hi in itertools.pairwise(bounds):
        b.extend(leaves[lo:hi], bulk, min_level)
    assert (b.size, b.root(), b.hashes) == (a.size, a.root(), a.hashes) and b.root() == mth(leaves)
    assert sorted(bulk, key=lambda c: (c.level, c.index)) == sorted(one, key=lambda c: (c.level, c.index))


def _general_path(value: object) -> str:
    """canonical_json without its orjson fast path: the encoder's general writer alone."""
    from bastion.ledger.encoding import _emit

    parts: list[str] = []
    _emit(value, parts, 0)
    return "".join(parts)


def _outcome(encode: Callable[[object], str], value: object) -> tuple[str, str]:
    try:
        return "ok", encode(value)
    except InputError as e:
        return "refused", str(e)


# every character class the two writers could treat differently: controls, quotes, backslash, DEL,
# non-ASCII in and beyond the BMP (U+E000 sorts after U+1F600 in UTF-16), and lone surrogates (refused)
tricky_text = st.text(
    alphabet=st.sampled_from(
        ["a", "Z", "\x00", "\x1f", '"', "\\", "\x7f", "é", "\u2028", "\ue000", "😀", "\ud800"]
    ),
    max_size=4,
)
ascii_keys = st.text(alphabet=st.sampled_from(["a", "b", "Z", "_", "0", "\x00", '"', "\\"]), max_size=3)
plain_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**60, 2**64, 0])
    | tricky_text
)


def _containers(
    keys: st.SearchStrategy[str],
) -> Callable[[st.SearchStrategy[object]], st.SearchStrategy[object]]:
    return lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.dictionaries(keys, children, max_size=4).map(MappingProxyType)
    )


# what the fast path takes (ASCII keys, no floats) and everything next to it
plain_values = st.recursive(plain_leaves, _containers(ascii_keys), max_leaves=16)
mixed_values = st.recursive(
    plain_leaves | st.floats(allow_nan=False, allow_infinity=False),
    _containers(ascii_keys | tricky_text),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(
    value=st.dictionaries(ascii_keys, plain_values, max_size=6)
    | st.dictionaries(ascii_keys | tricky_text, mixed_values, max_size=6)
)
def test_fast_path_writes_what_the_general_path_writes(value: dict[str, object]) -> None:
    assert _outcome(canonical_json, value) == _outcome(_general_path, value)
    proxied = MappingProxyType(value)  # how events hold their attributes
    assert _outcome(canonical_json, proxied) == _outcome(_general_path, proxied)


@settings(max_examples=50, deadline=None)
@given(depth=st.integers(60, 68), leaf=st.sampled_from([1, "x", [], {}]))
def test_fast_path_keeps_the_depth_limit(depth: int, leaf: object) -> None:
    value: object = leaf
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    wrapped = {"k": value}
    assert _outcome(canonical_json, wrapped) == _outcome(_general_path, wrapped)


def test_fast_path_leaves_non_ascii_keys_to_utf16_order() -> None:
    value = {"\ue000": 1, "😀": 2, "a": [1, 2]}
    assert canonical_json(value) == _general_path(value) == '{"a":[1,2],"😀":2,"\ue000":1}'
