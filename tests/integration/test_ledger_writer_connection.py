"""The ledger writer's own SQLite connection: kept between commits, never used after the engine was
disposed or a commit failed, so a database that goes away fails the write (nothing is reported
recorded) and one that comes back is written to again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event

from bastion.config import LedgerSettings
from bastion.domain.events import AuditEvent, EventTag
from bastion.errors import StoreError
from bastion.services.audit import AuditLog
from bastion.store.engine import make_engine
from bastion.store.schema import create_all


def ev(i: int) -> AuditEvent:
    return AuditEvent(EventTag.KEY_USED, "alice", f"key-{i}", attributes={"i": i})


def test_one_connection_serves_many_commits(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    create_all(engine)
    connects = 0

    def count(*_a: object) -> None:
        nonlocal connects
        connects += 1

    event.listen(engine, "connect", count)
    with AuditLog(engine, Ed25519PrivateKey.generate(), LedgerSettings(tree_head_every=7)) as log:
        for i in range(20):
            log.record(ev(i))
        assert log.verify().ok
    assert connects <= 2  # the writer's connection, and the verify snapshot's
    engine.dispose()


def test_database_gone_and_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "l.db"
    engine = make_engine(f"sqlite:///{db}")
    create_all(engine)
    with AuditLog(engine, Ed25519PrivateKey.generate(), LedgerSettings(tree_head_every=5)) as log:
        log.record(ev(0))
        # the database goes away: pooled connections dropped, the file replaced by a directory
        engine.dispose()
        moved = tmp_path / "moved"
        moved.mkdir()
        for f in data.glob("l.db*"):
            shutil.move(str(f), moved / f.name)
        db.mkdir()
        for i in (1, 2):
            with pytest.raises(StoreError):
                log.record(ev(i))
        db.rmdir()
        for f in moved.iterdir():
            shutil.move(str(f), data / f.name)
        receipts = [log.record(ev(i)) for i in range(3, 9)]
        assert [r.seq for r in receipts] == list(range(1, 7))
        assert log.size() == 7
        assert log.verify().ok
    engine.dispose()
