"""Ledger benchmark: appends/s with N concurrent writers (group commit), proof time in a large log, verify rate.

    .venv/bin/python bench/ledger_bench.py                       # SQLite, 1M-entry log
    .venv/bin/python bench/ledger_bench.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/ledger_bench.py --size 100000 --repeat 1   # quick
    .venv/bin/python bench/ledger_bench.py --size 0 --appends 0 --latency 3000   # one append's latency only

Each figure is the median of --repeat runs. Appends are real ``AuditLog.record``/``arecord`` calls, each
returning only after its commit (SQLite WAL with synchronous=FULL). The large log for proofs and
verification is filled in bulk through the same append path (``Appender`` + ledger_repo) in big
transactions, then proofs are generated and checked through ``AuditLog``.

``--latency N`` (SQLite) times one durable append at a time against the floor under it, all in the same
directory: ``fdatasync`` of a 600-byte write to a preallocated file (the disk's own cost), a bare SQLite
WAL commit of one row with ``synchronous=FULL`` and with ``NORMAL`` (no fsync), ``AuditLog.record`` from
one thread and ``arecord`` from one asyncio task (the gateway's path with ``durable_audit``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, text

from bastion.config import LedgerSettings
from bastion.domain.events import AuditEvent, EventTag
from bastion.ledger.appender import Appender
from bastion.ledger.encoding import encode_event
from bastion.ledger.heads import sign_tree_head
from bastion.ledger.merkle import verify_consistency, verify_inclusion
from bastion.services.audit import AuditLog
from bastion.store import ledger_repo as repo
from bastion.store.engine import make_engine, normalise_url
from bastion.store.schema import create_all

KEY = Ed25519PrivateKey.generate()


def event(i: int) -> AuditEvent:
    return AuditEvent(
        EventTag.GATEWAY_REQUEST_COMPLETED,
        f"principal-{i % 97}",
        "model-x",
        attributes={"status": 200, "tokens": 100 + i % 1000, "request": f"{i:08x}"},
    )


def median_of(repeat: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeat))


# -- appends ---------------------------------------------------------------------------------------


def threaded_appends(engine: Engine, writers: int, total: int, cfg: LedgerSettings) -> float:
    """Appends/s with ``writers`` threads each calling ``record`` in a loop."""
    with AuditLog(engine, KEY, cfg) as log:
        per = total // writers
        start = threading.Barrier(writers + 1)

        def work(w: int) -> None:
            start.wait()
            for i in range(per):
                log.record(event(w * per + i))

        threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        return per * writers / (time.perf_counter() - t0)


def async_appends(engine: Engine, writers: int, total: int, cfg: LedgerSettings) -> float:
    """Appends/s with ``writers`` asyncio tasks each awaiting ``arecord`` in a loop (one event loop)."""
    with AuditLog(engine, KEY, cfg) as log:
        per = total // writers

        async def work(w: int) -> None:
            for i in range(per):
                await log.arecord(event(w * per + i))

        async def main() -> float:
            t0 = time.perf_counter()
            await asyncio.gather(*(work(w) for w in range(writers)))
            return per * writers / (time.perf_counter() - t0)

        return asyncio.run(main())


def record_many_appends(engine: Engine, total: int, cfg: LedgerSettings) -> float:
    """Appends/s of one caller handing over batches of 500 (an upper bound for the writer)."""
    with AuditLog(engine, KEY, cfg) as log:
        t0 = time.perf_counter()
        for b in range(0, total, 500):
            log.record_many(event(i) for i in range(b, b + 500))
        return total / (time.perf_counter() - t0)


# -- one append's latency ---------------------------------------------------------------------------


def _quantiles(samples: list[float]) -> str:
    """p50 / p90 / p99 of ``samples`` (seconds) in µs."""
    s = sorted(samples)
    q = [s[min(len(s) - 1, int(len(s) * f))] * 1e6 for f in (0.5, 0.9, 0.99)]
    return f"p50 {q[0]:.0f} µs, p90 {q[1]:.0f} µs, p99 {q[2]:.0f} µs"


def _timed(n: int, fn: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def fdatasync_latency(tmp: Path, n: int) -> list[float]:
    """A 600-byte ``pwrite`` + ``fdatasync`` into a preallocated file: what the disk itself costs."""
    fd = os.open(tmp / "fsync.bin", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, 600 * n)
        os.fsync(fd)

        def one(i: int) -> None:
            os.pwrite(fd, b"x" * 600, 600 * i)
            os.fdatasync(fd)

        return _timed(n, one)
    finally:
        os.close(fd)


def sqlite_commit_latency(tmp: Path, n: int, synchronous: str) -> list[float]:
    """One row per WAL transaction, as the ledger's store is set up (``store/engine.py``)."""
    conn = sqlite3.connect(tmp / f"bare-{synchronous}.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")

        def one(i: int) -> None:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 600,))
            conn.execute("COMMIT")

        return _timed(n, one)
    finally:
        conn.close()


