"""AuditLog end to end on a real database: SQLite always, PostgreSQL when BASTION_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import Engine, text

from bastion.config import LedgerSettings, Settings
from bastion.domain.events import AuditEvent, EventTag
from bastion.errors import ConfigError, InputError, LedgerError
from bastion.ledger.merkle import TILE_LEVEL, verify_consistency, verify_inclusion
from bastion.services.audit import AuditLog, load_or_create_signing_key
from bastion.store.engine import make_engine
from bastion.store.schema import create_all

KEY = Ed25519PrivateKey.generate()


def ev(i: int, actor: str = "alice") -> AuditEvent:
    return AuditEvent(EventTag.KEY_USED, actor, f"key-{i}", attributes={"i": i})


@pytest.fixture
def log(engine: Engine) -> Iterator[AuditLog]:
    audit = AuditLog(engine, KEY, LedgerSettings(tree_head_every=10))
    try:
        yield audit
    finally:
        audit.close()


def test_record_verify_tail_and_proofs(log: AuditLog) -> None:
    receipts = [log.record(ev(i)) for i in range(25)]
    assert [r.seq for r in receipts] == list(range(25))
    assert log.size() == 25
    assert [h.tree_size for h in log.tree_heads()] == [10, 20]
    report = log.verify()
    assert report.ok and report.entries_checked == 25 and report.tree_heads_checked == 2
    tail = log.tail(3)
    assert [e.seq for e in tail] == [22, 23, 24] and tail[-1].event.attributes["i"] == 24
    head = log.sign_tree_head()
    assert head.tree_size == 25 and log.sign_tree_head() == head  # idempotent at one size
    proof = log.inclusion_proof(7, head.tree_size)
    assert proof.leaf_hash == receipts[7].leaf_hash
    assert verify_inclusion(proof.leaf_hash, 7, 25, proof.path, head.root_hash)
    heads = {h.tree_size: h for h in log.tree_heads()}
    cons = log.consistency_proof(10, 25)
    assert verify_consistency(10, 25, cons.path, heads[10].root_hash, head.root_hash)
    with pytest.raises(InputError):
        log.inclusion_proof(25, 25)
    with pytest.raises(InputError):
        log.consistency_proof(5, 99)


def test_record_many_is_contiguous_and_arecord_awaits(log: AuditLog) -> None:
    log.record(ev(0))
    receipts = log.record_many([ev(i) for i in range(1, 6)])
    assert [r.seq for r in receipts] == [1, 2, 3, 4, 5]
    assert log.record_many([]) == []

    async def many() -> list[int]:
        got = await asyncio.gather(*(log.arecord(ev(100 + i)) for i in range(40)))
        return sorted(r.seq for r in got)

    assert asyncio.run(many()) == list(range(6, 46))
    assert log.verify().ok


def test_concurrent_threads_never_fork(log: AuditLog) -> None:
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        for i in range(30):
            r = log.record(ev(i, actor=f"t{w}"))
            with lock:
                seqs.append(r.seq)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(240))
    report = log.verify()
    assert report.ok and report.entries_checked == 240


def test_bad_input_is_refused_and_nothing_recorded(log: AuditLog) -> None:
    with pytest.raises(InputError):
        log.record(AuditEvent(EventTag.KEY_USED, "a", attributes={"x": float("nan")}))
    with pytest.raises(InputError):
        log.record_many([ev(1), AuditEvent(EventTag.KEY_USED, "a", attributes={"x": "\ud800"})])
    assert log.size() == 0
    log.close()
    with pytest.raises(LedgerError, match="closed"):
        log.record(ev(1))


def test_two_instances_on_one_database_interleave(engine: Engine) -> None:
    a = AuditLog(engine, KEY, LedgerSettings(tree_head_every=7))
    b = AuditLog(engine, KEY, LedgerSettings(tree_head_every=7))
    try:
        for i in range(300):
            (a if i % 3 else b).record(ev(i))
        assert a.verify().ok and b.size() == 300
    finally:
        a.close()
        b.close()


def test_subtree_nodes_are_stored_and_used(engine: Engine) -> None:
    n = 3 * (1 << TILE_LEVEL) + 5
    with AuditLog(engine, KEY, LedgerSettings(tree_head_every=100_000)) as log:
        log.record_many(ev(i) for i in range(n))
        with engine.connect() as conn:
            levels = conn.execute(text("SELECT level, idx FROM ledger_nodes ORDER BY level, idx")).all()
        assert [tuple(r) for r in levels] == [
            (TILE_LEVEL, 0),
            (TILE_LEVEL, 1),
            (TILE_LEVEL, 2),
            (TILE_LEVEL + 1, 0),
        ]
        head = log.sign_tree_head()
        for seq in (0, 300, n - 1):
            proof = log.inclusion_proof(seq)
            assert verify_inclusion(proof.leaf_hash, seq, n, proof.path, head.root_hash)
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE ledger_nodes SET hash = :h WHERE level = :l AND idx = 1"),
                {"h": b"\1" * 32, "l": TILE_LEVEL},
            )
        report = log.verify()
        assert not report.ok and "subtree" in (report.reason or "")


@pytest.mark.parametrize(
    ("sql", "bad", "words"),
    [
        (
            "UPDATE ledger_entries SET canonical = CAST(replace(canonical, 'key-13', 'key-99') AS BLOB) WHERE seq = 13",
            13,
            "modified",
        ),
        ("UPDATE ledger_entries SET tag = 'authz:decision:allowed' WHERE seq = 4", 4, "columns"),
        ("UPDATE ledger_entries SET actor = 'mallory' WHERE seq = 0", 0, "columns"),
        ("DELETE FROM ledger_entries WHERE seq = 9", 9, "missing"),
        ("DELETE FROM ledger_entries WHERE seq >= 18", 18, "deleted"),
        (
            "UPDATE ledger_tree_heads SET root_hash = leaf_hash FROM ledger_entries WHERE seq = 0 AND tree_size = 10",
            None,
            "tree head 10",
        ),
    ],
)
def test_hand_edited_rows_are_caught(
    log: AuditLog, engine: Engine, sql: str, bad: int | None, words: str
) -> None:
    log.record_many(ev(i) for i in range(20))
    assert log.verify().ok
    if "replace(canonical" in sql and engine.dialect.name == "postgresql":
        sql = sql.replace(
            "CAST(replace(canonical, 'key-13', 'key-99') AS BLOB)",
            "convert_to(replace(convert_from(canonical, 'UTF8'), 'key-13', 'key-99'), 'UTF8')",
        )
    if "FROM ledger_entries WHERE seq = 0 AND" in sql and engine.dialect.name == "sqlite":
        sql = "UPDATE ledger_tree_heads SET root_hash = (SELECT leaf_hash FROM ledger_entries WHERE seq = 0) WHERE tree_size = 10"
    with engine.begin() as conn:
        conn.execute(text(sql))
    report = log.verify()
    assert not report.ok
    assert report.first_bad_seq == bad, report
    assert words in (report.reason or ""), report


def test_forged_signature_fails(log: AuditLog, engine: Engine) -> None:
    log.record_many(ev(i) for i in range(10))
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger_tree_heads SET signature = :s"), {"s": b"\0" * 64})
    report = log.verify()
    assert not report.ok and report.bad_tree_head == 10 and "signature" in (report.reason or "")


def test_verify_and_export_record_themselves(log: AuditLog) -> None:
    log.record_many(ev(i) for i in range(5))
    assert log.verify(actor="auditor").ok
    buf = io.StringIO()
    summary = log.export(buf, actor="auditor")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["tree_size"] == 7
    assert summary.entries == 7 and summary.tree_head is not None and summary.tree_head.tree_size == 7
    assert [x["type"] for x in lines].count("entry") == 7
    tags = [json.loads(x["entry"])["tag"] for x in lines if x["type"] == "entry"][-2:]
    assert tags == [EventTag.LEDGER_VERIFIED.value, EventTag.LEDGER_EXPORTED.value]


def test_open_creates_a_private_key_and_refuses_a_readable_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database={"url": f"sqlite:///{tmp_path / 'b.db'}"})  # type: ignore[arg-type]
    with AuditLog.open(settings) as log:
        log.record(ev(1))
        public = log.public_key
    mode = stat.S_IMODE(settings.signing_key_path.stat().st_mode)
    assert mode == 0o600
    with AuditLog.open(settings) as log:  # the same key is loaded again
        assert log.public_key == public and log.verify().ok
    os.chmod(settings.signing_key_path, 0o644)
    with pytest.raises(ConfigError, match="group or others"):
        AuditLog.open(settings)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        load_or_create_signing_key(bad)


def _append_worker(url: str, pem: bytes, worker: int, threads: int, per_thread: int) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    engine = make_engine(url)
    log = AuditLog(engine, key, LedgerSettings(tree_head_every=50))

    def run(t: int) -> None:
        for i in range(per_thread):
            log.record(
                AuditEvent(EventTag.GATEWAY_REQUEST_COMPLETED, f"p{worker}", f"t{t}", attributes={"i": i})
            )

    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    log.close()
    engine.dispose()


@pytest.mark.slow
def test_several_processes_never_fork_nor_lose_entries(db_url: str) -> None:
    engine = make_engine(db_url)
    create_all(engine)
    pem = KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    processes, threads, per_thread = 3, 4, 40
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_append_worker, args=(db_url, pem, w, threads, per_thread))
        for w in range(processes)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    with AuditLog(engine, KEY) as log:
        report = log.verify()
        assert report.ok, report
        assert report.entries_checked == log.size() == processes * threads * per_thread
        assert report.tree_heads_checked == processes * threads * per_thread // 50
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM ledger_entries")).scalar()
            == processes * threads * per_thread
        )
    engine.dispose()


class _CountingClock:
    """The writer reads the clock once per commit: counting the reads counts the commits."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return datetime.now(UTC)


