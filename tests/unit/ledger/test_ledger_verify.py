"""The verifier names the first bad entry for every kind of tampering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.domain.events import AuditEvent, EventTag
from bastion.ledger.appender import MemoryLog
from bastion.ledger.encoding import canonical_json
from bastion.ledger.heads import TreeHead, sign_tree_head
from bastion.ledger.merkle import TILE_LEVEL, leaf_hash
from bastion.ledger.verify import EntryRecord, VerifyReport, index_key, record_of, verify_records

KEY = Ed25519PrivateKey.generate()


def make_log(n: int, every: int = 1000) -> MemoryLog:
    log = MemoryLog(KEY, tree_head_every=every)
    t = datetime(2026, 11, 26, tzinfo=UTC)
    for i in range(n):
        log.record(AuditEvent(EventTag.KEY_USED, f"user-{i % 3}", f"key-{i}", attributes={"i": i}), t)
        t += timedelta(milliseconds=1)
    log.sign_tree_head(t)
    return log


def run(log: MemoryLog, records: list[EntryRecord], heads: list[TreeHead] | None = None) -> VerifyReport:
    return verify_records([records], log.heads if heads is None else heads, log.public_keys)


def rewrite(record: EntryRecord, keep_leaf: bool, **changes: object) -> EntryRecord:
    obj = json.loads(record[2])
    obj.update(changes)
    data = canonical_json(obj).encode()
    index = index_key(obj["time"], obj["tag"], obj["actor"])
    return (obj["seq"], index, data, record[3] if keep_leaf else leaf_hash(data))


def test_intact_log_verifies() -> None:
    log = make_log(50, every=7)
    report = run(log, [e.record() for e in log.entries])
    assert report.ok, report
    assert report.entries_checked == 50
    assert report.tree_heads_checked == len(log.heads) == 8
    assert report.root_hash == log.appender.root()
    assert report.to_json()["first_bad_seq"] is None


def test_empty_log_verifies() -> None:
    log = make_log(0)
    assert run(log, []).ok


def test_batches_do_not_matter() -> None:
    log = make_log(30, every=4)
    recs = [e.record() for e in log.entries]
    batches = [recs[i : i + 3] for i in range(0, 30, 3)]
    assert verify_records(batches, log.heads, log.public_keys).ok
    recs[10] = rewrite(recs[10], keep_leaf=False, attributes={"evil": 1})
    batches = [recs[i : i + 3] for i in range(0, 30, 3)]  # the look-ahead crosses a batch boundary
    report = verify_records(batches, log.heads, log.public_keys)
    assert report.first_bad_seq == 10


@pytest.mark.parametrize("keep_leaf", [True, False])
@pytest.mark.parametrize("k", [0, 5, 19])
def test_modification_is_named(k: int, keep_leaf: bool) -> None:
    log = make_log(20)
    recs = [e.record() for e in log.entries]
    recs[k] = rewrite(recs[k], keep_leaf, attributes={"i": -1})
    report = run(log, recs)
    assert not report.ok
    assert report.first_bad_seq == k, report


def test_hand_edited_column_is_named() -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    seq, index, data, leaf = recs[4]
    time, _tag, actor = index.split("|", 2)
    recs[4] = (seq, index_key(time, EventTag.AUTHZ_ALLOWED.value, actor), data, leaf)
    report = run(log, recs)
    assert (report.first_bad_seq, "columns") == (4, "columns") and "columns" in (report.reason or "")


def test_prev_field_altered_names_that_entry() -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    recs[6] = rewrite(recs[6], keep_leaf=False, prev="11" * 32)
    assert run(log, recs).first_bad_seq == 6


@pytest.mark.parametrize("k", [0, 3, 9])
def test_deletion_is_named(k: int) -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    del recs[k]
    report = run(log, recs)
    assert report.first_bad_seq == k, report


@pytest.mark.parametrize("k", [0, 4, 9])
def test_insertion_is_named(k: int) -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    prev = recs[k - 1][3].hex() if k else "0" * 64  # type: ignore[union-attr]
    forged = rewrite(recs[k], keep_leaf=False, prev=prev, actor="mallory")
    recs.insert(k, forged)
    report = run(log, recs)
    assert report.first_bad_seq == k, report


@pytest.mark.parametrize(("i", "j"), [(0, 1), (2, 7), (8, 9)])
def test_reordering_is_named(i: int, j: int) -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    recs[i], recs[j] = recs[j], recs[i]
    assert run(log, recs).first_bad_seq == i


def test_timestamps_going_backwards_are_caught() -> None:
    log = make_log(5)
    recs = [e.record() for e in log.entries]
    recs[3] = rewrite(recs[3], keep_leaf=False, time="2000-01-01T00:00:00.000000Z")
    report = run(log, recs)
    assert report.first_bad_seq == 3


def test_forged_tree_head_signature_fails() -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    head = log.heads[-1]
    forged = TreeHead(head.tree_size, head.root_hash, head.timestamp, head.key_id, bytes(64))
    report = run(log, recs, [forged])
    assert not report.ok and report.bad_tree_head == 10 and "signature" in (report.reason or "")
    other = sign_tree_head(Ed25519PrivateKey.generate(), 10, head.root_hash, datetime.now(UTC))
    report = run(log, recs, [other])
    assert not report.ok and "unknown key" in (report.reason or "")


def test_tree_head_with_wrong_root_fails() -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    bad = sign_tree_head(KEY, 6, b"\x00" * 32, datetime.now(UTC))
    report = run(log, recs, [bad, *log.heads])
    assert not report.ok and report.bad_tree_head == 6 and report.first_bad_seq == 5


def test_tail_rewrite_is_caught_by_the_tree_head() -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries]
    # Rewrite entries 6..9 and their chain consistently (no key needed): only the signed head sees it.
    for k in range(6, 10):
        prev = recs[k - 1][3].hex()  # type: ignore[union-attr]
        recs[k] = rewrite(recs[k], keep_leaf=False, prev=prev, attributes={"evil": k})
    report = run(log, recs)
    assert not report.ok and report.bad_tree_head == 10 and report.first_bad_seq == 9


def test_truncation_is_caught_by_the_tree_head() -> None:
    log = make_log(10)
    recs = [e.record() for e in log.entries][:7]
    report = run(log, recs)
    assert not report.ok and report.first_bad_seq == 7 and "deleted" in (report.reason or "")


def test_stored_subtree_mismatch_is_reported() -> None:
    n = 1 << TILE_LEVEL
    log = make_log(n)
    recs = [e.record() for e in log.entries]
    good = {(TILE_LEVEL, 0): log.appender.root()}
    assert verify_records([recs], log.heads, log.public_keys, good).ok
    report = verify_records([recs], log.heads, log.public_keys, {(TILE_LEVEL, 0): b"\x01" * 32})
    assert not report.ok and "subtree" in (report.reason or "")


def test_garbage_entries_are_named() -> None:
    log = make_log(5)
    recs = [e.record() for e in log.entries]
    recs[2] = (2, recs[2][1], b"\xff not json", None)
    assert run(log, recs).first_bad_seq == 2
    recs[2] = record_of(b'{"a":1}')
    assert run(log, recs).first_bad_seq == 2


def test_wrongly_typed_stored_values_are_named() -> None:
    # SQLite columns are dynamically typed: a hand edit can leave text where bytes belong.
    log = make_log(5)
    recs = [e.record() for e in log.entries]
    seq, index, data, leaf = recs[3]
    recs[3] = (seq, index, data.decode(), leaf)  # type: ignore[assignment]
    assert run(log, recs).first_bad_seq == 3
    recs = [e.record() for e in log.entries]
    recs[2] = (2, 12345, recs[2][2], recs[2][3])  # type: ignore[assignment]
    assert run(log, recs).first_bad_seq == 2