def ledger_latency(engine: Engine, n: int, cfg: LedgerSettings) -> tuple[list[float], list[float]]:
    """One caller at a time: ``record`` from a thread, then ``arecord`` from one asyncio task."""
    with AuditLog(engine, KEY, cfg) as log:
        threaded = _timed(n, lambda i: log.record(event(i)))

        async def main() -> list[float]:
            out = []
            for i in range(n):
                t0 = time.perf_counter()
                await log.arecord(event(n + i))
                out.append(time.perf_counter() - t0)
            return out

        return threaded, asyncio.run(main())


def latency(db: Database, tmp: Path, n: int, cfg: LedgerSettings) -> None:
    print(f"# SQLite: one durable append at a time, {n} each, in {tmp}")
    print(f"pwrite + fdatasync (the disk): {_quantiles(fdatasync_latency(tmp, n))}")
    print(f"bare SQLite commit, synchronous=FULL: {_quantiles(sqlite_commit_latency(tmp, n, 'FULL'))}")
    print(f"bare SQLite commit, synchronous=NORMAL: {_quantiles(sqlite_commit_latency(tmp, n, 'NORMAL'))}")
    engine = db.fresh()
    try:
        threaded, awaited = ledger_latency(engine, n, cfg)
    finally:
        engine.dispose()
    print(f"AuditLog.record, one thread: {_quantiles(threaded)}")
    print(f"AuditLog.arecord, one asyncio task: {_quantiles(awaited)}")


# -- a large log -----------------------------------------------------------------------------------


def bulk_fill(engine: Engine, size: int, every: int = 1000, chunk: int = 50_000) -> None:
    """Fill an empty ledger with ``size`` entries through the normal append path, in big transactions."""
    work = Appender()
    now = datetime.now(UTC)
    encoded = [encode_event(event(i)) for i in range(1000)]
    for start in range(0, size, chunk):
        entries, heads = [], []
        for i in range(start, min(size, start + chunk)):
            entries.append(work.append(encoded[i % 1000], now))
            if work.size % every == 0:
                heads.append(sign_tree_head(KEY, work.size, work.root(), now))
        with engine.begin() as conn:
            repo.insert_entries(conn, entries)
            repo.insert_nodes(conn, work.take_closed())
            for h in heads:
                repo.insert_tree_head(conn, h)


def proof_times(log: AuditLog, size: int, samples: int) -> tuple[float, float]:
    """Median ms of an inclusion proof and of a consistency proof, both checked against signed roots."""
    rng = random.Random(7)
    head = log.sign_tree_head()
    incl, cons = [], []
    for _ in range(samples):
        seq = rng.randrange(size)
        t0 = time.perf_counter()
        p = log.inclusion_proof(seq, head.tree_size)
        incl.append(time.perf_counter() - t0)
        assert verify_inclusion(p.leaf_hash, seq, head.tree_size, p.path, head.root_hash)
    heads = log.tree_heads()
    for _ in range(samples):
        old = rng.choice(heads[:-1])
        t0 = time.perf_counter()
        c = log.consistency_proof(old.tree_size, head.tree_size)
        cons.append(time.perf_counter() - t0)
        assert verify_consistency(old.tree_size, head.tree_size, c.path, old.root_hash, head.root_hash)
    return statistics.median(incl) * 1000, statistics.median(cons) * 1000


def verify_rate(log: AuditLog) -> tuple[float, float, int]:
    """(entries/s wall, entries/s of process CPU, entries)."""
    t0, c0 = time.perf_counter(), time.process_time()
    report = log.verify()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    assert report.ok, report
    return report.entries_checked / dt, report.entries_checked / dc, report.entries_checked


# -- databases -------------------------------------------------------------------------------------


