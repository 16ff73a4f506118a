"""Appending: seq, clamped time, the hash chain and the subtrees to store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bastion.domain.events import AuditEvent, EventTag
from bastion.ledger.appender import Appender, MemoryLog
from bastion.ledger.encoding import decode_entry, encode_event
from bastion.ledger.merkle import TILE_LEVEL, mth

T = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_seq_time_and_chain() -> None:
    app = Appender()
    ev = encode_event(AuditEvent(EventTag.SERVER_STARTED, "system"))
    a = app.append(ev, T)
    b = app.append(ev, T - timedelta(hours=1))  # a writer with a slow clock
    assert (a.seq, b.seq) == (0, 1)
    assert b.time == a.time  # time never goes backwards
    assert json.loads(a.data)["prev"] == "0" * 64
    assert json.loads(b.data)["prev"] == a.leaf.hex()
    assert decode_entry(b.data).seq == 1
    assert app.root() == mth([a.leaf, b.leaf])


def test_closed_subtrees_are_reported_once() -> None:
    app = Appender()
    ev = encode_event(AuditEvent(EventTag.SERVER_STARTED, "system"))
    for _ in range(1 << TILE_LEVEL):
        app.append(ev, T)
    closed = app.take_closed()
    assert [(c.level, c.index) for c in closed] == [(TILE_LEVEL, 0)]
    assert closed[0].hash == app.root()
    assert app.take_closed() == []


def test_memory_log_signs_every_n() -> None:
    log = MemoryLog(Ed25519PrivateKey.generate(), tree_head_every=4)
    log.record_many(AuditEvent(EventTag.KEY_USED, "a", str(i)) for i in range(10))
    assert [h.tree_size for h in log.heads] == [4, 8]
    assert log.verify().ok
    assert log.reader().root() == log.appender.root()