def test_detached_events_are_held_and_committed_together(engine: Engine) -> None:
    clock = _CountingClock()
    audit = AuditLog(engine, KEY, LedgerSettings(detached_max_wait_ms=300), clock=clock)

    async def main() -> list[int]:
        futures = []
        for i in range(20):
            futures.append(audit.record_detached(ev(i)))
            await asyncio.sleep(0.002)  # one at a time: each would be a commit of its own
        receipts = await asyncio.gather(*futures)
        return [r[0].seq for r in receipts]

    try:
        assert asyncio.run(main()) == list(range(20))
        assert clock.reads == 1  # 20 events spread over ~40 ms went into one commit
        assert audit.verify().ok
    finally:
        audit.close()


def test_a_waited_for_event_ends_the_hold_and_close_commits_what_is_held(engine: Engine) -> None:
    clock = _CountingClock()
    audit = AuditLog(engine, KEY, LedgerSettings(detached_max_wait_ms=1000), clock=clock)

    async def main() -> tuple[bool, int, float]:
        t0 = time.monotonic()
        held = audit.record_detached(ev(0))
        await asyncio.sleep(0.05)
        assert not held.done()  # nobody waits for it: held back
        receipt = await audit.arecord(ev(1))  # a caller waits: the hold ends now, not at 1 s
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0)
        return held.done(), receipt.seq, elapsed

    try:
        done, seq, elapsed = asyncio.run(main())
        assert done and seq == 1 and elapsed < 0.8
        assert clock.reads == 1  # both went into the waited-for event's commit

        async def hold_one() -> None:
            audit.record_detached(ev(2))

        asyncio.run(hold_one())
        t0 = time.monotonic()
        audit.close()  # commits the held event now
        assert time.monotonic() - t0 < 0.8
        assert audit.size() == 3 and audit.verify().ok
    finally:
        audit.close()


def test_no_detached_wait_commits_at_once(engine: Engine) -> None:
    audit = AuditLog(engine, KEY, LedgerSettings(detached_max_wait_ms=0))

    async def main() -> int:
        return (await asyncio.wait_for(audit.record_detached(ev(0)), 10))[0].seq

    try:
        assert asyncio.run(main()) == 0
    finally:
        audit.close()