class Database:
    """A fresh, empty ledger database per measurement: a SQLite file, or a PostgreSQL schema."""

    def __init__(self, postgres: str | None, tmp: Path) -> None:
        self.postgres = normalise_url(postgres) if postgres else None
        self.tmp = tmp
        self.schemas: list[str] = []

    def fresh(self) -> Engine:
        if self.postgres is None:
            url = f"sqlite:///{self.tmp / (uuid.uuid4().hex + '.db')}"
        else:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(self.postgres)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            self.schemas.append(schema)
            sep = "&" if "?" in self.postgres else "?"
            url = f"{self.postgres}{sep}options={quote(f'-csearch_path={schema}')}"
        engine = make_engine(url, pool_size=20)
        create_all(engine)
        return engine

    def cleanup(self) -> None:
        if self.postgres and self.schemas:
            admin = create_engine(self.postgres)
            with admin.begin() as conn:
                for s in self.schemas:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{s}" CASCADE'))
            admin.dispose()


def run(args: argparse.Namespace) -> None:
    name = "PostgreSQL" if args.postgres else "SQLite"
    cfg = LedgerSettings(group_commit_max_batch=args.max_batch, group_commit_max_wait_ms=args.max_wait_ms)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        db = Database(args.postgres, Path(tmp))
        try:
            if args.latency and args.postgres is None:
                latency(db, Path(tmp), args.latency, cfg)
            if args.appends:
                print(f"# {name}: appends/s (median of {args.repeat}; {args.appends} appends per run)")

            cpu: list[float] = []  # process CPU seconds per append, all threads (the machine may be shared)

            def once(fn: Callable[[Engine], float]) -> float:
                engine = db.fresh()
                try:
                    c0 = time.process_time()
                    rate = fn(engine)
                    cpu.append(time.process_time() - c0)
                    return rate
                finally:
                    engine.dispose()

            def cpu_note(appends: int) -> str:
                us = statistics.median(cpu[-args.repeat :]) / appends * 1e6
                return f"  (CPU {us:.0f} µs/append → {1e6 / us:,.0f}/s per core)"

                rm = median_of(args.repeat, lambda: once(lambda e: record_many_appends(e, args.appends, cfg)))
                print(f"record_many (batches of 500, 1 caller): {rm:,.0f}/s" + cpu_note(args.appends))
                for n in args.writers:
                    total = (
                        args.appends if n > 1 else min(args.appends, 2000)
                    )  # one caller: one commit per entry
                    th = median_of(
                        args.repeat, lambda n=n, t=total: once(lambda e: threaded_appends(e, n, t, cfg))
                    )
                    print(f"record(), {n} threads: {th:,.0f}/s" + cpu_note(total))
                for n in args.tasks:
                    at = median_of(
                        args.repeat, lambda n=n: once(lambda e: async_appends(e, n, args.appends, cfg))
                    )
                    print(f"arecord(), {n} asyncio tasks: {at:,.0f}/s" + cpu_note(args.appends))

            if args.size:
                engine = db.fresh()
                t0 = time.perf_counter()
                bulk_fill(engine, args.size)
                print(f"# {name}: log of {args.size:,} entries filled in {time.perf_counter() - t0:.1f} s")
                with AuditLog(engine, KEY, cfg) as log:
                    incl, cons = proof_times(log, args.size, args.samples)
                    print(f"inclusion proof: {incl:.2f} ms median ({args.samples} random entries)")
                    print(f"consistency proof: {cons:.2f} ms median ({args.samples} random old tree heads)")
                    rates = [verify_rate(log) for _ in range(args.repeat)]
                    rate = statistics.median(r[0] for r in rates)
                    per_cpu = statistics.median(r[1] for r in rates)
                    print(
                        f"verify: {rate:,.0f} entries/s (median of {args.repeat}, {rates[0][2]:,} entries; "
                        f"{per_cpu:,.0f} entries per CPU second)"
                    )
                engine.dispose()
        finally:
            db.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", help="PostgreSQL URL (default: SQLite in a temporary directory)")
    ap.add_argument("--size", type=int, default=1_000_000, help="entries in the large log (0: skip)")
    ap.add_argument("--appends", type=int, default=20_000, help="appends per append run (0: skip)")
    ap.add_argument(
        "--latency",
        type=int,
        default=0,
        help="time N single durable appends against the disk's floor (SQLite)",
    )
    ap.add_argument("--writers", type=int, nargs="*", default=[1, 16, 128], help="thread counts")
    ap.add_argument("--tasks", type=int, nargs="*", default=[64, 512], help="asyncio task counts")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200, help="proofs to time")
    ap.add_argument("--max-batch", type=int, default=512)
    ap.add_argument("--max-wait-ms", type=float, default=2.0)
    ap.add_argument("--tmp", default=None, help="directory for SQLite files (default: the system temp dir)")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
